# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""What every coinfer node shares: clean start and stop, diagnostics, throttled warnings.

:func:`run_node` is the body of each console script's ``main``: it checks the params
files first (a YAML error becomes one clear line), builds the node (model loads happen
here, before the ``ready`` line), spins, and ends without a traceback and with status 0 on
SIGINT or SIGTERM at any moment (:mod:`coinfer_device.ros.entry_points` covers the imports before
it runs).  Configuration errors exit with status 2 and one ``<prog>: error: ...`` line.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node

from coinfer_device.ros.params import ParameterError

READY_MARKER = 'ready:'
EXIT_CONFIG_ERROR = 2
EXIT_STOPPED = 0


class StartupError(RuntimeError):
    """The node cannot start (missing model, bad source, ...); the message is one line."""


# Errors that mean "the configuration is wrong", reported as one line without a traceback.
CONFIG_ERRORS: tuple[type[BaseException], ...] = (ParameterError, StartupError, ValueError, OSError, RuntimeError)


def params_files(args: Sequence[str]) -> list[str]:
    """Return the ``--params-file`` paths in a ROS command line."""
    files = []
    for i, arg in enumerate(args):
        if arg == '--params-file' and i + 1 < len(args):
            files.append(args[i + 1])
    return files


def check_params_file(path: str) -> str | None:
    """Return a one-line description of what is wrong with a params file, or ``None``."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        return f'params file {path}: {exc.strerror or exc}'
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' line {mark.line + 1}' if mark is not None else ''
        what = getattr(exc, 'problem', None) or str(exc).splitlines()[0]
        return f'params file {path}{where}: invalid YAML: {what}'
    if not isinstance(doc, dict) or not doc:
        return f'params file {path}: expected a mapping of node names to {{ros__parameters: ...}}'
    for node_key, section in doc.items():
        if not isinstance(section, dict) or 'ros__parameters' not in section:
            return f'params file {path}: section {node_key!r} has no ros__parameters mapping'
        if not isinstance(section['ros__parameters'], dict):
            return f'params file {path}: {node_key}.ros__parameters must be a mapping'
    return None


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def hand_signals_to_ros() -> None:
    """Let SIGINT and SIGTERM raise ``KeyboardInterrupt`` (main thread only).

    ``rclpy.init`` then installs its own handlers, which shut the context down and call these
    (so SIGTERM behaves like SIGINT); until then the interrupt stops whatever runs.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))  # see entry_points


def run_node(make_node: Callable[[], Node], args: Sequence[str] | None = None, threads: int = 1) -> int:
    """Start ROS, build the node, spin until SIGINT/SIGTERM; return the process exit status."""
    args = list(sys.argv if args is None else args)
    prog = Path(args[0]).name if args else 'node'
    for path in params_files(args):
        problem = check_params_file(path)
        if problem:
            print(f'{prog}: error: {problem}', file=sys.stderr, flush=True)
            return EXIT_CONFIG_ERROR
    hand_signals_to_ros()
    try:
        rclpy.init(args=args)
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        return EXIT_STOPPED
    except Exception as exc:  # noqa: BLE001 - rcl raises RCLError for any bad argument
        print(f'{prog}: error: cannot start ROS: {_first_line(exc)}', file=sys.stderr, flush=True)
        return EXIT_CONFIG_ERROR
    node = None
    try:
        node = make_node()
        executor = MultiThreadedExecutor(threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        node.get_logger().info(f'{READY_MARKER} {getattr(node, "ready_summary", lambda: "")()}')
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # noqa: BLE001 - sorted below
        if not rclpy.ok():
            pass  # SIGINT/SIGTERM arrived while starting: rclpy calls fail on the shut-down context
        elif node is None and isinstance(exc, CONFIG_ERRORS) and not os.environ.get('COINFER_TRACEBACK'):
            print(f'{prog}: error: {_first_line(exc)}', file=sys.stderr, flush=True)
            return EXIT_CONFIG_ERROR
        else:
            raise  # after startup it is a bug: show where
    finally:
        if node is not None:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return EXIT_STOPPED


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# --------------------------------------------------------------------------- diagnostics


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


class Diagnostics:
    """Publish one ``DiagnosticStatus`` per node on ``diagnostics`` every ``period_s``.

    ``collect`` returns ``(level, message, values)``; level is a ``DiagnosticStatus``
    byte (OK, WARN, ERROR, STALE).
    """

    def __init__(self, node: Node, collect: Callable[[], tuple[bytes, str, Mapping[str, Any]]],
                 period_s: float = 1.0) -> None:
        self._node = node
        self._collect = collect
        self._pub = node.create_publisher(DiagnosticArray, 'diagnostics', 10)
        self._name = node.get_fully_qualified_name().lstrip('/')
        self._hardware_id = socket.gethostname()
        self._timer = node.create_timer(period_s, self.publish)

    def publish(self) -> None:
        """Collect and publish the node's status now."""
        level, message, values = self._collect()
        status = DiagnosticStatus(level=level, name=self._name, message=message,
                                  hardware_id=self._hardware_id,
                                  values=[KeyValue(key=k, value=_fmt(v)) for k, v in values.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(arr)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


def diagnostic_values(msg: DiagnosticArray) -> dict[str, dict[str, str]]:
    """Return ``{status name: {key: value}}`` of a DiagnosticArray (for tests and tools)."""
    return {s.name: {kv.key: kv.value for kv in s.values} for s in msg.status}


class BurstLogger:
    """Warn about the first event of a burst, then at most once per ``quiet_s`` with a count."""

    def __init__(self, warn: Callable[[str], Any], quiet_s: float = 5.0) -> None:
        self._warn = warn
        self._quiet_s = quiet_s
        self._last = -float('inf')
        self._suppressed = 0
        self._lock = threading.Lock()

    def event(self, text: str) -> None:
        """Record one event; log it unless a line was logged less than ``quiet_s`` ago."""
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._quiet_s:
                self._suppressed += 1
                return
            extra = f' (+{self._suppressed} more since the last report)' if self._suppressed else ''
            self._suppressed = 0
            self._last = now
        self._warn(text + extra)


def level_of(problems: Iterable[tuple[bool, bytes]]) -> bytes:
    """Return the worst diagnostic level among the ``(condition, level)`` pairs that hold."""
    worst = DiagnosticStatus.OK
    for cond, level in problems:
        if cond and level[0] > worst[0]:
            worst = level
    return worst
