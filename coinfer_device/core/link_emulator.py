# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""In-process emulation of a slow link: one FIFO bottleneck with a bandwidth schedule and a fixed RTT.

A message of ``n`` bytes entering at time ``t`` starts transmitting when the link is free
(``max(t, busy_until)``), occupies it for ``8 n / bandwidth`` (integrated over the
piecewise-constant schedule, so a message straddling a step is charged correctly) and is
delivered ``rtt_ms`` after its last bit.  The whole RTT is charged on the way out because
the small result that comes back is not delayed; the round trip the device measures is
then ``queueing + serialization + rtt``, as on a real link with a small reply.
A message whose queueing delay would exceed ``max_queue_ms`` is dropped (tail drop).

:class:`LinkEmulator` runs the schedule in a sender thread that calls ``deliver`` at each
message's delivery time.  No ROS import.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class BandwidthSchedule:
    """Bandwidth in Mbit/s that changes every ``step_s``; cycles when ``loop``, else holds the last value."""

    mbps: tuple[float, ...]
    step_s: float
    loop: bool = True

    def __post_init__(self) -> None:
        if not self.mbps or any(not (v > 0) for v in self.mbps):
            raise ValueError(f'bandwidth schedule needs positive values, got {list(self.mbps)}')
        if not self.step_s > 0:
            raise ValueError(f'step_s must be > 0, got {self.step_s}')

    def _index(self, i: int) -> int:
        return i % len(self.mbps) if self.loop else min(i, len(self.mbps) - 1)

    def index_at(self, t: float) -> int:
        """Return the schedule index in force at ``t`` seconds after the start."""
        return self._index(int(max(t, 0.0) // self.step_s))

    def mbps_at(self, t: float) -> float:
        """Return the bandwidth at ``t`` seconds after the start."""
        return self.mbps[self.index_at(t)]

    def transmit_end(self, start: float, nbytes: int) -> float:
        """Return when the last bit of ``nbytes`` leaves if sending starts at ``start`` (seconds)."""
        bits = 8.0 * nbytes
        t = max(start, 0.0)
        step = int(t // self.step_s)  # an integer step counter: float boundaries never stall the loop
        if (step + 1) * self.step_s <= t:
            step += 1
        while True:
            rate = self.mbps[self._index(step)] * 1e6
            last = not self.loop and step >= len(self.mbps) - 1
            step_end = float('inf') if last else (step + 1) * self.step_s
            capacity = (step_end - t) * rate
            if bits <= capacity:
                return t + bits / rate
            bits -= capacity
            t = step_end
            step += 1


class Bottleneck:
    """Pure timing of the FIFO link (times in seconds relative to the emulator's start)."""

    def __init__(self, schedule: BandwidthSchedule, rtt_ms: float, max_queue_ms: float = float('inf')) -> None:
        if rtt_ms < 0:
            raise ValueError(f'rtt_ms must be >= 0, got {rtt_ms}')
        self.schedule = schedule
        self.rtt_s = rtt_ms / 1e3
        self.max_queue_s = max_queue_ms / 1e3
        self.busy_until = 0.0

    def admit(self, nbytes: int, now: float) -> float | None:
        """Return the delivery time of a message entering at ``now``, or ``None`` if tail-dropped."""
        start = max(now, self.busy_until)
        if start - now > self.max_queue_s:
            return None
        self.busy_until = self.schedule.transmit_end(start, nbytes)
        return self.busy_until + self.rtt_s


class LinkEmulator:
    """Sender thread that hands each message to ``deliver`` at its emulated delivery time."""

    def __init__(self, bottleneck: Bottleneck, deliver: Callable[[Any], None],
                 on_drop: Callable[[Any], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.bottleneck = bottleneck
        self._deliver = deliver
        self._on_drop = on_drop
        self._clock = clock
        self._t0 = clock()
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stop = False
        self.dropped = 0
        self.delivered = 0
        self._thread = threading.Thread(target=self._run, name='link-emulator', daemon=True)
        self._thread.start()

    def elapsed(self) -> float:
        """Return seconds since the emulator started (the schedule's time axis)."""
        return self._clock() - self._t0

    def current_mbps(self) -> float:
        """Return the emulated bandwidth now."""
        return self.bottleneck.schedule.mbps_at(self.elapsed())

    def send(self, item: Any, nbytes: int) -> bool:
        """Queue ``item`` of ``nbytes``; return False (and call ``on_drop``) if the queue is full."""
        with self._cv:
            due = self.bottleneck.admit(nbytes, self.elapsed())
            if due is None:
                self.dropped += 1
            else:
                heapq.heappush(self._heap, (due, next(self._seq), item))
                self._cv.notify()
        if due is None and self._on_drop is not None:
            self._on_drop(item)
        return due is not None

    def queued(self) -> int:
        """Return the number of messages in flight."""
        with self._cv:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (not self._heap or self._heap[0][0] > self.elapsed()):
                    timeout = None if not self._heap else max(self._heap[0][0] - self.elapsed(), 0.0)
                    self._cv.wait(timeout)
                if self._stop:
                    return
                _, _, item = heapq.heappop(self._heap)
            self._deliver(item)
            self.delivered += 1

    def close(self) -> None:
        """Stop the sender thread; messages still queued are discarded."""
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=2.0)


def schedule_from_params(mbps: Sequence[float], step_s: float, loop: bool) -> BandwidthSchedule:
    """Build a schedule from node parameters (raises ValueError with the reason)."""
    return BandwidthSchedule(tuple(float(v) for v in mbps), float(step_s), bool(loop))
