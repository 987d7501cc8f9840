# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Match the device node's emulated CPU to the latency model a policy plans with.

The policy's model charges ``profile.device_compute_ms(a) * device_slowdown`` for the device's
part.  The profile times the network in a tight loop (warm caches); the device node runs it
once per camera frame, and one call every 50-100 ms took 2.1-2.7x the profiled time on the
development machine (full network 2.69 ms spaced 50 ms apart, 1.30 ms back to back, profile
1.007 ms).  A device node emulating ``device_slowdown`` x its *measured* compute
(``compute_slowdown``) therefore runs that factor slower than the model.  :func:`matched_slowdown`
returns the ``compute_slowdown`` that makes the device compute equal the model's:
``device_slowdown * profiled / measured``, measured per frame as the node runs it.
No ROS import.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from coinfer_device.core.action import Action
from coinfer_device.core.model import MultiExitAlexNet
from coinfer_device.core.profile import Profile


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`matched_slowdown`: the factor to emulate and what it is based on."""

    compute_slowdown: float
    measured_ms: float  # median per-frame time of the full network here
    profiled_ms: float  # the profile's time of the same work


def per_frame_ms(model: MultiExitAlexNet, period_s: float, calls: int = 15) -> float:
    """Return the median time of the full network (last exit, on the device) called once every ``period_s``."""
    spec = model.spec
    x = torch.zeros(1, spec.in_channels, spec.image_size, spec.image_size)
    exit_index = len(spec.exit_branch_points) - 1
    branch = spec.exit_branch_points[exit_index]
    times = []
    with torch.inference_mode():
        model.infer(x, branch, exit_index)  # first call: allocations
        for _ in range(calls):
            time.sleep(period_s)
            start = time.perf_counter()
            model.infer(x, branch, exit_index)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def matched_slowdown(device_slowdown: float, profiled_ms: float, measured_ms: float) -> Calibration:
    """Return the ``compute_slowdown`` at which measured x it equals ``device_slowdown`` x profiled (at least 1)."""
    if profiled_ms <= 0 or measured_ms <= 0:
        raise ValueError(f'times must be > 0, got profiled {profiled_ms} ms, measured {measured_ms} ms')
    return Calibration(max(1.0, device_slowdown * profiled_ms / measured_ms), measured_ms, profiled_ms)


def calibrate(model: MultiExitAlexNet, profile: Profile, device_slowdown: float, period_s: float,
              calls: int = 15) -> Calibration:
    """Return the :func:`matched_slowdown` of ``model`` timed here once every ``period_s`` against ``profile``.

    The work timed and profiled is the full network on the device (the last exit, nothing sent).
    """
    return matched_slowdown(device_slowdown, full_network_ms(profile), per_frame_ms(model, period_s, calls))


def full_network_ms(profile: Profile) -> float:
    """Return the profile's device time of the full network (the last exit, nothing sent): what is calibrated."""
    last = len(profile.branch_points) - 1
    return profile.device_compute_ms(Action(last, profile.branch_points[last], 0))
