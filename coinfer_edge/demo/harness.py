# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Start and stop coinfer nodes as processes, the way ``ros2 launch`` would.

``ros2 launch`` is not installable from the package index, so tests and the demo start
the same console scripts with the same ``--ros-args`` (params files, ``-p`` overrides,
name, namespace, remaps) as the launch files.  A :class:`NodeProcess` captures the node's
log, waits for its ``ready:`` line (and knows when it was logged) and, for a lifecycle node
(device, edge, policy), for its ``active`` state as its ``~/get_state`` service reports it; it
stops the node with SIGINT -> SIGTERM -> SIGKILL.  A :class:`Graph` starts a set of them and
stops them all in parallel.  :func:`ros_env` builds a safe environment (loopback-only
discovery, private domain, log dir, Fast DDS profile).  This module imports ROS only to ask a
lifecycle node for its state (:func:`lifecycle_state`, one background node per process).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from coinfer_device.core.paths import PACKAGE, config_file
from coinfer_device.ros.conventions import ACTIVE, LIFECYCLE_EXECUTABLES, READY_MARKER, STOP_SIGNALS

# A ROS console line starts with "[LEVEL] [seconds.nanoseconds] [logger]: ..." (wall clock).
_LOG_STAMP = re.compile(r'^\[\w+\] \[(\d+\.\d+)\]')
FASTDDS_PROFILE = 'fastdds_profile.xml'
# Jazzy's Fast DDS 2 reads the first, Fast DDS 3 (Kilted and later) the second.
FASTDDS_PROFILE_VARS = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')


class NodeStartError(RuntimeError):
    """A node process exited or did not become ready in time; the message holds its log tail."""


class StartInterrupted(NodeStartError):
    """Waiting for nodes to become ready was cancelled (``stop`` event set)."""


def log_line_time(line: str, now_monotonic: float | None = None) -> float:
    """Return when a ROS log line was logged, on this process's monotonic clock.

    The line's own time stamp (wall clock) is converted, so the result is exact even when the
    line is read late; a line without a stamp counts as logged now.
    """
    now = time.monotonic() if now_monotonic is None else now_monotonic
    match = _LOG_STAMP.match(line.strip())
    if match is None:
        return now
    return now - max(time.time() - float(match.group(1)), 0.0)


def ros_env(domain_id: int, log_dir: str | os.PathLike, base: Mapping[str, str] | None = None,
            fastdds_profile: bool = True, **extra: str) -> dict[str, str]:
    """Return an environment for ROS processes.

    It is a copy of ``base`` (default ``os.environ``) plus loopback-only discovery,
    ``ROS_DOMAIN_ID``, ``ROS_LOG_DIR``, ``AMENT_PREFIX_PATH`` and, with ``fastdds_profile``
    (unless the caller set one), the package's Fast DDS profile (fast discovery of
    restarted nodes, ``config/fastdds_profile.xml``).  Publication stays Fast DDS's default,
    synchronous, unless ``base`` or ``extra`` sets ``RMW_FASTRTPS_PUBLICATION_MODE``: on one
    machine asynchronous publication was never faster and slowed round trips by 0.4-4 ms
    (docs/benchmarks.md, per-frame framework overhead).

    The whole parent environment is kept on purpose: the ROS wheels re-exec the interpreter
    guarded by a variable that must travel with its ``LD_LIBRARY_PATH``.
    """
    env = dict(os.environ if base is None else base)
    prefix = env.get('VIRTUAL_ENV') or sys.prefix
    ament = env.get('AMENT_PREFIX_PATH', '')
    env.update({
        'ROS_DOMAIN_ID': str(int(domain_id)),
        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
        'ROS_LOG_DIR': str(log_dir),
        'AMENT_PREFIX_PATH': ament if prefix in ament.split(os.pathsep) else os.pathsep.join(
            p for p in (prefix, ament) if p),
        'RCUTILS_COLORIZED_OUTPUT': '0',
        'PYTHONUNBUFFERED': '1',
    })
    env.pop('ROS_LOCALHOST_ONLY', None)
    if fastdds_profile:
        try:
            profile = str(config_file(FASTDDS_PROFILE))
        except FileNotFoundError:
            profile = None  # an install without the profile: Fast DDS defaults (slower rediscovery)
        for var in FASTDDS_PROFILE_VARS:
            if profile:
                env.setdefault(var, profile)
    env.update(extra)
    return env


