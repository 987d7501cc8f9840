# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The device's bookkeeping: which decision applies, which frames wait for the edge, is the edge alive.

* :class:`DecisionKeeper` holds the newest decision and says when it is too old
  (receipt time on the device clock): then the configured fallback action applies.
* :class:`EdgeTracker` remembers every message sent to the edge until its answer arrives.
  A frame without an answer after ``timeout_s`` expires (the device re-runs it locally);
  ``timeouts_to_fallback`` expiries in a row put the device in *edge-down* mode, any answer
  ends it.  It also says when a *probe* is due: the link monitor needs both small messages
  (``<= small_bytes``, for the RTT) and large ones (``>= large_bytes``, for the bandwidth), so
  when no message of one kind went out for ``probe_interval_s`` a probe of that kind is due,
  whatever the policy sends (nothing, small frames or large frames).

Times are seconds of a monotonic clock passed in by the caller.  Thread-safe; no ROS import.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

from coinfer_device.core.action import Action


class DecisionKeeper:
    """The newest policy decision and its receipt time."""

    def __init__(self, fallback: Action, timeout_s: float) -> None:
        self.fallback = fallback
        self.timeout_s = timeout_s
        self._action: Action | None = None
        self._received = -float('inf')
        self._lock = threading.Lock()
        self.accepted = 0

    def offer(self, action: Action, now: float) -> None:
        """Store a (validated) decision received at ``now``."""
        with self._lock:
            self._action, self._received = action, now
            self.accepted += 1

    def current(self, now: float) -> tuple[Action, bool]:
        """Return ``(action, fresh)``: the newest decision, or the fallback when none is fresh."""
        with self._lock:
            if self._action is not None and now - self._received <= self.timeout_s:
                return self._action, True
            return self.fallback, False

    def age(self, now: float) -> float:
        """Return seconds since the newest decision arrived (``inf`` if none)."""
        with self._lock:
            return now - self._received


PROBE_SMALL = 'small'
PROBE_LARGE = 'large'


@dataclass
class Pending:
    """A message sent to the edge and not answered yet (``stamp_ns`` identifies it)."""

    seq: int
    sent_at: float
    stamp_ns: int
    probe: bool
    payload_bytes: int = 0
    data: Any = field(default=None, repr=False)


class EdgeTracker:
    """Messages in flight to the edge, expiry, the edge-down state and which probe is due."""

    def __init__(self, timeout_s: float, timeouts_to_fallback: int, probe_interval_s: float,
                 small_bytes: int = 2048, large_bytes: int = 4096) -> None:
        self.timeout_s = timeout_s
        self.timeouts_to_fallback = max(1, int(timeouts_to_fallback))
        self.probe_interval_s = probe_interval_s
        self.small_bytes = small_bytes
        self.large_bytes = large_bytes
        self._pending: dict[int, Pending] = {}  # by stamp: a frame and its probe share a frame_seq
        self._lock = threading.Lock()
        self._consecutive = 0
        self._last_sent = {PROBE_SMALL: -float('inf'), PROBE_LARGE: -float('inf')}
        self.edge_down = False
        self.answered_total = 0
        self.expired_total = 0
        self.unknown_answers = 0
        self.fallback_entries = 0

    def sent(self, pending: Pending) -> None:
        """Record a frame (or probe) handed to the link."""
        with self._lock:
            self._pending[pending.stamp_ns] = pending
            if pending.payload_bytes <= self.small_bytes:
                self._last_sent[PROBE_SMALL] = max(self._last_sent[PROBE_SMALL], pending.sent_at)
            if pending.payload_bytes >= self.large_bytes:
                self._last_sent[PROBE_LARGE] = max(self._last_sent[PROBE_LARGE], pending.sent_at)

    def answered(self, seq: int, stamp_ns: int) -> tuple[Pending | None, bool]:
        """Match an edge answer; return ``(pending or None, edge_came_back)``.

        An answer whose echoed stamp matches nothing sent (a stale answer meant for an earlier
        run of the device) or whose frame number differs is treated as unknown.
        """
        with self._lock:
            p = self._pending.get(stamp_ns)
            if p is None or p.seq != seq:
                self.unknown_answers += 1
                return None, False
            del self._pending[stamp_ns]
            self.answered_total += 1
            self._consecutive = 0
            came_back = self.edge_down
            self.edge_down = False
            return p, came_back

    def expire(self, now: float) -> tuple[list[Pending], bool]:
        """Remove frames unanswered for ``timeout_s``; return them and whether edge-down just began."""
        with self._lock:
            late = [p for p in self._pending.values() if now - p.sent_at > self.timeout_s]
            for p in late:
                del self._pending[p.stamp_ns]
            self.expired_total += len(late)
            self._consecutive += len(late)
            began = False
            if late and not self.edge_down and self._consecutive >= self.timeouts_to_fallback:
                self.edge_down = True
                self.fallback_entries += 1
                began = True
            return sorted(late, key=lambda p: (p.seq, p.stamp_ns)), began

    def probe_due(self, now: float) -> str | None:
        """Return the kind of probe due now (:data:`PROBE_SMALL` / :data:`PROBE_LARGE`) or ``None``.

        A kind is due when no message of that size went out for ``probe_interval_s``; when both
        are, the one missing for longer (small first, the RTT is the bandwidth's reference).
        ``probe_interval_s`` 0 disables probes.
        """
        with self._lock:
            if self.probe_interval_s <= 0:
                return None
            due = [k for k in (PROBE_SMALL, PROBE_LARGE) if now - self._last_sent[k] >= self.probe_interval_s]
            return min(due, key=lambda k: self._last_sent[k]) if due else None

    def waiting(self, stamp_ns: int) -> bool:
        """Return whether the message stamped ``stamp_ns`` is still waiting for its answer."""
        with self._lock:
            return stamp_ns in self._pending

    def in_flight(self) -> int:
        """Return the number of frames waiting for an answer."""
        with self._lock:
            return len(self._pending)


def choose_probe(kind: str, candidates: Sequence[tuple[Action, int]], small_bytes: int, large_bytes: int,
                 bandwidth_mbps: float | None, target_ms: float) -> Action:
    """Return the probe action of ``kind`` among ``(action, payload bytes)`` candidates.

    Small: the smallest candidate (``<= small_bytes``).  Large: the largest candidate
    (``>= large_bytes``) that serializes within ``target_ms`` at the measured bandwidth, so the
    serialization stands out of the scheduling noise on a fast link without holding a slow
    link for long; the smallest large one when none fits, the largest one while nothing is
    measured (any link then gives a measurable first sample).
    """
    if kind == PROBE_SMALL:
        fitting = [c for c in candidates if c[1] <= small_bytes]
        return min(fitting, key=lambda c: c[1])[0]
    large = sorted((c for c in candidates if c[1] >= large_bytes), key=lambda c: c[1])
    if bandwidth_mbps is None or bandwidth_mbps <= 0:
        return large[-1][0]
    fits = [c for c in large if 8.0 * c[1] / (bandwidth_mbps * 1e3) <= target_ms]
    return (fits[-1] if fits else large[0])[0]
