# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Diagnostics the way ``diagnostic_updater`` does them (there is no diagnostic_updater wheel).

:class:`Diagnostics` publishes one ``DiagnosticArray`` per period on the absolute ``/diagnostics``,
a status per task named ``<node>: <task>`` with the node's ``hardware_id`` (a parameter; default
the namespace, or the host name in the root namespace), and :class:`FrequencyStatus` rate checks.
A lifecycle node that is not active says so instead of reporting its values.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from coinfer_device.ros.conventions import DIAGNOSTICS_TOPIC
from coinfer_device.ros.params import Param
from coinfer_device.ros.runtime import inactive_message


# Parameters of every node that publishes diagnostics.
DIAGNOSTIC_PARAMS = [
    Param('hardware_id', '', "hardware_id of this node's diagnostics (rqt_robot_monitor, diagnostic_aggregator); "
          "'' = the node's namespace without the leading /, or the host name in the root namespace"),
]


class RateMeter:
    """Event counter that also reports the rate since the previous report."""

    def __init__(self) -> None:
        self.total = 0
        self._last_total = 0
        self._last_t = time.monotonic()
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        """Count ``n`` events."""
        with self._lock:
            self.total += n

    def rate(self) -> float:
        """Return events per second since the previous call."""
        now = time.monotonic()
        with self._lock:
            dt = max(now - self._last_t, 1e-6)
            r = (self.total - self._last_total) / dt
            self._last_total, self._last_t = self.total, now
        return r


Status = tuple[bytes, str, Mapping[str, Any]]


class FrequencyStatus:
    """``diagnostic_updater::FrequencyStatus``: the event rate over a sliding window against expected bounds.

    Each :meth:`status` call (one per diagnostics period) closes a window slot; the rate is the
    events of the last ``window`` periods over their duration.  No event: ERROR; below
    ``min_hz * (1 - tolerance)`` or above ``max_hz * (1 + tolerance)``: WARN; else OK.
    ``max_hz`` may be ``inf`` (no upper bound) and ``min_hz`` 0 (no lower bound).
    """

    def __init__(self, min_hz: float, max_hz: float = math.inf, tolerance: float = 0.1, window: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.min_hz, self.max_hz, self.tolerance = min_hz, max_hz, tolerance
        self._clock = clock
        self._lock = threading.Lock()
        self.count = 0
        now = clock()
        self._history: deque[tuple[int, float]] = deque([(0, now)] * window, maxlen=window)

    def tick(self, n: int = 1) -> None:
        """Count ``n`` events."""
        with self._lock:
            self.count += n

    def status(self) -> Status:
        """Return ``(level, message, values)`` with diagnostic_updater's keys, and close a window slot."""
        now = self._clock()
        with self._lock:
            count = self.count
            first_count, first_t = self._history[0]
            self._history.append((count, now))
        events, window = count - first_count, now - first_t
        freq = events / window if window > 0 else 0.0
        lo, hi = self.min_hz * (1 - self.tolerance), self.max_hz * (1 + self.tolerance)
        if events == 0:
            level, message = DiagnosticStatus.ERROR, 'No events recorded.'
        elif freq < lo:
            level, message = DiagnosticStatus.WARN, 'Frequency too low.'
        elif freq > hi:
            level, message = DiagnosticStatus.WARN, 'Frequency too high.'
        else:
            level, message = DiagnosticStatus.OK, 'Desired frequency met'
        values: dict[str, Any] = {'Events in window': events, 'Events since startup': count,
                                  'Duration of window (s)': window, 'Actual frequency (Hz)': freq}
        if self.min_hz == self.max_hz:
            values['Target frequency (Hz)'] = self.min_hz
        if self.min_hz > 0:
            values['Minimum acceptable frequency (Hz)'] = lo
        if math.isfinite(self.max_hz):
            values['Maximum acceptable frequency (Hz)'] = hi
        return level, message, values


def hardware_id_of(node: Node) -> str:
    """Return the node's ``hardware_id`` parameter, else its namespace (without ``/``), else the host name."""
    if node.has_parameter('hardware_id') and node.get_parameter('hardware_id').value:
        return str(node.get_parameter('hardware_id').value)
    return node.get_namespace().strip('/') or socket.gethostname()


class Diagnostics:
    """Publish the node's statuses on the absolute ``/diagnostics`` every ``period_s``, as diagnostic_updater does.

    Each task added with :meth:`add` (``collect() -> (level, message, values)``; level is a
    ``DiagnosticStatus`` byte) or :meth:`add_frequency` becomes one status named
    ``<node>: <task>``, where ``<node>`` is the node's fully qualified name without the leading
    slash (``device_node``, ``robot1/device_node``: diagnostic_aggregator keys items by name, so
    the namespace keeps two robots apart), with ``hardware_id`` from :func:`hardware_id_of`.
    ``collect`` given here is added as task ``task``.  While a lifecycle node is not active, every
    task reports WARN with its state instead (its checks would only say that nothing flows).
    """

    def __init__(self, node: Node, collect: Callable[[], Status] | None = None, period_s: float = 1.0,
                 task: str = 'status') -> None:
        self._node = node
        self._tasks: list[tuple[str, Callable[[], Status], FrequencyStatus | None]] = []
        self._pub = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.prefix = node.get_fully_qualified_name().lstrip('/')
        self.hardware_id = hardware_id_of(node)
        if collect is not None:
            self.add(task, collect)
        self._timer = node.create_timer(period_s, self.publish)

    def add(self, task: str, collect: Callable[[], Status]) -> None:
        """Report ``collect()`` as status ``<node>: <task>``."""
        self._tasks.append((task, collect, None))

    def add_frequency(self, task: str, frequency: FrequencyStatus) -> FrequencyStatus:
        """Report a :class:`FrequencyStatus` as status ``<node>: <task>``; return it (``tick`` it per event)."""
        self._tasks.append((task, frequency.status, frequency))
        return frequency

    def statuses(self) -> list[DiagnosticStatus]:
        """Collect every task's status now."""
        idle = inactive_message(self._node)
        out = []
        for task, collect, frequency in self._tasks:
            if idle is None:
                level, message, values = collect()
            else:
                if frequency is not None:
                    frequency.status()  # the window keeps sliding: after activation it shows the last seconds
                level, message, values = DiagnosticStatus.WARN, idle, {}
            out.append(DiagnosticStatus(level=level, name=f'{self.prefix}: {task}', message=message,
                                        hardware_id=self.hardware_id,
                                        values=[KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]))
        return out

    def publish(self) -> None:
        """Collect and publish the node's statuses now."""
        arr = DiagnosticArray(status=self.statuses())
        arr.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(arr)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


def diagnostic_values(msg: DiagnosticArray) -> dict[str, dict[str, str]]:
    """Return ``{status name: {key: value}}`` of a DiagnosticArray (for tests and tools)."""
    return {s.name: {kv.key: kv.value for kv in s.values} for s in msg.status}


def level_of(problems: Iterable[tuple[bool, bytes]]) -> bytes:
    """Return the worst diagnostic level among the ``(condition, level)`` pairs that hold."""
    worst = DiagnosticStatus.OK
    for cond, level in problems:
        if cond and level[0] > worst[0]:
            worst = level
    return worst
