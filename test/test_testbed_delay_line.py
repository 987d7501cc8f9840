# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The testbed's delay line: DelayQueue unit and property tests (injected clock), and the poll loop on sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coinfer_edge.testbed.delay_line import DelayQueue, DelaySchedule, QueueConfig, load_schedule, run_delay_line

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EPS = 1e-9

# Times in whole milliseconds (as seconds) keep the float comparisons exact enough for EPS.
gaps = st.lists(st.integers(0, 30), min_size=1, max_size=60)
steps = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 80)), min_size=1, max_size=6).map(
    lambda s: sorted(s))


def schedule_of(raw: list[tuple[int, int]]) -> DelaySchedule:
    return DelaySchedule([(t / 1000, ms) for t, ms in raw])


def earliest_release(arrival: float, schedule: DelaySchedule) -> float:
    """Brute force: the first t >= arrival with t >= arrival + delay(t) (delay piecewise constant)."""
    candidates = [arrival + ms / 1000 for _, ms in schedule.steps] + [t for t, _ in schedule.steps] + [arrival]
    return min(t for t in candidates if t >= arrival - EPS and t + EPS >= arrival + schedule.delay_s(t))


def simulate(queue: DelayQueue, arrivals: list[float]) -> list[tuple[int, float]]:
    """Event-driven run: push at each arrival, pop exactly when the queue asks; return (packet, release time)."""
    released, i, now = [], 0, 0.0
    while i < len(arrivals) or len(queue):
        wake = queue.next_release(now)
        if i < len(arrivals) and (wake is None or arrivals[i] < max(now, wake)):
            now = arrivals[i]
            queue.push(i.to_bytes(4, 'big'), now)
            i += 1
        else:
            now = max(now, wake)
        released += [(int.from_bytes(p, 'big'), now) for p in queue.pop_ready(now)]
    return released


def test_constant_delay_releases_after_the_delay_in_order():
    q = DelayQueue(DelaySchedule.constant(10.0))
    q.push(b'a', 0.0)
    q.push(b'b', 0.004)
    assert q.pop_ready(0.0099) == []
    assert q.next_release(0.0099) == pytest.approx(0.010)
    assert q.pop_ready(0.010) == [b'a']
    assert q.pop_ready(0.0139) == []
    assert q.pop_ready(0.014) == [b'b']
    assert q.next_release(0.02) is None
    assert q.stats() == {'pushed': 2, 'released': 2, 'dropped': 0, 'lost': 0, 'queued': 0}


def test_a_delay_drop_releases_the_backlog_at_once_and_in_order():
    q = DelayQueue(DelaySchedule([(0.0, 100.0), (0.050, 5.0)]))
    for k in range(5):
        q.push(bytes([k]), k * 0.010)
    assert q.pop_ready(0.049) == []
    assert q.next_release(0.049) == pytest.approx(0.050)  # the step, not the 100 ms head deadline
    assert q.pop_ready(0.050) == [bytes([k]) for k in range(5)]


def test_a_delay_rise_holds_queued_packets_longer():
    q = DelayQueue(DelaySchedule([(0.0, 5.0), (0.003, 50.0)]))
    q.push(b'x', 0.0)
    assert q.pop_ready(0.004) == []
    assert q.pop_ready(0.050) == [b'x']


def test_set_delay_replaces_the_schedule():
    q = DelayQueue(DelaySchedule.constant(100.0))
    q.push(b'x', 1.0)
    q.set_delay(0.0)
    assert q.pop_ready(1.0) == [b'x']


def test_a_clock_step_back_cannot_reorder():
    q = DelayQueue(DelaySchedule.constant(10.0))
    q.push(b'first', 5.0)
    q.push(b'second', 4.0)
    assert q.pop_ready(5.0099) == []
    assert q.pop_ready(5.010) == [b'first', b'second']


def test_capacity_drops_are_counted():
    q = DelayQueue(DelaySchedule.constant(1.0), capacity=3)
    accepted = [q.push(bytes([k]), 0.0) for k in range(5)]
    assert accepted == [True, True, True, False, False]
    assert (q.dropped, len(q)) == (2, 3)
    assert q.pop_ready(1.0) == [b'\0', b'\1', b'\2']


def test_loss_is_seeded_and_counted():
    def losses(seed: int) -> list[bool]:
        q = DelayQueue(loss=0.3, seed=seed)
        return [q.push(b'p', k * 0.001) for k in range(2000)]

    assert losses(7) == losses(7)
    assert losses(7) != losses(8)
    q = DelayQueue(loss=0.3, seed=7)
    for k in range(2000):
        q.push(b'p', 0.0)
    assert 0.26 < q.lost / 2000 < 0.34
    assert q.pushed == q.lost + len(q)
    everything = DelayQueue(loss=1.0, seed=1)
    assert not any(everything.push(b'p', 0.0) for _ in range(10)) and everything.lost == 10


