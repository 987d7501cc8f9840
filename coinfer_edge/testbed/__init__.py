# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The real-link testbed: device and edge as two emulated hosts on one machine (issue 11).

Two network namespaces joined by a link whose one-way delay comes from a user-space delay line
(:mod:`.delay_line`, this kernel has no ``netem``) and whose rate comes from ``tc tbf`` (:mod:`.netns`),
plus a cgroup v1 CPU quota for the device process (:mod:`.cgroup`) and small UDP/TCP probes that
measure the link (:mod:`.probe`).  Everything here is plain Python without ROS; creating namespaces
and cgroups needs root.  Topology, commands and measured figures: ``docs/testbed.md``.
"""
