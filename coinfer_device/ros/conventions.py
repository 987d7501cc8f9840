# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""What a coinfer node process and whoever starts it agree on: the ready line, lifecycle, stop signals, exit statuses.

Shared by the nodes (:mod:`coinfer_device.ros.runtime`, :mod:`coinfer_device.ros.entry_points`)
and their launchers (:mod:`coinfer_edge.demo.harness`, the launch files).  It imports nothing
heavy, so the entry points can read it before torch and rclpy are loaded.
"""

import signal

# Every node logs one line containing this once it works: a plain node when its topics exist, a
# lifecycle node when it reaches the active state.
READY_MARKER = 'ready:'
# The device node logs this, then its frame counters as one JSON object, when it stops taking frames.
FRAME_COUNTS_MARKER = 'frame counts:'
# The console scripts of lifecycle nodes (configure loads, activate starts the flow; docs/launch.md).
LIFECYCLE_EXECUTABLES = ('device_node', 'edge_node', 'policy_node')
# Label of the lifecycle state in which a node works (lifecycle_msgs/msg/State).
ACTIVE = 'active'
# Where every node publishes its diagnostics (absolute: rqt_robot_monitor and diagnostic_aggregator read it).
DIAGNOSTICS_TOPIC = '/diagnostics'
# The signals that stop a node cleanly, at any moment of its life.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Exit status of a node stopped by one of STOP_SIGNALS.
EXIT_STOPPED = 0
# Exit status of a node whose configuration is wrong (one "<prog>: error: ..." line on stderr).
EXIT_CONFIG_ERROR = 2