@pytest.mark.parametrize('bad', [dict(capacity=0), dict(loss=-0.1), dict(loss=1.5)])
def test_bad_queue_settings_are_refused(bad):
    with pytest.raises(ValueError):
        DelayQueue(**bad)


@pytest.mark.parametrize('bad', [[], [(1.0, 5.0), (0.5, 5.0)], [(0.0, -1.0)], [(0.0, float('nan'))]])
def test_bad_schedules_are_refused(bad):
    with pytest.raises(ValueError):
        DelaySchedule(bad)


def test_schedule_lookup_and_shift():
    s = DelaySchedule([(1.0, 10.0), (2.0, 20.0)])
    assert [s.delay_s(t) for t in (0.0, 1.0, 1.99, 2.0, 9.0)] == [0.010, 0.010, 0.010, 0.020, 0.020]
    assert (s.next_change(0.5), s.next_change(1.0), s.next_change(2.0)) == (1.0, 2.0, None)
    assert s.shifted(100.0).delay_s(101.5) == 0.010
    assert QueueConfig(delay_ms=3.0).make_schedule(5.0).delay_s(0.0) == 0.003


def test_schedule_files(tmp_path):
    (tmp_path / 'a.json').write_text('[[0, 10], [2.5, 40]]')
    (tmp_path / 'b.txt').write_text('# t_s delay_ms\n0 10\n\n2.5 40  # step\n')
    assert load_schedule(str(tmp_path / 'a.json')) == load_schedule(str(tmp_path / 'b.txt')) == [(0, 10), (2.5, 40)]


@SETTINGS
@given(gaps=gaps, raw=steps)
def test_property_fifo_never_early_never_late_nothing_lost(gaps, raw):
    schedule = schedule_of(raw)
    arrivals = [sum(gaps[:k + 1]) / 1000 for k in range(len(gaps))]
    queue = DelayQueue(schedule)
    released = simulate(queue, arrivals)
    # nothing lost, FIFO even when the delay drops
    assert [k for k, _ in released] == list(range(len(arrivals)))
    for k, at in released:
        # never before its delay (the delay in force when it leaves) ...
        assert at + EPS >= arrivals[k] + schedule.delay_s(at)
        # ... and, with an event-driven caller, no later than FIFO requires
        assert at == pytest.approx(max(earliest_release(arrivals[k], schedule),
                                       max((t for j, t in released if j < k), default=0.0)), abs=1e-7)
    assert queue.stats() == {'pushed': len(arrivals), 'released': len(arrivals), 'dropped': 0, 'lost': 0,
                             'queued': 0}


@SETTINGS
@given(gaps=gaps, raw=steps, capacity=st.integers(1, 8), loss=st.sampled_from([0.0, 0.2, 0.7]),
       seed=st.integers(0, 2**16))
def test_property_drops_and_losses_are_all_counted(gaps, raw, capacity, loss, seed):
    arrivals = [sum(gaps[:k + 1]) / 1000 for k in range(len(gaps))]
    queue = DelayQueue(schedule_of(raw), capacity=capacity, loss=loss, seed=seed)
    released = [k for k, _ in simulate(queue, arrivals)]
    assert released == sorted(released)  # the survivors keep their order
    assert queue.pushed == len(arrivals) == len(released) + queue.dropped + queue.lost
    assert queue.released == len(released) and len(queue) == 0
    if loss == 0.0:
        assert queue.lost == 0


@SETTINGS
@given(gaps=gaps, raw=steps, polls=st.lists(st.integers(0, 700), max_size=40))
def test_property_arbitrary_poll_times_never_release_early(gaps, raw, polls):
    """A caller that polls at arbitrary times (late or early) still never gets a packet early or out of order."""
    schedule = schedule_of(raw)
    arrivals = [sum(gaps[:k + 1]) / 1000 for k in range(len(gaps))]
    events = sorted([(t, 0, k) for k, t in enumerate(arrivals)] + [(p / 1000, 1, -1) for p in polls])
    queue, released = DelayQueue(schedule), []
    for t, kind, k in events:
        if kind == 0:
            queue.push(k.to_bytes(4, 'big'), t)
        released += [(int.from_bytes(p, 'big'), t) for p in queue.pop_ready(t)]
    released += [(int.from_bytes(p, 'big'), 10.0) for p in queue.pop_ready(10.0)]
    assert [k for k, _ in released] == list(range(len(arrivals)))
    assert all(at + EPS >= arrivals[k] + schedule.delay_s(at) for k, at in released)


