# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Discovery delay of a freshly started node, with and without config/fastdds_profile.xml.

A publisher process runs at 50 Hz; a new subscriber process is started ``--trials`` times
and reports the time from creating its subscription to the first message.  This is the
delay a restarted edge node adds before the device can use it again.  Loopback only,
private domain (``--domain``, default 37).

Usage: ``python bench/bench_discovery.py [--trials 8]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from coinfer_edge.demo.harness import FASTDDS_PROFILE_VARS, NodeProcess, ros_env

PUB = '''
import rclpy
from rclpy.node import Node
from std_msgs.msg import Float32
rclpy.init()
n = Node('bench_pub')
p = n.create_publisher(Float32, 'bench_discovery', 10)
n.create_timer(0.02, lambda: p.publish(Float32(data=1.0)))
print('ready: pub', flush=True)
try:
    rclpy.spin(n)
except BaseException:
    pass
'''

SUB = '''
import time, rclpy
from rclpy.node import Node
from std_msgs.msg import Float32
rclpy.init()
n = Node('bench_sub')
got = []
t0 = time.monotonic()
n.create_subscription(Float32, 'bench_discovery', lambda m: got.append(time.monotonic()), 10)
while not got and time.monotonic() - t0 < 15:
    rclpy.spin_once(n, timeout_sec=0.005)
print(f'{got[0] - t0 if got else float("nan"):.4f}')
'''


def run(env: dict, trials: int) -> list[float]:
    """Return the first-message delays of ``trials`` fresh subscribers."""
    pub = NodeProcess([sys.executable, '-c', PUB], env, label='pub').start().wait_ready(30)
    try:
        time.sleep(2.0)
        delays = []
        for _ in range(trials):
            out = subprocess.run([sys.executable, '-c', SUB], env=env, capture_output=True, text=True, timeout=60)
            delays.append(float(out.stdout.strip().splitlines()[-1]))
        return delays
    finally:
        pub.stop()


def main() -> None:
    """Print the delay distribution with the default Fast DDS settings and with the package profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--trials', type=int, default=8)
    parser.add_argument('--domain', type=int, default=37)
    args = parser.parse_args()
    log_dir = tempfile.mkdtemp(prefix='bench-discovery-')
    with_profile = ros_env(args.domain, log_dir)
    without = ros_env(args.domain, log_dir, fastdds_profile=False)
    for var in FASTDDS_PROFILE_VARS:
        without.pop(var, None)
    for label, env in (('Fast DDS defaults', without), ('config/fastdds_profile.xml', with_profile)):
        d = run(env, args.trials)
        print(f'{label:>28}: median {statistics.median(d) * 1e3:6.0f} ms, max {max(d) * 1e3:6.0f} ms '
              f'({", ".join(f"{v * 1e3:.0f}" for v in d)} ms)', flush=True)


if __name__ == '__main__':
    main()
