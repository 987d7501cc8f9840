# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""What every coinfer node shares: clean start and stop, lifecycle, throttled warnings.

:func:`run_node` is the body of each console script's ``main``: it checks the params
files first (a YAML error becomes one clear line), builds the node, brings a
:class:`ManagedNode` (a lifecycle node) to *active* when its ``autostart`` parameter is true,
logs the ``ready`` line once the node works, spins, and ends without a traceback and with
status 0 on SIGINT or SIGTERM at any moment (:mod:`coinfer_device.ros.entry_points` covers the
imports before it runs).  Once a stop has begun, further SIGINT/SIGTERM are ignored: ``ros2
launch`` forwards a SIGINT that the node already got from its process group, and a second
interrupt must not break torch's exit hooks or ``threading._shutdown`` (status -2 and a
``KeyboardInterrupt`` traceback before).  Configuration errors, also those of the autostarted
configure transition, exit with status 2 and one ``<prog>: error: ...`` line.

Diagnostics: :mod:`coinfer_device.ros.diagnostics`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import rclpy
import yaml
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.subscription import Subscription
from rclpy.timer import Timer

from coinfer_device.ros.conventions import ACTIVE, EXIT_CONFIG_ERROR, EXIT_STOPPED, READY_MARKER, STOP_SIGNALS
from coinfer_device.ros.params import Param, ParameterError, unused_qos_overrides

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE


class StartupError(RuntimeError):
    """The node cannot start (missing model, bad source, ...); the message is one line."""


# Errors that mean "the configuration is wrong", reported as one line without a traceback.
CONFIG_ERRORS: tuple[type[BaseException], ...] = (ParameterError, StartupError, ValueError, OSError, RuntimeError)

# Parameters of every lifecycle node.
LIFECYCLE_PARAMS = [
    Param('autostart', True, 'Configure and activate right after start (false: wait in the unconfigured state for '
          '`ros2 lifecycle set <node> configure` / `activate`, or a launch file that drives the transitions)'),
]


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


# --------------------------------------------------------------------------- stop signals


class _StopState:
    """Whether this process is stopping; shared by the signal handler and :func:`run_node`."""

    requested = False


_STOP = _StopState()


def _on_stop_signal(signum: int, frame: Any) -> None:
    if _STOP.requested:
        return  # a stop is under way (a forwarded second signal): let the exit path run undisturbed
    _STOP.requested = True
    raise KeyboardInterrupt


def begin_shutdown() -> None:
    """Ignore SIGINT/SIGTERM from now on: the process is stopping and must reach its normal exit."""
    _STOP.requested = True


