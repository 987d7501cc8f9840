# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Which camera frames reached the device: received, missed before the device listened, or lost on the way.

The camera announces every frame it publishes with its frame number and the image's stamp
(camera_node: the ``frame_seq`` field of ``coinfer/ground_truth``, a reliable topic); the device
reports the stamp of every image it receives on ``image_raw`` (best effort, keep-last 1: a frame
can be overwritten before the callback runs).  An announcement *settles* ``grace_s`` after it
arrived: its frame was received if an image with its stamp came, else it is **lost**.  Frame
numbers never announced to the device (a gap) are settled from the images received between the
neighbouring announcements.  The frames the camera published before the first announcement the
device heard (discovery at start-up, or the device started later) are **missed at start**, less
the images of that time that did arrive.  So, for every settled frame number,
``camera_frames == missed_at_start + received + lost``.

A camera that announces nothing (any other driver publishing only ``image_raw``) leaves the
accounting unavailable: lost frames cannot be told from a camera that publishes less.  A frame
number lower than the previous one means the camera restarted: the accounting starts again.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class FrameAccounting:
    """Count camera frames as received, lost or missed at start (see module docstring); times in seconds."""

    def __init__(self, grace_s: float = 2.0, keep_s: float | None = None) -> None:
        self.grace_s = grace_s
        self.keep_s = keep_s if keep_s is not None else 3 * grace_s
        self.missed_at_start = 0
        self.received = 0
        self.lost = 0
        self._lock = threading.Lock()
        self._pending: deque[tuple[float, int, int]] = deque()  # (arrival, stamp, frame number)
        self._images: dict[int, float] = {}  # stamp -> arrival, not yet settled
        self._last: tuple[int, int] | None = None  # (frame number, stamp) settled last
        self._newest_seq = -1

    @property
    def available(self) -> bool:
        """Return whether the camera announced any frame (otherwise nothing can be counted)."""
        return self._last is not None or bool(self._pending)

    @property
    def camera_frames(self) -> int:
        """Return the frames the camera published up to the newest settled one."""
        return self.missed_at_start + self.received + self.lost

    def image(self, stamp_ns: int, now: float) -> None:
        """Record an image received by the device."""
        with self._lock:
            self._images[stamp_ns] = now

    def announce(self, stamp_ns: int, frame_seq: int, now: float) -> None:
        """Record the camera's announcement of frame ``frame_seq`` with this image stamp."""
        if frame_seq < 0:
            return
        with self._lock:
            if frame_seq <= self._newest_seq:  # the camera restarted: settle what is known, count anew
                self._settle(float('inf'))
                self._last = None
            self._newest_seq = frame_seq
            self._pending.append((now, stamp_ns, frame_seq))

    def settle(self, now: float) -> None:
        """Settle announcements older than ``grace_s`` and forget old unannounced images."""
        with self._lock:
            self._settle(now - self.grace_s)
            limit = now - self.keep_s
            for stamp in [s for s, t in self._images.items() if t < limit]:
                del self._images[stamp]

    def values(self) -> dict[str, Any]:
        """Return the counts for diagnostics."""
        if not self.available:
            return {'frame_accounting': 'unavailable (the camera announces no frame numbers)'}
        return {'camera_frames': self.camera_frames, 'camera_frames_received': self.received,
                'camera_frames_lost': self.lost, 'camera_frames_missed_at_start': self.missed_at_start}

    def _settle(self, before: float) -> None:
        while self._pending and self._pending[0][0] <= before:
            _, stamp, seq = self._pending.popleft()
            if self._last is None:
                arrived = self._take(lambda s: s < stamp)
                self.received += min(arrived, seq)
                self.missed_at_start += max(seq - arrived, 0)
            else:
                last_seq, last_stamp = self._last
                gap = seq - last_seq - 1
                if gap > 0:
                    arrived = min(self._take(lambda s: last_stamp < s < stamp), gap)
                    self.received += arrived
                    self.lost += gap - arrived
            if self._images.pop(stamp, None) is not None:
                self.received += 1
            else:
                self.lost += 1
            self._last = (seq, stamp)

    def _take(self, chosen: Any) -> int:
        stamps = [s for s in self._images if chosen(s)]
        for s in stamps:
            del self._images[s]
        return len(stamps)
