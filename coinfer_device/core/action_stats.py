# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Measured latency per action from per-frame results (``coinfer/result`` records; no ROS).

Frames re-run locally after an edge timeout (``fallback`` 3) are left out: their ``total_ms``
holds the timeout wait, which is not a cost of the action they finally ran.  ``framework_ms`` is
what the frame paid beyond the device's work, the link and the edge's work
(``total - device - transfer - edge``): waiting for the inference thread, hand-offs, completion.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np

from coinfer_device.core.action import Action
from coinfer_device.core.records import FALLBACK_EDGE_TIMEOUT, Result

TIMED_FIELDS = ('total_ms', 'device_ms', 'device_compute_ms', 'transfer_ms', 'edge_ms', 'edge_compute_ms',
                'framework_ms')


@dataclass
class ActionStats:
    """Latency statistics of one action (ms), with accuracy where the frames were labelled."""

    exit: int
    partition: int
    bits: int
    frames: int
    labelled: int
    accuracy: float
    deadline_miss_rate: float
    payload_bytes: float
    total_ms: float
    total_p90_ms: float
    device_ms: float
    device_compute_ms: float
    transfer_ms: float
    edge_ms: float
    edge_compute_ms: float
    framework_ms: float

    @property
    def action(self) -> Action:
        """Return the action."""
        return Action(self.exit, self.partition, self.bits)

    def to_row(self) -> dict[str, float | int]:
        """Return the CSV row (medians unless the name says otherwise)."""
        return asdict(self)


COLUMNS = tuple(ActionStats.__dataclass_fields__)


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else math.nan


def action_stats(results: Sequence[Result], labels: Sequence[int | None] | None = None) -> list[ActionStats]:
    """Return one :class:`ActionStats` per action used, in action order (``labels[i]`` = class of frame ``i``)."""
    labels = list(labels) if labels is not None else [None] * len(results)
    groups: dict[Action, list[int]] = {}
    for i, r in enumerate(results):
        if r.fallback != FALLBACK_EDGE_TIMEOUT and math.isfinite(r.total_ms):
            groups.setdefault(r.action, []).append(i)
    out = []
    for action in sorted(groups):
        idx = groups[action]
        rs = [results[i] for i in idx]
        labelled = [(results[i].class_id, labels[i]) for i in idx if labels[i] is not None]
        total = [r.total_ms for r in rs]
        out.append(ActionStats(
            *action.to_list(), frames=len(rs), labelled=len(labelled),
            accuracy=float(np.mean([p == y for p, y in labelled])) if labelled else math.nan,
            deadline_miss_rate=float(np.mean([not r.deadline_met for r in rs])),
            payload_bytes=_median([float(r.payload_bytes) for r in rs]),
            total_ms=_median(total), total_p90_ms=float(np.percentile(total, 90)),
            device_ms=_median([r.device_ms for r in rs]), device_compute_ms=_median([r.device_compute_ms for r in rs]),
            transfer_ms=_median([r.transfer_ms for r in rs]), edge_ms=_median([r.edge_ms for r in rs]),
            edge_compute_ms=_median([r.edge_compute_ms for r in rs]),
            framework_ms=_median([r.total_ms - r.device_ms - r.transfer_ms - r.edge_ms for r in rs])))
    return out


def format_stats(stats: Iterable[ActionStats]) -> str:
    """Return a markdown table of per-action medians."""
    lines = ['| action | frames | total ms (p90) | device ms | device compute ms | transfer ms | edge ms | '
             'edge compute ms | framework ms | payload B | miss % | accuracy (labelled) |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for s in stats:
        acc = f'{s.accuracy:.3f} ({s.labelled})' if s.labelled else '- (0)'
        lines.append(f'| {s.action.label()} | {s.frames} | {s.total_ms:.2f} ({s.total_p90_ms:.2f}) | '
                     f'{s.device_ms:.2f} | {s.device_compute_ms:.2f} | {s.transfer_ms:.2f} | {s.edge_ms:.2f} | '
                     f'{s.edge_compute_ms:.2f} | {s.framework_ms:.2f} | {s.payload_bytes:.0f} | '
                     f'{100 * s.deadline_miss_rate:.1f} | {acc} |')
    return '\n'.join(lines)
