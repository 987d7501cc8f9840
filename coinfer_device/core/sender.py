# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""How the device hands a feature message to the link: on the caller's thread or from a sender thread.

Every sender has ``send(item, nbytes) -> bool`` (False = dropped), ``queued() -> int`` and
``close()`` (:class:`Sender`); :class:`coinfer_device.core.link_emulator.LinkEmulator` is the third
one.  :class:`InlineSender` publishes at once: the frame crosses one thread boundary (camera
callback -> inference worker) instead of two, and a synchronous Fast DDS publish of a 64 KB
message took ~0.2 ms on loopback while each thread hand-off cost 0.3-0.45 ms (p90 up to 5 ms).
:class:`ThreadSender` is for slow real links, where a synchronous publish of a large message
blocks until the link has taken it.  No ROS import.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Protocol

from coinfer_device.core.thread_names import SENDER_THREAD, name_this_thread


class Sender(Protocol):
    """Hands feature messages to the link."""

    def send(self, item: Any, nbytes: int) -> bool:
        """Send ``item`` of ``nbytes`` bytes; return False when it was dropped."""

    def queued(self) -> int:
        """Return the number of messages not handed to the link yet."""

    def close(self) -> None:
        """Stop sending (a thread, if any, ends)."""


class InlineSender:
    """Publish on the caller's thread."""

    def __init__(self, publish: Callable[[Any], Any]) -> None:
        self._publish = publish

    def send(self, item: Any, nbytes: int) -> bool:
        """Publish ``item`` now."""
        self._publish(item)
        return True

    def queued(self) -> int:
        """Return 0: nothing ever waits."""
        return 0

    def close(self) -> None:
        """Do nothing (no thread)."""


class ThreadSender:
    """Publish from a dedicated thread, so a slow link never blocks the caller."""

    def __init__(self, publish: Callable[[Any], Any]) -> None:
        self._publish = publish
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name='feature-sender', daemon=True)
        self._thread.start()

    def send(self, item: Any, nbytes: int) -> bool:
        """Queue ``item`` for the sender thread."""
        self._queue.put(item)
        return True

    def queued(self) -> int:
        """Return the number of messages waiting for the sender thread."""
        return self._queue.qsize()

    def _run(self) -> None:
        name_this_thread(SENDER_THREAD)
        while (item := self._queue.get()) is not None:
            self._publish(item)

    def close(self) -> None:
        """Let the thread publish what is queued, then end it (waits at most 2 s)."""
        self._queue.put(None)
        self._thread.join(timeout=2.0)
