# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Link estimator: bandwidth and RTT from noisy round-trip samples, also under queueing."""

import numpy as np
import pytest

from coinfer_device.core.link_emulator import BandwidthSchedule, Bottleneck
from coinfer_device.core.link_estimator import EstimatorConfig, LinkEstimator, LinkSample


def _feed(est, rng, t0, duration, bw_mbps, rtt_ms, sizes=(1100, 8300), rate_hz=10.0, overhead_ms=2.0):
    t = t0
    i = 0
    while t < t0 + duration:
        size = sizes[i % len(sizes)]
        noise = overhead_ms + rng.exponential(1.0)  # per-message overhead with queueing spikes
        est.add(LinkSample(t, size, rtt_ms + 8.0 * size / (bw_mbps * 1e3) + noise))
        t += 1.0 / rate_hz
        i += 1
    return t


def _replay(est, schedule, sends, rtt_ms=2.0, overhead_ms=3.0, jitter_ms=2.0, seed=0, rate_hz=5.0):
    """Send ``(time, bytes)`` through a FIFO bottleneck with software noise; return ``[(t, bw, rtt)]``.

    The estimator is updated at ``rate_hz`` like the link monitor; answers reach it in send order.
    """
    rng = np.random.default_rng(seed)
    link = Bottleneck(schedule, rtt_ms)
    answers = []
    for t, size in sorted(sends):  # the edge answers in order: noise never reorders the answers
        arrived = link.admit(size, t) + (overhead_ms + rng.exponential(jitter_ms)) / 1e3
        answers.append((max(arrived, answers[-1][0] if answers else 0.0), t, size))
    out, i, tick = [], 0, 0.0
    while tick <= answers[-1][0] + 1.0:
        while i < len(answers) and answers[i][0] <= tick:
            arrived, sent, size = answers[i]
            est.add(LinkSample(arrived, size, (arrived - sent) * 1e3, sent))
            i += 1
        out.append((tick,) + est.update(tick))
        tick += 1.0 / rate_hz
    return out


def _every(period, start, end, size, offset=0.0):
    return [(start + offset + k * period, size) for k in range(int((end - start - offset) / period + 1e-9) + 1)
            if start + offset + k * period < end]


def test_nothing_before_samples_then_estimates_converge():
    est = LinkEstimator(EstimatorConfig(window_s=3.0, ewma_alpha=0.5))
    assert est.update(0.0) == (None, None)
    rng = np.random.default_rng(0)
    t = 0.0
    for _ in range(40):
        t = _feed(est, rng, t, 0.2, bw_mbps=5.0, rtt_ms=20.0)
        bw, rtt = est.update(t)
    assert bw == pytest.approx(5.0, rel=0.15)
    assert 20.0 <= rtt <= 25.0  # the typical overhead is part of the RTT


def test_follows_a_bandwidth_step():
    est = LinkEstimator(EstimatorConfig(window_s=2.0, ewma_alpha=0.5))
    rng = np.random.default_rng(1)
    t = 0.0
    for bw in (2.0, 8.0, 1.0):
        for _ in range(30):
            t = _feed(est, rng, t, 0.2, bw_mbps=bw, rtt_ms=30.0)
            got, _ = est.update(t)
        assert got == pytest.approx(bw, rel=0.2), f'estimated {got} for {bw}'


def test_unresolvable_serialization_is_a_bounded_lower_bound_and_values_hold_without_samples():
    est = LinkEstimator(EstimatorConfig(window_s=1.0, min_serialization_ms=1.0))
    est.add(LinkSample(0.0, 500, 5.0))
    est.add(LinkSample(0.1, 10_500, 5.0))  # no measurable serialization: "at least about this fast"
    bw, rtt = est.update(0.2)
    assert bw == pytest.approx(8.0 * 10_000 / 1.0 / 1e3) and not est.resolved  # 80 Mbit/s, not a huge clamp
    assert rtt == pytest.approx(5.0 - 8.0 * 500 / (bw * 1e3), abs=0.01)
    assert est.update(60.0) == (bw, rtt) and not est.samples
    capped = LinkEstimator(EstimatorConfig(min_serialization_ms=0.01, max_bandwidth_mbps=50.0))
    capped.add(LinkSample(0.0, 500, 5.0))
    capped.add(LinkSample(0.1, 10_500, 5.0))
    assert capped.update(0.2)[0] == 50.0


def test_large_only_samples_wait_for_an_rtt():
    est = LinkEstimator()
    est.add(LinkSample(0.0, 50_000, 50.0))
    assert est.update(0.1) == (None, None)


def test_no_overshoot_when_the_rtt_estimate_carries_stale_serialization():
    """The demo's overshoot: small frames only on a slow link, then probes on a faster one.

    From 10 to 20 s the policy sends 1 kB frames on a 0.5 Mbit/s link (17 ms serialization each,
    no large message), so an RTT estimate built from them carries that delay.  At 20 s the link
    is 10 Mbit/s and probes of 1 kB and 8 kB alternate: the first 8 kB answers come back faster
    than that stale RTT.  The former estimator clamped such samples to 1000 Mbit/s.
    """
    schedule = BandwidthSchedule((20.0, 0.5, 10.0), 10.0, loop=False)
    sends = (_every(1.0, 0.0, 10.0, 1088) + _every(1.0, 0.0, 10.0, 8256, offset=0.5)
             + _every(0.1, 10.0, 20.0, 1088) + _every(1.0, 20.0, 30.0, 1088) + _every(1.0, 20.0, 30.0, 8256, 0.5))
    out = _replay(LinkEstimator(), schedule, sends)
    late = [bw for t, bw, _ in out if 20.0 <= t <= 31.0]
    print(f'10 Mbit/s phase: estimates {min(late):.1f}..{max(late):.1f} Mbit/s')
    assert max(late) < 20.0, f'overshoot to {max(late):.0f} Mbit/s on a 10 Mbit/s link'
    settled = [bw for t, bw, _ in out if 28.0 <= t <= 30.0]
    assert all(5.0 <= bw <= 15.0 for bw in settled), settled


