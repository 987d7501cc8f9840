# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Link estimator: bandwidth and RTT from noisy round-trip samples."""

import numpy as np
import pytest

from coinfer_edge.link_estimator import EstimatorConfig, LinkEstimator, LinkSample


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


def test_holds_values_without_new_samples_and_caps_fast_links():
    cfg = EstimatorConfig(window_s=1.0, max_bandwidth_mbps=100.0)
    est = LinkEstimator(cfg)
    est.add(LinkSample(0.0, 500, 5.0))
    est.add(LinkSample(0.1, 10_000, 5.0))  # no measurable serialization: "faster than resolvable"
    bw, rtt = est.update(0.2)
    assert bw == 100.0 and rtt == pytest.approx(5.0, abs=0.01)
    assert est.update(60.0) == (bw, rtt) and not est.samples


def test_large_only_samples_wait_for_an_rtt():
    est = LinkEstimator()
    est.add(LinkSample(0.0, 50_000, 50.0))
    assert est.update(0.1) == (None, None)
