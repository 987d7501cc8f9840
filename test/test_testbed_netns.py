# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The testbed's link, end to end as root: RTT through the delay line, tbf rate, link cut, cleanup on every path.

Needs root.  Without it these tests FAIL (CI runs as root); set ``COINFER_TESTBED_OPT_OUT=1`` to skip
them explicitly on a machine where root is not available (never honoured under ``CI=true``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from coinfer_edge.testbed import netns
from coinfer_edge.testbed.netns import Testbed, child_env, clean_leftovers, list_namespaces

import testbed_support

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PORT = 9000
ONE_WAY_MS = 20.0
# Upper slack on a round trip: the delay line wakes up to 1 ms late per direction (poll() takes whole
# milliseconds, rounded up), and each packet crosses two user-space hops (delay line, echo) in Python:
# about 1.3 ms measured on an idle machine.  10 ms leaves room for a 2-core machine busy with other tests.
RTT_SLACK_MS = 10.0
# TCP/IP headers the tbf rate also carries: 52 bytes (IP 20 + TCP 32 with timestamps) per 1448-byte segment.
WIRE_OVERHEAD = 1500 / 1448


def require_root() -> None:
    testbed_support.require_root('the testbed tests (network namespaces, TUN, tc)')


def ours(tag: str) -> list[str]:
    return [ns for ns in list_namespaces() if ns.startswith(tag)]


def probe(tb: Testbed, *args: str, timeout: float = 30.0) -> dict:
    """Run a probe client in the device namespace and return its JSON answer."""
    proc = subprocess.run(tb.exec_args('device') + [PY, '-m', 'coinfer_edge.testbed.probe', *args],
                          capture_output=True, text=True, timeout=timeout, env=child_env(), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope='module')
def testbed():
    require_root()
    with Testbed(delay_ms=ONE_WAY_MS) as tb:
        server = tb.popen('edge', [PY, '-m', 'coinfer_edge.testbed.probe', 'serve', '--port', str(PORT)],
                          stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert server.stdout.readline().startswith('probe ready')
        yield tb
        pids = [server.pid, tb.delay_line.pid]
    assert not ours(tb.tag), 'namespaces left after the testbed closed'
    root_qdiscs = subprocess.run(['tc', 'qdisc', 'show'], capture_output=True, text=True, timeout=10).stdout
    assert tb.tag not in root_qdiscs, 'qdiscs left after the testbed closed'
    assert not [p for p in pids if Path(f'/proc/{p}').exists()], 'processes left after the testbed closed'


def test_rtt_is_twice_the_one_way_delay(testbed):
    tb = testbed
    tb.set_delay(ONE_WAY_MS)
    r = probe(tb, 'ping', tb.edge_ip, '--port', str(PORT), '--count', '20')
    assert r['lost'] == 0
    assert min(r['rtts_ms']) >= 2 * ONE_WAY_MS - 0.1, r  # never early
    assert r['median_ms'] <= 2 * ONE_WAY_MS + RTT_SLACK_MS, r
    tb.set_delay(5.0)
    r = probe(tb, 'ping', tb.edge_ip, '--port', str(PORT), '--count', '10')
    assert 10.0 - 0.1 <= r['median_ms'] <= 10.0 + RTT_SLACK_MS, r
    tb.set_delay(40.0, 'up')  # one direction only: RTT = 40 + 5
    r = probe(tb, 'ping', tb.edge_ip, '--port', str(PORT), '--count', '5')
    assert 45.0 - 0.1 <= r['median_ms'] <= 45.0 + RTT_SLACK_MS, r


def test_bulk_transfer_takes_size_over_rate_and_follows_set_rate(testbed):
    tb = testbed
    tb.set_delay(1.0)
    size = 625_000  # 1.0 s of payload at 5 Mbit/s
    try:
        tb.set_rate('both', 5.0)
        assert 'rate 5Mbit' in tb.qdiscs()['up'] and 'rate 5Mbit' in tb.qdiscs()['down']
        slow = probe(tb, 'send', tb.edge_ip, '--port', str(PORT), '--bytes', str(size))
        assert slow['received'] == size
        assert slow['seconds'] == pytest.approx(size * 8 / 5e6, rel=0.20), slow
        tb.set_rate('device_to_edge', 10.0)  # tc qdisc change
        assert 'rate 10Mbit' in tb.qdiscs()['up'] and 'rate 5Mbit' in tb.qdiscs()['down']
        fast = probe(tb, 'send', tb.edge_ip, '--port', str(PORT), '--bytes', str(size))
        assert fast['seconds'] == pytest.approx(size * 8 / 10e6, rel=0.20), fast
        assert slow['seconds'] / fast['seconds'] == pytest.approx(2.0, rel=0.15)
    finally:
        tb.set_rate('both', None)
    assert 'tbf' not in tb.qdiscs()['up'] + tb.qdiscs()['down']


def test_link_down_stops_traffic_and_link_up_restores_it(testbed):
    tb = testbed
    tb.set_delay(1.0)
    tb.set_rate('both', 20.0)
    try:
        tb.link_down()
        cut = probe(tb, 'ping', tb.edge_ip, '--port', str(PORT), '--count', '3', '--timeout', '0.3')
        assert cut['lost'] == 3 and not cut['rtts_ms'], cut
        tb.link_up()
        t0 = time.monotonic()
        back = probe(tb, 'ping', tb.edge_ip, '--port', str(PORT), '--count', '3', '--timeout', '1.0')
        assert back['lost'] == 0 and time.monotonic() - t0 < 5.0, back
        assert 'rate 20Mbit' in tb.qdiscs()['up'], 'the qdisc must survive a link cut'
    finally:
        tb.link_up()
        tb.set_rate('both', None)


def test_live_testbeds_are_not_leftovers(testbed):
    assert not set(clean_leftovers()) & {testbed.device_ns, testbed.edge_ns}
    assert sorted(ours(testbed.tag)) == sorted([testbed.device_ns, testbed.edge_ns])


def test_cleanup_after_an_exception_and_twice():
    require_root()
    with pytest.raises(RuntimeError, match='boom'):
        with Testbed(delay_ms=1.0, rate_mbps=10.0) as tb:
            sleeper = tb.popen('device', ['sleep', '60'])
            assert len(ours(tb.tag)) == 2
            raise RuntimeError('boom')
    assert not ours(tb.tag) and sleeper.poll() is not None
    assert tb.final_stats and tb.final_stats.startswith('stats ')
    tb.cleanup()  # idempotent
    assert signal.getsignal(signal.SIGTERM) is not tb._on_signal


CHILD = textwrap.dedent('''
    import sys, time
    from coinfer_edge.testbed.netns import Testbed
    tb = Testbed(delay_ms=1.0, rate_mbps=5.0)
    tb.start()
    tb.popen('edge', ['sleep', '60'])
    print(tb.tag, tb.delay_line.pid, flush=True)
    if sys.argv[1] == 'crash':
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        print('interrupted', flush=True)
        sys.exit(3)
''')


def start_child(mode: str) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen([PY, '-c', CHILD, mode], stdout=subprocess.PIPE, text=True, env=child_env(), cwd=ROOT)
    tag, pid = proc.stdout.readline().split()
    return proc, tag, int(pid)


@pytest.mark.parametrize('signum, code', [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 3)])
def test_a_signal_cleans_up_then_acts_as_before(signum, code):
    require_root()
    proc, tag, delay_pid = start_child('wait')
    try:
        assert len(ours(tag)) == 2
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == code  # SIGTERM still kills; SIGINT still raises KeyboardInterrupt
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not ours(tag) and not Path(f'/proc/{delay_pid}').exists()


def test_clean_leftovers_removes_a_crashed_run():
    require_root()
    proc, tag, delay_pid = start_child('crash')
    assert proc.wait(timeout=20) == -signal.SIGKILL
    assert len(ours(tag)) == 2, 'the crashed run should have left its namespaces'
    t0 = time.monotonic()
    removed = clean_leftovers()
    print(f'clean_leftovers took {time.monotonic() - t0:.2f} s')
    assert sorted(removed) == [f'{tag}-dev', f'{tag}-edge']
    assert not ours(tag)
    deadline = time.monotonic() + 5
    while Path(f'/proc/{delay_pid}').exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f'/proc/{delay_pid}').exists()


def test_not_root_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(netns.os, 'geteuid', lambda: 1000)
    with pytest.raises(PermissionError, match='needs root') as info:
        Testbed().start()
    assert '\n' not in str(info.value)