def adopt_env(env: Mapping[str, str]) -> None:
    """Make ``env`` this process's whole environment, so that its own DDS participant matches its children's."""
    for key in set(os.environ) - set(env):
        del os.environ[key]
    os.environ.update(env)


def clean_stale_shm() -> None:
    """Remove Fast DDS shared-memory segments whose processes are gone (``fastdds shm clean``).

    Segments of live processes (other test runs included) are left alone: each segment
    (``/dev/shm/fastrtps_<16 hex>``) and port (``fastrtps_port<N>``, with ``sem.fastrtps_port<N>_mutex``)
    has an ``_el`` or ``_sl`` lock file that its living owner holds locked (``flock``); the tool
    removes only files whose lock it can take.
    """
    tool = shutil.which('fastdds', path=os.pathsep.join((str(Path(sys.executable).parent), os.environ.get('PATH', ''))))
    if tool is None:
        return
    # The `fastdds` wrapper runs whichever `python3` is on PATH, which may lack psutil (the tool then fails
    # silently); run its script with this interpreter, which has it.
    script = Path(tool).resolve().parent.parent / 'tools' / 'fastdds' / 'fastdds.py'
    command = [sys.executable, str(script)] if script.is_file() else [tool]
    try:
        subprocess.run(command + ['shm', 'clean'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                       check=False)
    except (OSError, subprocess.TimeoutExpired):
        pass


def executable(name: str) -> str:
    """Return the path of a console script (next to this interpreter first, then ``PATH``)."""
    for folder in (Path(sys.executable).parent, Path(sys.prefix) / 'lib' / PACKAGE):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f'console script {name!r} not found; run `pip install -e .` in the repository')
    return found


