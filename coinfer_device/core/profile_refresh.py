# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Refresh the latency part of a profile from per-action measurements of a recorded run (no ROS).

The latency model (``coinfer_edge.core.decision.LatencyModel``) predicts a frame's device work as the
profile's ``device_compute_ms(a)`` times ``device_slowdown`` and the edge's as ``edge_compute_ms(a)``
times ``edge_slowdown``.  From the recorded results of every action with at least ``min_frames``
frames this module fits, weighted by frames,

- ``device_ms(a) = c_device + s_device * device_compute_ms(a)``: ``device_ms`` is all the robot's
  per-frame work, what it pays (including an emulated slowdown); ``s_device`` is how much slower
  the robot computes than the base profile's machine, ``c_device`` the per-frame work the profile
  has no entry for (image conversion, preprocessing, per-call overhead);
- ``edge_ms(a) = c_edge + s_edge * edge_compute_ms(a)`` over the remote actions (``s_edge`` 1 when
  no frame was sent: the edge keeps the base profile's times).

An intercept is fitted only when the actions' profile times span at least a factor 1.5 and it comes
out positive; otherwise the line goes through 0.  The refreshed profile's block, exit and codec times
are the base profile's multiplied by ``s_device``: the robot's own timings.  It therefore goes with
``device_slowdown: 1`` and ``edge_slowdown: s_edge / s_device``, stored in the profile's
``settings.latency`` (and applied by ``coinfer-train-policy``) together with the latency model's two
framework terms: ``device_overhead_ms = c_device`` and ``remote_overhead_ms = c_edge`` plus the
frame-weighted median of the remote actions' ``framework_ms`` (what a sent frame paid beyond the
device, the link and the edge).  Payload sizes and the accuracy table are kept.  The measured transfer
and framework cost per action are stored in ``settings.refresh`` for reference.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import numpy as np

from coinfer_device.core.action_stats import ActionStats
from coinfer_device.core.profile import Profile, ProfileError


MIN_SPAN = 1.5


def fit_scale(x: Sequence[float], y: Sequence[float], w: Sequence[float]) -> tuple[float, float]:
    """Return ``(scale, intercept)`` of the weighted least-squares line ``y = intercept + scale * x``.

    The intercept is kept only when ``x`` spans at least a factor :data:`MIN_SPAN` and it is positive;
    else 0 (two nearly equal ``x`` leave the intercept undetermined).
    """
    x, y, w = (np.asarray(v, dtype=np.float64) for v in (x, y, w))
    if x.max() >= MIN_SPAN * x.min():
        a = np.stack([np.ones_like(x), x], axis=1) * np.sqrt(w)[:, None]
        intercept, scale = np.linalg.lstsq(a, y * np.sqrt(w), rcond=None)[0]
        if intercept > 0 and scale > 0:
            return float(scale), float(intercept)
    return float(np.sum(w * x * y) / np.sum(w * x * x)), 0.0


def refresh_profile(base: Profile, stats: Sequence[ActionStats], min_frames: int = 5,
                    sources: Sequence[str] = ()) -> Profile:
    """Return ``base`` with its latency part refreshed from ``stats`` (module docstring)."""
    known = set(base.actions())
    used = [s for s in stats if s.frames >= min_frames and s.action in known]
    dev = [(base.device_compute_ms(s.action), s.device_ms, s.frames) for s in used
           if math.isfinite(s.device_ms) and base.device_compute_ms(s.action) > 0]
    edge = [(base.edge_compute_ms(s.action), s.edge_ms, s.frames) for s in used
            if not base.is_local(s.action) and math.isfinite(s.edge_ms) and base.edge_compute_ms(s.action) > 0]
    if not dev:
        raise ProfileError(f'no action of the profile ran at least {min_frames} frames in the recording '
                           f'(actions seen: {[f"{s.action.label()}: {s.frames}" for s in stats]})')
    s_dev, c_dev = fit_scale(*zip(*dev))
    s_edge, c_edge = fit_scale(*zip(*edge)) if edge else (1.0, 0.0)
    out = copy.deepcopy(base)
    out.block_ms = [v * s_dev for v in base.block_ms]
    out.exit_ms = [v * s_dev for v in base.exit_ms]
    out.encode_ms = {k: v * s_dev for k, v in base.encode_ms.items()}
    out.decode_ms = {k: v * s_dev for k, v in base.decode_ms.items()}
    out.frame = base.frame.scaled(s_dev) if base.frame is not None else None
    out.machine = {'timings': 'refreshed from recorded runs (the robot measured as it ran)',
                   'base_profile_machine': base.machine}
    out.settings = dict(base.settings)
    remote = [(s.framework_ms, s.frames) for s in used if not base.is_local(s.action) and math.isfinite(s.framework_ms)]
    framework = _weighted_median(remote) if remote else 0.0
    out.settings['latency'] = {'device_slowdown': 1.0, 'edge_slowdown': round(s_edge / s_dev, 6),
                               'device_overhead_ms': round(c_dev, 4),
                               'remote_overhead_ms': round(max(c_edge + framework, 0.0), 4)}
    out.settings['refresh'] = refresh_report(base, used, (s_dev, c_dev), (s_edge, c_edge) if edge else None,
                                             min_frames, sources)
    out.validate()
    return out


def _weighted_median(values: Sequence[tuple[float, int]]) -> float:
    """Return the median of ``(value, weight)`` pairs (the value where the cumulative weight reaches half)."""
    ordered = sorted(values)
    half, total = sum(w for _, w in ordered) / 2.0, 0
    for value, weight in ordered:
        total += weight
        if total >= half:
            return float(value)
    return float(ordered[-1][0])


def refresh_report(base: Profile, used: Sequence[ActionStats], device: tuple[float, float],
                   edge: tuple[float, float] | None, min_frames: int, sources: Sequence[str]) -> dict[str, Any]:
    """Return what the refresh measured and fitted, per action and overall (JSON-friendly)."""
    def r(v: float) -> float | None:
        return round(v, 4) if math.isfinite(v) else None

    return {'bags': list(sources), 'min_frames': min_frames,
            'device_scale': round(device[0], 4), 'device_overhead_ms': round(device[1], 4),
            'edge_scale': None if edge is None else round(edge[0], 4),
            'edge_overhead_ms': None if edge is None else round(edge[1], 4),
            'actions': [{'action': s.action.to_list(), 'frames': s.frames,
                         'device_ms': r(s.device_ms), 'profile_device_ms': r(base.device_compute_ms(s.action)),
                         'edge_ms': r(s.edge_ms), 'profile_edge_ms': r(base.edge_compute_ms(s.action)),
                         'transfer_ms': r(s.transfer_ms), 'framework_ms': r(s.framework_ms),
                         'total_ms': r(s.total_ms)} for s in used]}
