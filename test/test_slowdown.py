# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Matching the device's emulated CPU to the policy's latency model."""

import pytest
import torch

from coinfer_device.core.checkpoint import load_checkpoint
from coinfer_device.core.slowdown import matched_slowdown, per_frame_ms
from graph_support import model_checkpoint


def test_matched_slowdown_makes_measured_compute_equal_the_model():
    c = matched_slowdown(6.0, profiled_ms=1.0, measured_ms=2.5)
    assert c.compute_slowdown == pytest.approx(2.4)
    assert c.compute_slowdown * c.measured_ms == pytest.approx(6.0 * c.profiled_ms)
    assert matched_slowdown(6.0, profiled_ms=1.0, measured_ms=10.0).compute_slowdown == 1.0  # never faster
    with pytest.raises(ValueError):
        matched_slowdown(6.0, profiled_ms=0.0, measured_ms=1.0)


def test_per_frame_time_is_measured_on_the_full_network():
    torch.set_num_threads(1)
    model = load_checkpoint(model_checkpoint()).model
    ms = per_frame_ms(model, period_s=0.01, calls=5)
    assert 0.0 < ms < 1000.0