def param_value(value: Any) -> str:
    """Format a value for ``-p name:=value`` (the right side is parsed as YAML)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in '.eEn') else text + '.0'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        try:
            same = yaml.safe_load(value) == value
        except yaml.YAMLError:
            same = False
        return value if same and value else json.dumps(value)
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(json.dumps(v) if isinstance(v, str) else param_value(v) for v in value) + ']'
    raise TypeError(f'cannot pass {value!r} as a ROS parameter')


def ros_args(name: str | None = None, namespace: str | None = None, params_files: Sequence[str | os.PathLike] = (),
             params: Mapping[str, Any] | None = None, remaps: Mapping[str, str] | None = None,
             log_level: str | None = None) -> list[str]:
    """Return the ``--ros-args ...`` tail of a node command line."""
    args = ['--ros-args']
    if name:
        args += ['-r', f'__node:={name}']
    if namespace:
        args += ['-r', f'__ns:={namespace if namespace.startswith("/") else "/" + namespace}']
    for path in params_files:
        args += ['--params-file', str(path)]
    for key, value in (params or {}).items():
        args += ['-p', f'{key}:={param_value(value)}']
    for src, dst in (remaps or {}).items():
        args += ['-r', f'{src}:={dst}']
    if log_level:
        args += ['--log-level', log_level]
    return args


_STATE_NODE: Any = None
_STATE_CLIENTS: dict[str, Any] = {}
_STATE_LOCK = threading.Lock()


def lifecycle_state(node: str, timeout: float = 10.0) -> str | None:
    """Return the lifecycle state label of ``node`` (fully qualified) from its ``~/get_state`` service.

    ``None`` when the service does not answer within ``timeout``.  The question is asked by one
    background rclpy node per process, in this process's ROS domain (the nodes' environment must
    agree: the tests' conftest and :func:`adopt_env` see to it), and repeated every second: a
    server drops its answer while it has not yet discovered the client's reply reader, which
    happens to the first requests after a node (re)started.
    """
    global _STATE_NODE
    from lifecycle_msgs.srv import GetState
    from coinfer_device.ros.background import BackgroundNode
    with _STATE_LOCK:
        if _STATE_NODE is None:
            _STATE_NODE = BackgroundNode(f'coinfer_state_query_{os.getpid()}')
            atexit.register(_STATE_NODE.close)
        if node not in _STATE_CLIENTS:
            _STATE_CLIENTS[node] = _STATE_NODE.node.create_client(GetState, f'{node}/get_state')
        client = _STATE_CLIENTS[node]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not client.wait_for_service(timeout_sec=max(deadline - time.monotonic(), 0.01)):
            return None
        future = client.call_async(GetState.Request())
        attempt_end = min(time.monotonic() + 1.0, deadline)
        while not future.done() and time.monotonic() < attempt_end:
            time.sleep(0.01)
        if future.done() and future.result() is not None:
            return future.result().current_state.label
        client.remove_pending_request(future)
    return None


class NodeProcess:
    """One node process with its captured log.

    ``defer_stop_signals``: start the process with SIGINT and SIGTERM blocked, for programs
    that unblock them once their handlers are in place (the coinfer node console scripts,
    :mod:`coinfer_device.ros.entry_points`): a stop that arrives while the interpreter itself
    is still starting then waits for those handlers and ends the node quietly.
    ``lifecycle_node``: the process is this lifecycle node; being ready means its ``ready:`` line
    *and* the ``active`` state.
    """

    def __init__(self, command: Sequence[str], env: Mapping[str, str], log_path: str | os.PathLike | None = None,
                 label: str | None = None, defer_stop_signals: bool = False, lifecycle_node: str | None = None) -> None:
        self.command = list(command)
        self.lifecycle_node = lifecycle_node  # fully qualified name of a lifecycle node whose state to wait for
        self.defer_stop_signals = defer_stop_signals
        self.label = label or Path(self.command[0]).name
        self.env = dict(env)
        self.log_path = Path(log_path) if log_path else None
        self.lines: list[str] = []
        self.ready_at: float | None = None  # monotonic time of the ready line
        self._lock = threading.Lock()
        self._new_line = threading.Condition(self._lock)
        self.proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    @classmethod
    def node(cls, script: str, env: Mapping[str, str], log_dir: str | os.PathLike | None = None,
             label: str | None = None, **ros: Any) -> 'NodeProcess':
        """Build the process of console script ``script`` with :func:`ros_args` keyword arguments."""
        label = label or ros.get('name') or script
        log_path = Path(log_dir) / f'{label.strip("/").replace("/", "_")}.log' if log_dir else None
        lifecycle = None
        if script in LIFECYCLE_EXECUTABLES:
            namespace = (ros.get('namespace') or '').strip('/')
            lifecycle = f'/{namespace}/{ros.get("name") or script}'.replace('//', '/')
        return cls([executable(script)] + ros_args(**ros), env, log_path, label, defer_stop_signals=True,
                   lifecycle_node=lifecycle)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> 'NodeProcess':
        """Start the process (stdout and stderr captured together)."""
        self.lines = []
        self.ready_at = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The child inherits this thread's signal mask; the parent's own signals wait meanwhile.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS) if self.defer_stop_signals else None
        try:
            self.proc = subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                         start_new_session=True)
        finally:
            if blocked is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        return self

    def _read(self, proc: subprocess.Popen) -> None:
        try:
            log = open(self.log_path, 'a') if self.log_path else None
        except OSError as exc:  # keep reading (a full pipe would stall the node), just do not save
            self.lines.append(f'[process_harness] cannot write {self.log_path}: {exc}')
            log = None
        try:
            for line in proc.stdout:
                with self._new_line:
                    self.lines.append(line.rstrip('\n'))
                    if self.ready_at is None and READY_MARKER in line:
                        self.ready_at = log_line_time(line)
                    self._new_line.notify_all()
                if log:
                    log.write(line)
                    log.flush()
        finally:
            if log:
                log.close()
            with self._new_line:
                self._new_line.notify_all()

    @property
    def pid(self) -> int | None:
        """Return the process id (None before start)."""
        return None if self.proc is None else self.proc.pid

    def alive(self) -> bool:
        """Return whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        """Return everything the process printed so far."""
        with self._lock:
            return '\n'.join(self.lines)

    def tail(self, n: int = 30) -> str:
        """Return the last ``n`` lines of output."""
        with self._lock:
            return '\n'.join(self.lines[-n:])

    def wait_for(self, pattern: str, timeout: float, start_line: int = 0) -> re.Match | None:
        """Wait until a line matching regex ``pattern`` appears; ``None`` on timeout or exit."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = start_line
        with self._new_line:
            while True:
                for line in self.lines[checked:]:
                    match = rx.search(line)
                    if match:
                        return match
                checked = len(self.lines)
                remaining = deadline - time.monotonic()
                exited = self.proc is None or self.proc.poll() is not None
                if remaining <= 0 or (exited and not (self._reader and self._reader.is_alive())):
                    return None
                self._new_line.wait(min(remaining, 0.2))

    def wait_ready(self, timeout: float = 60.0) -> 'NodeProcess':
        """Wait for the ``ready:`` line (and a lifecycle node's ``active`` state); raise :class:`NodeStartError`."""
        deadline = time.monotonic() + timeout
        if self.wait_for(re.escape(READY_MARKER), timeout) is None:
            raise self._start_error(timeout)
        self.check_active(max(deadline - time.monotonic(), 5.0))
        return self

    def state(self, timeout: float = 10.0) -> str | None:
        """Return the lifecycle state of a lifecycle node (``None``: not one, or no answer within ``timeout``)."""
        return None if self.lifecycle_node is None else lifecycle_state(self.lifecycle_node, timeout)

    def wait_state(self, label: str, timeout: float = 30.0) -> 'NodeProcess':
        """Wait until a lifecycle node reports state ``label``; raise :class:`NodeStartError` if it does not."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline and self.alive():
            state = self.state(max(deadline - time.monotonic(), 0.1))
            if state == label:
                return self
            time.sleep(0.05)
        raise NodeStartError(f'{self.label} is {state or "not answering"}, not {label}, after {timeout:g} s '
                             f'(alive: {self.alive()})\n{self.tail()}')

    def check_active(self, timeout: float = 10.0) -> None:
        """For a lifecycle node, check that the ``ready:`` line was the ``active`` state (:meth:`wait_state`)."""
        if self.lifecycle_node is not None:
            self.wait_state(ACTIVE, timeout)

    def _start_error(self, timeout: float) -> NodeStartError:
        state = (f'exited with status {self.proc.returncode}' if self.proc is not None and not self.alive()
                 else f'not ready after {timeout:g} s')
        return NodeStartError(f'{self.label} {state}; command: {" ".join(self.command)}\n{self.tail()}')

    def wait_output(self, timeout: float = 5.0) -> bool:
        """Wait until the log reader has read everything the (exited) process printed; return whether it has."""
        if self._reader is not None:
            self._reader.join(timeout)
            return not self._reader.is_alive()
        return True

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process if it is running."""
        if self.alive():
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, int_timeout: float = 10.0, term_timeout: float = 5.0) -> int | None:
        """Stop with SIGINT, then SIGTERM, then SIGKILL; return the exit status."""
        return stop_processes([self], int_timeout, term_timeout)[self.label]

    def kill(self) -> None:
        """SIGKILL the process (a crash) and reap it."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)
        self.wait_output(2.0)

    def restart(self) -> 'NodeProcess':
        """Start the same command again (after :meth:`stop` or :meth:`kill`)."""
        if self.alive():
            raise RuntimeError(f'{self.label} is still running')
        return self.start()


def stop_processes(procs: Sequence[NodeProcess], int_timeout: float = 10.0,
                   term_timeout: float = 5.0) -> dict[str, int | None]:
    """Stop processes in parallel; return ``{label: exit status}`` once their output is read.

    SIGINT goes to all at once, SIGTERM to those still running after ``int_timeout``, SIGKILL
    to those still running ``term_timeout`` later.
    """
    for sig, timeout in ((signal.SIGINT, int_timeout), (signal.SIGTERM, term_timeout), (signal.SIGKILL, 5.0)):
        running = [p for p in procs if p.alive()]
        if not running:
            break
        for p in running:
            p.signal(sig)
        deadline = time.monotonic() + timeout
        for p in running:
            try:
                p.proc.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                pass
    for p in procs:
        p.wait_output(2.0)
    return {p.label: None if p.proc is None else p.proc.returncode for p in procs}


class Graph:
    """A set of node processes started together and stopped together."""

    def __init__(self, env: Mapping[str, str], log_dir: str | os.PathLike | None = None) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.nodes: dict[str, NodeProcess] = {}

    def add(self, label: str, script: str, **ros: Any) -> NodeProcess:
        """Create (not start) a node process under ``label``."""
        proc = NodeProcess.node(script, self.env, self.log_dir, label=label, **ros)
        self.nodes[label] = proc
        return proc

    def start(self, labels: Iterable[str] | None = None, timeout: float = 90.0,
              stop: threading.Event | None = None) -> dict[str, float]:
        """Start nodes (all by default) at once and wait for them (:meth:`wait_ready`); return their ready times."""
        chosen = list(labels if labels is not None else self.nodes)
        for label in chosen:
            self.nodes[label].start()
        return self.wait_ready(chosen, timeout, stop)

    def wait_ready(self, labels: Iterable[str], timeout: float = 90.0,
                   stop: threading.Event | None = None) -> dict[str, float]:
        """Wait until every node in ``labels`` logged its ready line; return ``{label: ready time}`` (monotonic).

        Raises :class:`NodeStartError` (with the log tail) as soon as one exits or when
        ``timeout`` passes, and :class:`StartInterrupted` when ``stop`` is set meanwhile.
        """
        waiting = list(labels)
        deadline = time.monotonic() + timeout
        while True:
            for label in list(waiting):
                proc = self.nodes[label]
                if proc.ready_at is not None:
                    waiting.remove(label)
                elif not proc.alive() and proc.wait_output(2.0) and proc.ready_at is None:
                    raise proc._start_error(timeout)
            if not waiting:
                for label in labels:
                    self.nodes[label].check_active(max(deadline - time.monotonic(), 5.0))
                return {label: self.nodes[label].ready_at for label in labels}
            if time.monotonic() > deadline:
                raise self.nodes[waiting[0]]._start_error(timeout)
            if stop is None:
                time.sleep(0.05)
            elif stop.wait(0.05):
                raise StartInterrupted(f'interrupted while waiting for {", ".join(waiting)}')

    def __getitem__(self, label: str) -> NodeProcess:
        """Return the node process labelled ``label``."""
        return self.nodes[label]

    def stop(self, int_timeout: float = 10.0, term_timeout: float = 5.0) -> dict[str, int | None]:
        """Stop every node in parallel (:func:`stop_processes`); return ``{label: exit status}``."""
        return stop_processes(list(self.nodes.values()), int_timeout, term_timeout)

    def __enter__(self) -> 'Graph':
        """Return self."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop every node."""
        self.stop()
