# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The demo's ROS graph: a free ROS domain and the seven node processes with their parameters.

The nodes are the launch files' (``launch/coinfer.launch.py``), with the same params files
(``config/*.yaml``) plus the demo's ``-p`` overrides: model and profile paths, the policy, the
device's emulated link schedule and CPU slowdown, the camera rate.
"""

from __future__ import annotations

import argparse
import random
import socket
from pathlib import Path
from typing import Any

from coinfer_device.core.link_emulator import BandwidthSchedule
from coinfer_edge.demo.harness import Graph, config_file

DOMAIN_RANGE = (10, 100)
# Receivers first, then the device and the camera: the device's first probes then find a
# running edge instead of one still loading (a slow first round trip skews the link estimate).
STARTUP_PHASES = (('edge', 'edge_cpu_monitor', 'policy', 'link_monitor'), ('cpu_monitor', 'device', 'camera'))


def domain_in_use(domain_id: int) -> bool:
    """Return whether a DDS participant seems to use ``domain_id`` on this host.

    The first participant of a domain binds the unicast discovery port ``7410 + 250 d``
    (RTPS well-known ports); if it cannot be bound, someone is there.
    """
    port = 7410 + 250 * domain_id
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return True
    return False


def choose_domain_id(rng: random.Random | None = None) -> int:
    """Return a random domain id in :data:`DOMAIN_RANGE` that no participant seems to use."""
    rng = rng or random.SystemRandom()
    candidates = list(range(*DOMAIN_RANGE))
    rng.shuffle(candidates)
    for d in candidates:
        if not domain_in_use(d):
            return d
    return candidates[0]


def build_graph(args: argparse.Namespace, policy: dict[str, Any], schedule: BandwidthSchedule, env: dict[str, str],
                log_dir: Path, compute_slowdown: float, deadline_ms: float) -> Graph:
    """Return the node processes (not started): the launch files' nodes, params files and overrides.

    ``policy`` holds the policy node's parameters (``policy`` and, for a fixed split, ``fixed_action``);
    ``deadline_ms`` is the policy's, which the device node judges ``deadline_met`` against.
    """
    model = {'model_path': str(args.model)} if args.model else {}
    if args.profile:  # the device and edge compare their compute with it (compute_slowdown), the policy plans with it
        model['profile_path'] = str(args.profile)
    profile = {'profile_path': str(args.profile)} if args.profile else {}
    if policy['policy'] == 'sacd' and args.policy_file:
        profile['policy_path'] = str(args.policy_file)
    g = Graph(env, log_dir)
    edge_yaml, device_yaml = config_file('edge.yaml'), config_file('device.yaml')
    g.add('edge', 'edge_node', name='edge_node', params_files=[edge_yaml], params=model)
    g.add('edge_cpu_monitor', 'cpu_monitor', name='edge_cpu_monitor', params_files=[edge_yaml])
    g.add('policy', 'policy_node', name='policy_node', params_files=[config_file('policy.yaml')],
          params={**policy, **profile, 'deadline_ms': float(deadline_ms)})
    g.add('link_monitor', 'link_monitor', name='link_monitor', params_files=[config_file('link_monitor.yaml')])
    g.add('cpu_monitor', 'cpu_monitor', name='cpu_monitor', params_files=[device_yaml])
    g.add('device', 'device_node', name='device_node', params_files=[device_yaml], params={
        **model, 'emulated_link.enabled': True,
        'emulated_link.bandwidth_schedule_mbps': [float(v) for v in schedule.mbps],
        'emulated_link.step_s': float(schedule.step_s), 'emulated_link.loop': schedule.loop,
        'emulated_link.rtt_ms': float(args.rtt_ms), 'compute_slowdown': float(compute_slowdown),
        'deadline_ms': float(deadline_ms)})
    g.add('camera', 'camera_node', name='camera_node', params_files=[config_file('camera.yaml')],
          params={'rate_hz': float(args.rate_hz)})
    return g