def ignore_stop_signals() -> None:
    """Ignore SIGINT/SIGTERM for the rest of the process, once rclpy's handlers are gone (main thread only).

    Python's finalization resets a signal that has a Python handler to its default action, so a
    late forwarded SIGINT would kill the process (status -2); an ignored signal stays ignored.
    """
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def hand_signals_to_ros() -> None:
    """Let the first SIGINT or SIGTERM raise ``KeyboardInterrupt`` (main thread only), and ignore later ones.

    ``rclpy.init`` then installs its own handlers, which shut the context down and call this one
    (so SIGTERM behaves like SIGINT); until then the interrupt stops whatever runs.
    """
    if threading.current_thread() is threading.main_thread():
        _STOP.requested = False
        for sig in STOP_SIGNALS:
            signal.signal(sig, _on_stop_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # see entry_points


# --------------------------------------------------------------------------- lifecycle


class ManagedNode(LifecycleNode):
    """A lifecycle node whose transitions run the subclass's hooks, with errors logged as one line.

    Subclasses declare their parameters in ``__init__`` (they exist in every state, so ``ros2
    param`` works on an unconfigured node) and implement :meth:`configure_node` (load the model or
    policy, create publishers, subscriptions and timers), :meth:`activate_node` (start the flow;
    lifecycle publishers are enabled before it runs), :meth:`deactivate_node` (stop the flow,
    keep what is loaded) and :meth:`cleanup_node` (release everything configure made; it must also
    undo a configure that failed half-way).  Shutdown from any state runs what is needed of
    deactivate and cleanup.  A failing hook keeps its exception in :attr:`transition_error`, logs
    one error line and makes the transition fail (the node stays in its previous state).
    """

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.transition_error: BaseException | None = None
        self._quiet = False
        self._owned: list[Any] = []

    # ------------------------------------------------------------------ hooks (override)

    def configure_node(self) -> None:
        """Load and create what the node needs (unconfigured -> inactive)."""

    def activate_node(self) -> None:
        """Start the flow (inactive -> active)."""

    def deactivate_node(self) -> None:
        """Stop the flow without unloading (active -> inactive)."""

    def cleanup_node(self) -> None:
        """Release what :meth:`configure_node` created (inactive -> unconfigured)."""

    def ready_summary(self) -> str:
        """Return the one-line description logged with the ready marker."""
        return ''

    def own(self, entity: Any) -> Any:
        """Remember a publisher, subscription or timer made by :meth:`configure_node`; return it."""
        self._owned.append(entity)
        return entity

    def destroy_owned(self) -> None:
        """Destroy what :meth:`own` remembered (for :meth:`cleanup_node`)."""
        while self._owned:
            entity = self._owned.pop()
            if isinstance(entity, LifecyclePublisher):
                self.destroy_lifecycle_publisher(entity)
            elif isinstance(entity, Publisher):
                self.destroy_publisher(entity)
            elif isinstance(entity, Subscription):
                self.destroy_subscription(entity)
            elif isinstance(entity, Timer):
                self.destroy_timer(entity)

    # ------------------------------------------------------------------ state

    @property
    def lifecycle_state(self) -> str:
        """Return the label of the current lifecycle state (``unconfigured``, ``inactive``, ``active``, ...)."""
        return self._state_machine.current_state[1]

    @property
    def autostart(self) -> bool:
        """Return the ``autostart`` parameter (true when the node does not declare it)."""
        return bool(self.get_parameter('autostart').value) if self.has_parameter('autostart') else True

    def start(self) -> None:
        """Configure and activate now; raise the error that made a transition fail (not logged: the caller reports)."""
        self._quiet = True
        try:
            for name, trigger in (('configure', self.trigger_configure), ('activate', self.trigger_activate)):
                if trigger() != SUCCESS:
                    raise self.transition_error or StartupError(f'the {name} transition failed')
        finally:
            self._quiet = False

    def close(self) -> None:
        """Stop and release everything at process exit, whatever the state."""
        self._teardown(self.lifecycle_state)

    # ------------------------------------------------------------------ rclpy transition callbacks

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Run :meth:`configure_node`; undo it when it fails."""
        result = self._run('configure', self.configure_node)
        if result == SUCCESS:
            unused = unused_qos_overrides(self)
            if unused:
                self._failed('configure', ParameterError(
                    f'{self.get_fully_qualified_name()}: qos_overrides for topics this node does not have: '
                    f'{", ".join(unused)}'))
                result = FAILURE
        if result != SUCCESS:
            self._run('cleanup after the failed configure', self.cleanup_node, keep_error=True)
        return result

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the lifecycle publishers, run :meth:`activate_node` and log the ready line."""
        result = super().on_activate(state)
        if result == SUCCESS:
            result = self._run('activate', self.activate_node)
            if result == SUCCESS:
                self.get_logger().info(f'{READY_MARKER} {self.ready_summary()}')
            else:
                super().on_deactivate(state)
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Run :meth:`deactivate_node`, then disable the lifecycle publishers."""
        result = self._run('deactivate', self.deactivate_node)
        super().on_deactivate(state)
        if result == SUCCESS:
            self.get_logger().info('inactive: flow stopped, model kept (activate to resume, cleanup to unload)')
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Run :meth:`cleanup_node`."""
        result = self._run('cleanup', self.cleanup_node)
        if result == SUCCESS:
            self.get_logger().info('unconfigured: released (configure to load again)')
        return result

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Deactivate and clean up as far as the previous state needs; always succeeds."""
        self._teardown(state.label)
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything after an error; the node returns to unconfigured."""
        self._teardown(state.label)
        return SUCCESS

    def _teardown(self, label: str) -> None:
        if label in (ACTIVE, 'deactivating', 'activating'):
            self._run('deactivate', self.deactivate_node, keep_error=True)
            super().on_deactivate(LifecycleState(label, 0))
        if label not in ('unconfigured', 'finalized'):
            self._run('cleanup', self.cleanup_node, keep_error=True)

    def _run(self, name: str, hook: Callable[[], None], keep_error: bool = False) -> TransitionCallbackReturn:
        try:
            hook()
        except Exception as exc:  # noqa: BLE001 - a failed transition is reported, the node goes on
            if not keep_error or self.transition_error is None:
                self._failed(name, exc)
            return FAILURE
        if not keep_error:
            self.transition_error = None
        return SUCCESS

    def _failed(self, name: str, exc: BaseException) -> None:
        self.transition_error = exc
        if not self._quiet and rclpy.ok(context=self.context):
            self.get_logger().error(f'{name} failed: {_first_line(exc)}')


def inactive_message(node: Node) -> str | None:
    """Return why a lifecycle node does no work now (``None`` when it is active or not a lifecycle node)."""
    if isinstance(node, ManagedNode) and node.lifecycle_state != ACTIVE:
        return f'lifecycle state {node.lifecycle_state}: not working'
    return None


# --------------------------------------------------------------------------- run_node


def run_node(make_node: Callable[[], Node], args: Sequence[str] | None = None, threads: int = 1) -> int:
    """Start ROS, build the node (autostart a :class:`ManagedNode`), spin until SIGINT/SIGTERM; return the status."""
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
        begin_shutdown()
        rclpy.try_shutdown()
        ignore_stop_signals()
        return EXIT_STOPPED
    except Exception as exc:  # noqa: BLE001 - rcl raises RCLError for any bad argument
        print(f'{prog}: error: cannot start ROS: {_first_line(exc)}', file=sys.stderr, flush=True)
        return EXIT_CONFIG_ERROR
    node = None
    started = False
    try:
        node = make_node()
        executor = MultiThreadedExecutor(threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        _start(node)
        started = True
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # noqa: BLE001 - sorted below
        if not rclpy.ok() or _STOP.requested:
            pass  # SIGINT/SIGTERM arrived while starting: rclpy calls fail on the shut-down context
        elif not started and isinstance(exc, CONFIG_ERRORS) and not os.environ.get('COINFER_TRACEBACK'):
            print(f'{prog}: error: {_first_line(exc)}', file=sys.stderr, flush=True)
            return EXIT_CONFIG_ERROR
        else:
            raise  # after startup it is a bug: show where
    finally:
        begin_shutdown()
        if node is not None:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
        ignore_stop_signals()
    return EXIT_STOPPED


def _start(node: Node) -> None:
    """Bring the node to work: autostart a lifecycle node, check a plain one's overrides; log the ready line."""
    if isinstance(node, ManagedNode):
        if node.autostart:
            node.start()  # logs the ready line when active
        else:
            node.get_logger().info(f'{node.lifecycle_state} (autostart false): waiting for the configure and '
                                   f'activate transitions')
        return
    unused = unused_qos_overrides(node)
    if unused:
        raise ParameterError(f'{node.get_fully_qualified_name()}: qos_overrides for topics this node does not have: '
                             f'{", ".join(unused)}')
    node.get_logger().info(f'{READY_MARKER} {getattr(node, "ready_summary", lambda: "")()}')


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


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
