# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Node start-up: process start -> the node's ready line, per executable, against ``import torch`` alone.

Each node is started ``--runs`` times, one after another, with its shipped params file, the way the
harness and the launch files start it; the time from ``Popen`` to the ``ready:`` line is printed as
median / min / max.  The same run times a bare ``python -c 'import torch'`` (and ``import rclpy``):
a node that imports torch cannot start faster than that, and ``policy_node`` is meant not to import it.

Usage: ``python bench/bench_startup.py [--runs N] [--nodes policy_node edge_node ...] [--domain-id D]``
(about a minute with the defaults).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from coinfer_edge.demo.graph import choose_domain_id
from coinfer_edge.demo.harness import NodeProcess, config_file, executable, ros_args, ros_env

PARAMS_FILES = {'policy_node': 'policy.yaml', 'edge_node': 'edge.yaml', 'device_node': 'device.yaml',
                'link_monitor': 'link_monitor.yaml', 'cpu_monitor': 'device.yaml', 'camera_node': 'camera.yaml'}


def time_import(module: str, runs: int) -> list[float]:
    """Return wall times of ``python -c 'import module'`` in fresh interpreters."""
    times = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run([sys.executable, '-c', f'import {module}'], check=True)
        times.append(time.monotonic() - start)
    return times


def time_node(name: str, env: dict[str, str], log_dir: str, runs: int) -> list[float]:
    """Return Popen -> ready-line times of ``runs`` sequential starts of node ``name``."""
    times = []
    for _ in range(runs):
        command = [executable(name)] + ros_args(params_files=[config_file(PARAMS_FILES[name])])
        proc = NodeProcess(command, env, os.path.join(log_dir, f'{name}.log'), name)
        start = time.monotonic()
        proc.start()
        try:
            proc.wait_ready(120.0)
            times.append(time.monotonic() - start)
        finally:
            proc.stop()
    return times


def row(label: str, times: list[float]) -> str:
    """Return one table row: median, min, max in seconds."""
    return f'| {label} | {len(times)} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |'


def main() -> int:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--nodes', nargs='+', default=['policy_node', 'edge_node', 'device_node'],
                        choices=sorted(PARAMS_FILES))
    parser.add_argument('--domain-id', type=int, default=None)
    args = parser.parse_args()
    domain = args.domain_id if args.domain_id is not None else choose_domain_id()
    with tempfile.TemporaryDirectory(prefix='coinfer-startup-') as log_dir:
        env = ros_env(domain, log_dir)
        print(f'node start-up, {args.runs} runs each, ROS_DOMAIN_ID={domain}, load average '
              f'{os.getloadavg()[0]:.2f}\n')
        print('| what | runs | median s | min s | max s |\n|---|--:|--:|--:|--:|')
        print(row('`python -c "import torch"`', time_import('torch', args.runs)))
        print(row('`python -c "import rclpy"`', time_import('rclpy', args.runs)))
        for name in args.nodes:
            print(row(f'`{name}` start -> ready', time_node(name, env, log_dir, args.runs)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
