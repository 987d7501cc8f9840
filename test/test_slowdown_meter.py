# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The measured compute slowdown: median of measured / profiled model time over a time window."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinfer_device.core.action import Action
from coinfer_device.core.profile import Profile
from coinfer_device.core.slowdown_meter import SlowdownMeter


def test_median_of_the_window_and_forgetting_old_samples():
    meter = SlowdownMeter(window_s=2.0)
    assert meter.value(0.0) is None
    for t, measured in ((0.0, 2.0), (0.5, 2.2), (1.0, 9.0)):  # one outlier: the median ignores it
        assert meter.add(measured, 1.0, t)
    assert meter.value(1.0) == pytest.approx(2.2)
    assert meter.add(3.0, 1.0, 2.8)  # 0.0 and 0.5 leave the window
    assert meter.value(2.8) == pytest.approx((9.0 + 3.0) / 2)
    assert meter.value(10.0) is None


def test_samples_without_information_are_ignored():
    meter = SlowdownMeter(min_expected_ms=0.05)
    assert not meter.add(1.0, 0.0, 0.0)  # nothing computed (partition 0 on the device)
    assert not meter.add(float('nan'), 1.0, 0.0)  # a record written without the compute fields
    assert not meter.add(-1.0, 1.0, 0.0)
    assert meter.value(0.0) is None


@given(st.lists(st.floats(0.0, 1e4), min_size=1, max_size=50), st.floats(0.05, 100.0))
def test_the_slowdown_is_within_the_range_of_the_samples(measured, expected):
    meter = SlowdownMeter(window_s=1e9)
    for i, m in enumerate(measured):
        meter.add(m, expected, float(i))
    value = meter.value(float(len(measured)))
    assert min(measured) / expected - 1e-9 <= value <= max(measured) / expected + 1e-9


def test_the_profile_splits_compute_into_the_model_and_the_codec():
    profile = Profile.load()
    local = Action(1, profile.branch_points[1], 0)
    remote = Action(2, 4, 8)
    assert profile.device_model_ms(local) == pytest.approx(profile.device_compute_ms(local))
    assert profile.device_model_ms(remote) == pytest.approx(
        profile.device_compute_ms(remote) - profile.timing.encode_ms[(4, 8)])
    assert profile.edge_model_ms(remote) == pytest.approx(
        profile.edge_compute_ms(remote) - profile.timing.decode_ms[(4, 8)])
    assert profile.edge_model_ms(local) == 0.0
    assert profile.device_model_ms(Action(2, 0, 8)) == 0.0 and math.isfinite(profile.edge_model_ms(Action(2, 0, 8)))
