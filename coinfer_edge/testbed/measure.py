# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Measure the testbed as root and print the figures of ``docs/testbed.md``.

::

    python -m coinfer_edge.testbed.measure [--delays 0,10,20,50] [--rates 2,5,10,20,0] [--bytes 625000]
                                           [--fractions 0.25,0.5] [--seconds 2]

RTT: median / min / max of 20 UDP probes through the delay line at each one-way delay.  Transfer:
TCP bulk transfer of ``--bytes`` at each tbf rate (0: unshaped) with 1 ms one-way delay.  CPU:
share of one CPU a busy process gets in a :class:`~coinfer_edge.testbed.cgroup.CpuQuota`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Sequence

import psutil

from coinfer_edge.testbed.cgroup import CpuQuota
from coinfer_edge.testbed.netns import Testbed, child_env

PORT = 9000


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(',') if x.strip()]


def _probe(tb: Testbed, *args: str) -> dict:
    proc = subprocess.run(tb.exec_args('device') + [sys.executable, '-m', 'coinfer_edge.testbed.probe', *args],
                          capture_output=True, text=True, timeout=120, env=child_env(), check=True)
    return json.loads(proc.stdout)


def measure_link(delays: Sequence[float], rates: Sequence[float], nbytes: int) -> None:
    """Print RTT per one-way delay and transfer time per rate."""
    with Testbed() as tb:
        server = tb.popen('edge', [sys.executable, '-m', 'coinfer_edge.testbed.probe', 'serve', '--port', str(PORT)],
                          stdout=subprocess.PIPE, text=True)
        server.stdout.readline()
        print('one-way delay ms | expected RTT ms | median RTT ms | min | max')
        for d in delays:
            tb.set_delay(d)
            r = _probe(tb, 'ping', tb.edge_ip, '--port', str(PORT), '--count', '20')
            print(f'{d:g} | {2 * d:g} | {r["median_ms"]:.2f} | {min(r["rtts_ms"]):.2f} | {max(r["rtts_ms"]):.2f}')
        tb.set_delay(1.0)
        print('rate Mbit/s | bytes | size/rate s | measured s | goodput Mbit/s   (1 ms one-way delay)')
        for rate in rates:
            tb.set_rate('both', rate or None)
            r = _probe(tb, 'send', tb.edge_ip, '--port', str(PORT), '--bytes', str(nbytes))
            ideal = f'{nbytes * 8 / (rate * 1e6):.3f}' if rate else '-'
            print(f'{rate or "unshaped"} | {nbytes} | {ideal} | {r["seconds"]:.3f} | {r["mbps"]:.2f}')


def measure_cpu(fractions: Sequence[float], seconds: float) -> None:
    """Print the CPU share a busy process gets under each quota."""
    child = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
    try:
        proc = psutil.Process(child.pid)
        print('quota (fraction of one CPU) | measured share')
        with CpuQuota(fractions[0]) as quota:
            quota.add(child.pid)
            for f in fractions:
                quota.set_fraction(f)
                time.sleep(0.2)
                c0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
                time.sleep(seconds)
                print(f'{f:g} | {(sum(proc.cpu_times()[:2]) - c0) / (time.monotonic() - t0):.3f}')
    finally:
        child.kill()
        child.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the link and CPU measurements and print them as table rows."""
    p = argparse.ArgumentParser(prog='python -m coinfer_edge.testbed.measure', description=__doc__.split('\n')[0])
    p.add_argument('--delays', default='0,10,20,50')
    p.add_argument('--rates', default='2,5,10,20,0')
    p.add_argument('--bytes', type=int, default=625_000)
    p.add_argument('--fractions', default='0.25,0.5')
    p.add_argument('--seconds', type=float, default=2.0)
    args = p.parse_args(argv)
    measure_link(_floats(args.delays), _floats(args.rates), args.bytes)
    measure_cpu(_floats(args.fractions), args.seconds)
    return 0


if __name__ == '__main__':
    sys.exit(main())