def test_no_overshoot_when_most_small_messages_wait_behind_large_ones():
    """Small frames sent right after each large message wait for its serialization.

    Most small samples then carry the large message's serialization, so their low quantile
    is as slow as the large messages (the former estimator read up to 1000 Mbit/s); the
    queue-aware estimator sets them aside and uses the unqueued small probes.
    """
    schedule = BandwidthSchedule((10.0,), 100.0)
    sends = []
    for k in range(50):  # every 0.2 s: an 8 kB message, then a 1 kB frame 0.5 ms later (queued)
        sends += [(0.2 * k, 8256), (0.2 * k + 0.0005, 1088)]
    sends += _every(1.0, 0.0, 10.0, 1088, offset=0.1)  # unqueued small probes
    out = _replay(LinkEstimator(), schedule, sends)
    values = [bw for t, bw, _ in out if t >= 3.0]
    print(f'estimates {min(values):.1f}..{max(values):.1f} Mbit/s on a 10 Mbit/s link')
    assert all(5.0 <= bw <= 20.0 for bw in values), (min(values), max(values))  # within a factor of 2
    rtts = [rtt for t, _, rtt in out if t >= 3.0]
    assert max(rtts) < 2.0 + 3.0 + 5.0  # base 2 ms + software overhead, not the 6.6 ms wait


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_tracks_the_demo_schedule_with_small_frames_and_periodic_probes(seed):
    """Small remote frames at 10 Hz plus the device's probes (a 1 kB one and a large one every 0.5 s).

    The large probe goes out when the frame's answer came back (so it never delays a frame), and
    its size follows the estimate (the device aims at <= 25 ms of serialization, at least 4160 B).
    """
    step = 15.0
    schedule = BandwidthSchedule((20.0, 2.0, 0.5, 10.0), step, loop=False)
    est = LinkEstimator()
    link = Bottleneck(schedule, 2.0)
    rng = np.random.default_rng(seed)
    arrivals = []  # (answer time, sent, size)
    checks = {}
    t = 0.0
    next_probe = 0.0
    sizes = (4160, 8256, 16448, 32832)
    pending = []
    tick = 0.0
    while t < 4 * step:
        due = link.admit(1088, t)
        answer = due + (3.0 + rng.exponential(2.0)) / 1e3
        pending.append((answer, t, 1088))
        if t >= next_probe:
            bw = est.bandwidth_mbps
            fits = [s for s in sizes if bw is not None and 8.0 * s / (bw * 1e3) <= 25.0]
            size = max(fits) if fits else sizes[0]
            sent = answer  # sent when the frame's answer arrived
            pending.append((link.admit(size, sent) + (3.0 + rng.exponential(2.0)) / 1e3, sent, size))
            next_probe = t + 0.5
        t += 0.1
        while tick <= t:
            for item in sorted(p for p in pending if p[0] <= tick):
                est.add(LinkSample(item[0], item[2], (item[0] - item[1]) * 1e3, item[1]))
                pending.remove(item)
            est.update(tick)
            phase_end = (int(tick // step) + 1) * step
            if phase_end - 1.0 <= tick < phase_end:
                checks.setdefault(schedule.mbps_at(tick), []).append(est.bandwidth_mbps)
            tick += 0.2
        arrivals.append(answer)
    for mbps, values in checks.items():
        print(f'{mbps:g} Mbit/s: estimates {min(values):.2f}..{max(values):.2f} in the last second of the step')
        assert all(abs(v - mbps) / mbps < 0.4 for v in values), (mbps, values)


def test_a_probe_size_no_longer_used_does_not_keep_the_old_link_alive():
    """The device picks its probe size from the estimate: after a drop the old size stops coming.

    At 8 Mbit/s the large probes are 16 kB; when the link drops to 2 Mbit/s they become 4 kB.
    The 16 kB samples of the fast link are still in the window and must not hold the estimate up.
    """
    schedule = BandwidthSchedule((8.0, 2.0), 6.0, loop=False)
    sends = (_every(0.2, 0.0, 12.0, 1088) + _every(0.2, 0.0, 6.0, 16448, offset=0.1)
             + _every(0.2, 6.0, 12.0, 4160, offset=0.1))
    out = _replay(LinkEstimator(), schedule, sends)
    after = [bw for t, bw, _ in out if 9.5 <= t <= 12.0]
    print(f'3.5-6 s after the drop to 2 Mbit/s: {min(after):.2f}..{max(after):.2f} Mbit/s')
    assert all(1.4 <= bw <= 2.6 for bw in after), after


def test_the_rtt_is_the_round_trip_a_frame_typically_sees():
    """The published RTT is the median small-message transfer (minus serialization), not an optimistic low quantile."""
    est = LinkEstimator(EstimatorConfig(window_s=10.0))
    rng = np.random.default_rng(3)
    transfers = 5.0 + rng.exponential(4.0, 600)  # 5 ms base, heavy scheduling tail: median 7.8, 0.25 quantile 6.2
    published = []
    for i, t in enumerate(transfers):
        est.add(LinkSample(0.02 * i, 500, float(t)))
        published.append(est.update(0.02 * i)[1])
    typical = float(np.mean(published[100:]))
    print(f'published RTT {typical:.2f} ms; transfers: median {np.median(transfers):.2f}, '
          f'0.25 quantile {np.quantile(transfers, 0.25):.2f} ms')
    assert typical == pytest.approx(5.0 + 4.0 * np.log(2.0), abs=0.6)
