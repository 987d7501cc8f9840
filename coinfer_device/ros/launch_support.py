# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""How a ``ros2 launch`` of this package ends when one of its nodes exits (used by launch/*.launch.py).

* A **critical** node (camera, device, edge, policy: without it no result is ever published) ends
  the launch when it exits: ``on_exit=critical_exit`` emits ``Shutdown``.  Once every process has
  stopped, the launch fails with why as its last line (an error that makes ``ros2 launch`` exit
  with status 1), with the node's own last stderr line (its ``<prog>: error: ...`` line for a
  configuration error).
* A **monitor** (CPU monitors, link monitor) is respawned (``respawn=True``), except after a
  configuration error (exit status 2, which a restart cannot fix): ``on_exit=monitor_exit`` then
  ends the launch like a critical node.

``launch`` is imported only when a handler runs, so this module loads on the pip path, where
``launch`` is not installable, and :class:`LaunchEnd` (the bookkeeping) is unit-tested there.
"""

from __future__ import annotations

import re
from typing import Any

from coinfer_device.ros.conventions import EXIT_CONFIG_ERROR

_ROUTINE_LOG = re.compile(r'^\[(DEBUG|INFO|WARN|WARNING)\] ')


class LaunchEnd:
    """Which processes run, their last stderr lines, and why the launch ends (reported once, last)."""

    def __init__(self) -> None:
        self.running: set[int] = set()
        self.last_stderr: dict[str, str] = {}
        self.why: str | None = None
        self.reported = False

    def started(self, pid: int) -> None:
        """Record a started process."""
        self.running.add(pid)

    def stderr(self, name: str, text: bytes) -> None:
        """Remember the last line a process wrote to stderr that may say why it failed.

        ROS log lines below ERROR (``[INFO] [...] ...``, also DEBUG and WARN) are not such lines.
        """
        lines = [line for line in text.decode(errors='replace').splitlines()
                 if line.strip() and not _ROUTINE_LOG.match(line)]
        if lines:
            self.last_stderr[name] = lines[-1]

    def exited(self, pid: int) -> str | None:
        """Record an exit; return the end message when it is now time to log it."""
        self.running.discard(pid)
        return self.report()

    def critical_exit(self, name: str, pid: int, returncode: int, shutting_down: bool) -> str | None:
        """Record a critical node's exit; return the shutdown reason (``None`` when the launch ends anyway)."""
        if shutting_down or self.why is not None:
            return None
        error = self.last_stderr.get(name, '')
        self.why = f'launch stopped: {name} exited with code {returncode}' + (f': {error}' if error else '')
        self.running.discard(pid)
        return self.why

    def report(self) -> str | None:
        """Return the end message once, when a reason exists and no process runs any more."""
        if self.why is None or self.running or self.reported:
            return None
        self.reported = True
        return self.why


class LaunchFailed(RuntimeError):
    """Raised by the launch's last action after a critical node exited: ``ros2 launch`` logs it and exits with 1."""


_END = LaunchEnd()
_WATCHING = {'registered': False}


def _fail(message: str | None) -> list[Any]:
    from launch.actions import OpaqueFunction

    def fail(context: Any) -> None:
        raise LaunchFailed(message)
    return [OpaqueFunction(function=fail)] if message else []


def _on_start(event: Any, context: Any) -> None:
    _END.started(event.pid)


def _on_stderr(event: Any) -> None:
    _END.stderr(event.process_name, event.text)


def _on_exit(event: Any, context: Any) -> list[Any]:
    return _fail(_END.exited(event.pid))


def critical_exit(event: Any, context: Any) -> list[Any] | None:
    """``on_exit`` of a critical node: shut the launch down (see module docstring)."""
    from launch.actions import Shutdown
    reason = _END.critical_exit(event.process_name, event.pid, event.returncode, context.is_shutdown)
    if reason is None:
        return None
    return [Shutdown(reason=reason)] + _fail(_END.report())


def monitor_exit(event: Any, context: Any) -> list[Any] | None:
    """``on_exit`` of a respawned monitor: a configuration error ends the launch, anything else respawns."""
    return critical_exit(event, context) if event.returncode == EXIT_CONFIG_ERROR else None


def _register(context: Any) -> list[Any]:
    from launch.actions import RegisterEventHandler
    from launch.event_handlers import OnProcessExit, OnProcessIO, OnProcessStart
    if _WATCHING['registered']:  # coinfer.launch.py includes two files that both ask
        return []
    _WATCHING['registered'] = True
    return [RegisterEventHandler(OnProcessStart(on_start=_on_start)),
            RegisterEventHandler(OnProcessExit(on_exit=_on_exit)),
            RegisterEventHandler(OnProcessIO(on_stderr=_on_stderr))]


def watch_processes() -> Any:
    """Return the launch action that registers the bookkeeping handlers (once per launch); list it before the nodes."""
    from launch.actions import OpaqueFunction
    return OpaqueFunction(function=_register)
