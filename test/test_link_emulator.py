# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""In-process link emulator: schedule integration, FIFO bottleneck, tail drop, sender thread."""

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinfer_device.core.link_emulator import BandwidthSchedule, Bottleneck, LinkEmulator


def test_schedule_cycles_or_holds():
    s = BandwidthSchedule((1.0, 4.0), step_s=2.0)
    assert [s.mbps_at(t) for t in (0.0, 1.9, 2.0, 3.9, 4.0, 6.5)] == [1.0, 1.0, 4.0, 4.0, 1.0, 4.0]
    held = BandwidthSchedule((1.0, 4.0), step_s=2.0, loop=False)
    assert held.mbps_at(100.0) == 4.0


@pytest.mark.parametrize('mbps,step', [((0.0,), 1.0), ((), 1.0), ((1.0,), 0.0), ((-1.0,), 1.0)])
def test_schedule_rejects_bad_values(mbps, step):
    with pytest.raises(ValueError):
        BandwidthSchedule(mbps, step)


def test_transmission_straddling_a_step_is_charged_at_both_rates():
    s = BandwidthSchedule((1.0, 4.0), step_s=1.0)
    # 250 kB at 1 Mbit/s would take 2 s; 1 s at 1 Mbit/s sends 1 Mbit, the remaining 1 Mbit takes 0.25 s at 4.
    assert s.transmit_end(0.0, 250_000) == pytest.approx(1.25)
    assert s.transmit_end(0.5, 1000) == pytest.approx(0.5 + 8000 / 1e6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.1, 100.0), min_size=1, max_size=5), st.floats(0.01, 2.0), st.floats(0.0, 5.0),
       st.integers(1, 500_000))
def test_transmit_end_sends_exactly_the_bits(mbps, step, start, nbytes):
    s = BandwidthSchedule(tuple(mbps), step)
    end = s.transmit_end(start, nbytes)
    assert end > start
    # Integrate the schedule from start to end: it must carry exactly 8 * nbytes bits.
    bits = 0.0
    for k in range(int(start // step), int(end // step) + 1):
        lo, hi = max(start, k * step), min(end, (k + 1) * step)
        if hi > lo:
            bits += (hi - lo) * mbps[k % len(mbps)] * 1e6
    assert bits == pytest.approx(8.0 * nbytes, rel=1e-6, abs=1e-3)


def test_bottleneck_is_fifo_with_rtt_and_tail_drop():
    b = Bottleneck(BandwidthSchedule((8.0,), 10.0), rtt_ms=20.0, max_queue_ms=50.0)
    first = b.admit(10_000, now=0.0)       # 10 ms on the wire
    second = b.admit(10_000, now=0.0)      # waits for the first
    assert first == pytest.approx(0.010 + 0.020)
    assert second == pytest.approx(0.020 + 0.020)
    for _ in range(4):
        assert b.admit(10_000, now=0.0)    # the last of these waited exactly 50 ms: admitted
    assert b.admit(10_000, now=0.0) is None  # would wait 60 ms
    assert b.admit(10_000, now=1.0) == pytest.approx(1.0 + 0.010 + 0.020)


def test_emulator_delivers_in_order_at_the_emulated_time():
    delivered = []
    lock = threading.Lock()

    def deliver(item):
        with lock:
            delivered.append((item, time.monotonic()))

    # 4 Mbit/s: 5 kB = 10 ms each; rtt 30 ms.
    emu = LinkEmulator(Bottleneck(BandwidthSchedule((4.0,), 10.0), rtt_ms=30.0), deliver)
    try:
        t0 = time.monotonic()
        for i in range(3):
            assert emu.send(i, 5000)
        deadline = time.monotonic() + 5.0
        while len(delivered) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        emu.close()
    assert [d[0] for d in delivered] == [0, 1, 2]
    for i, (_, t) in enumerate(delivered):
        expected = 0.010 * (i + 1) + 0.030
        assert t - t0 >= expected - 0.002
        assert t - t0 < expected + 0.5  # generous: a busy CI machine may wake the thread late


def test_emulator_counts_drops():
    dropped = []
    emu = LinkEmulator(Bottleneck(BandwidthSchedule((0.1,), 10.0), rtt_ms=0.0, max_queue_ms=100.0),
                       lambda item: None, on_drop=dropped.append)
    try:
        results = [emu.send(i, 10_000) for i in range(3)]  # 0.8 s each at 0.1 Mbit/s
    finally:
        emu.close()
    assert results == [True, False, False] and dropped == [1, 2] and emu.dropped == 2
