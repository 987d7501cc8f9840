# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Measured compute slowdown: how much slower the model runs here and now than the profile says.

Each frame gives one sample, the model compute a node measured (``device_compute_ms`` on the device,
``edge_compute_ms`` on the edge, see :mod:`coinfer_device.core.records`) divided by the profile's time
of the same work (:meth:`~coinfer_device.core.profile.Profile.device_model_ms` /
:meth:`~coinfer_device.core.profile.Profile.edge_model_ms`).  The slowdown is the median of the
samples of the last ``window_s`` seconds: CPU contention as the pipeline really feels it, where a
host's CPU-load percentage only hints at it.  The profile is timed in a tight loop, so on an idle
machine a node running one frame per camera period already reads above 1 (cold caches,
docs/benchmarks.md).  Samples whose profiled time is below ``min_expected_ms`` (nothing computed,
e.g. partition 0 on the device) carry no information and are ignored.  No ROS import.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque


class SlowdownMeter:
    """Median of measured / profiled compute over a sliding time window (thread-safe)."""

    def __init__(self, window_s: float = 2.0, min_expected_ms: float = 0.05, max_samples: int = 1000) -> None:
        if not window_s > 0:
            raise ValueError(f'window_s must be > 0, got {window_s}')
        self.window_s = window_s
        self.min_expected_ms = min_expected_ms
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self._lock = threading.Lock()

    def add(self, measured_ms: float, expected_ms: float, now_s: float) -> bool:
        """Add one frame's sample at time ``now_s``; return whether it was usable."""
        if not (math.isfinite(measured_ms) and measured_ms >= 0 and math.isfinite(expected_ms)) \
                or expected_ms < self.min_expected_ms:
            return False
        with self._lock:
            self._samples.append((now_s, measured_ms / expected_ms))
        return True

    def value(self, now_s: float) -> float | None:
        """Return the median slowdown of the samples of the last ``window_s`` seconds, or ``None`` without any."""
        with self._lock:
            while self._samples and self._samples[0][0] < now_s - self.window_s:
                self._samples.popleft()
            if not self._samples:
                return None
            return statistics.median(ratio for _, ratio in self._samples)