# -- the poll loop, on datagram socket pairs instead of TUN devices (no root needed) -------------------------------

class Loop:
    """run_delay_line in a thread between two socketpairs, with a stop pipe and a control pipe."""

    def __init__(self, config: QueueConfig):
        self.a_outer, a_inner = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.b_outer, b_inner = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for s in (a_inner, b_inner):
            s.setblocking(False)
        self.inner = (a_inner, b_inner)
        self.stop_r, self.stop_w = os.pipe()
        self.ctl_r, self.ctl_w = os.pipe()
        os.set_blocking(self.ctl_r, False)
        self.replies: list[str] = []
        self.result: dict = {}
        self.thread = threading.Thread(target=self._run, args=(config,), daemon=True)
        self.thread.start()

    def _run(self, config):
        self.result = run_delay_line(self.inner[0].fileno(), self.inner[1].fileno(), config, self.stop_r,
                                     self.ctl_r, self.replies.append)

    def command(self, line: str, timeout_s: float = 5.0) -> str:
        n = len(self.replies)
        os.write(self.ctl_w, line.encode() + b'\n')
        deadline = time.monotonic() + timeout_s
        while len(self.replies) == n:
            assert time.monotonic() < deadline, f'no reply to {line!r}'
            time.sleep(0.005)
        return self.replies[-1]

    def stop(self) -> dict:
        os.write(self.stop_w, b'x')
        self.thread.join(timeout=5.0)
        assert not self.thread.is_alive()
        for fd in (self.stop_r, self.stop_w, self.ctl_r, self.ctl_w):
            os.close(fd)
        for s in (self.a_outer, self.b_outer, *self.inner):
            s.close()
        return self.result


def timed_transfer(src: socket.socket, dst: socket.socket, payload: bytes) -> float:
    dst.settimeout(5.0)
    t0 = time.monotonic()
    src.send(payload)
    assert dst.recv(65536) == payload
    return time.monotonic() - t0


def test_loop_delays_both_directions_and_takes_delay_commands():
    loop = Loop(QueueConfig(delay_ms=40.0))
    try:
        assert timed_transfer(loop.a_outer, loop.b_outer, b'ab') >= 0.040
        assert timed_transfer(loop.b_outer, loop.a_outer, b'ba') >= 0.040
        assert loop.command('delay 0') == 'ok delay 0 both'
        assert timed_transfer(loop.a_outer, loop.b_outer, b'fast') < 0.040
        assert loop.command('delay 60 ab') == 'ok delay 60 ab'
        assert timed_transfer(loop.a_outer, loop.b_outer, b'slow') >= 0.060
        assert timed_transfer(loop.b_outer, loop.a_outer, b'back') < 0.040
        assert loop.command('delay -1').startswith('error')
        assert loop.command('bogus').startswith('error')
        assert loop.command('stats').startswith('stats {"ab": {"pushed": 3')
        for k in range(50):  # a burst keeps its order
            loop.b_outer.send(k.to_bytes(2, 'big'))
        loop.a_outer.settimeout(5.0)
        assert [int.from_bytes(loop.a_outer.recv(16), 'big') for _ in range(50)] == list(range(50))
    finally:
        stats = loop.stop()
    assert stats['ab']['released'] == 3 and stats['ba']['released'] == 52
    assert stats['ab']['write_errors'] == stats['ba']['write_errors'] == 0


def test_loop_stops_at_end_of_control_input_and_follows_a_schedule():
    loop = Loop(QueueConfig(schedule=[(0.0, 0.0), (0.3, 50.0)]))
    assert timed_transfer(loop.a_outer, loop.b_outer, b'early') < 0.050
    time.sleep(0.3)
    assert timed_transfer(loop.a_outer, loop.b_outer, b'late') >= 0.050
    os.close(loop.ctl_w)
    loop.thread.join(timeout=5.0)
    assert not loop.thread.is_alive()
    assert loop.result['ab']['released'] == 2
    loop.ctl_w = os.open(os.devnull, os.O_RDONLY)  # something for stop() to close
    loop.stop()


def test_the_testbed_package_imports_no_ros_and_no_torch():
    """Every testbed module loads in a fresh interpreter without rclpy, message packages or torch."""
    code = ('import importlib, pkgutil, sys, coinfer_edge.testbed as t\n'
            'for m in pkgutil.iter_modules(t.__path__): importlib.import_module("coinfer_edge.testbed." + m.name)\n'
            'print(sorted(n for n in sys.modules if n.split(".")[0] in '
            '("rclpy", "std_msgs", "sensor_msgs", "torch", "coinfer_device")))')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'
