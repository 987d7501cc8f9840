# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Every node exits with status 0 and no traceback on one or two SIGINTs and on SIGTERM, at any moment.

``ros2 launch`` under ``timeout -s INT``, systemd or a script forwards a SIGINT to nodes that already got
one from their process group: two SIGINTs milliseconds apart.  A second interrupt used to hit torch's exit
hooks or ``threading._shutdown`` (``KeyboardInterrupt`` traceback) or Python's finalization (killed by
SIGINT, status -2).  Each node is stopped with several signal patterns once ready and while starting, once
the way the process harness starts it (no terminal, stdin from /dev/null, output to a pipe) and once with a
pseudo-terminal as its stdin, stdout and stderr (an interactive shell).
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import threading
import time

import pytest

from coinfer_device.ros.conventions import READY_MARKER
from coinfer_edge.demo.harness import NodeProcess, executable, ros_args, ros_env

SCRIPTS = ('camera_node', 'device_node', 'cpu_monitor', 'edge_node', 'link_monitor', 'policy_node')
# name -> [(signal, seconds after the previous one)]
PATTERNS = {
    'INT': [(signal.SIGINT, 0.0)],
    'INT+INT': [(signal.SIGINT, 0.0), (signal.SIGINT, 0.05)],  # process group + launch's forwarded SIGINT
    'INT+INT-at-once': [(signal.SIGINT, 0.0), (signal.SIGINT, 0.0)],
    'TERM': [(signal.SIGTERM, 0.0)],
    'INT+TERM': [(signal.SIGINT, 0.0), (signal.SIGTERM, 0.3)],
}
# (script, pattern, when: 'ready' or seconds after start, terminal)
CASES = ([(s, 'INT+INT', 'ready', False) for s in SCRIPTS] + [(s, 'TERM', 'ready', False) for s in SCRIPTS]
         + [(s, 'INT+INT-at-once', 'ready', False) for s in ('device_node', 'link_monitor')]
         + [(s, 'INT+TERM', 'ready', False) for s in ('device_node', 'edge_node')]
         + [(s, 'INT+INT', delay, False) for s in ('device_node', 'edge_node', 'policy_node') for delay in (0.6, 1.8)]
         + [(s, 'INT+INT', 'ready', True) for s in ('device_node', 'link_monitor', 'policy_node')]
         + [('device_node', 'INT', 1.0, True), ('cpu_monitor', 'INT+INT', 'ready', True)])


class TerminalProcess:
    """A node whose stdin, stdout and stderr are a pseudo-terminal, as when started from an interactive shell."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(command, env=env, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO once the child closed the terminal
                break
            if not data:
                break
            self._chunks.append(data)
        os.close(self._master)

    def output(self) -> str:
        """Return what the node wrote so far."""
        return b''.join(self._chunks).decode(errors='replace').replace('\r\n', '\n')

    def wait_ready(self, timeout: float) -> bool:
        """Wait for the ready line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if READY_MARKER in self.output():
                return True
            time.sleep(0.05)
        return READY_MARKER in self.output()

    def finish(self, timeout: float) -> int | None:
        """Wait for the exit (SIGKILL after ``timeout``) and for the output; return the status."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        return self.proc.returncode


def _command_args(script: str, i: int) -> dict:
    return {'name': f'sig{i}', 'params': {'policy': 'rule'} if script == 'policy_node' else {}}


def _send(pid: int, pattern: str) -> None:
    for sig, delay in PATTERNS[pattern]:
        time.sleep(delay)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return


def _run_batch(cases: list, env: dict, tmp_path) -> list[tuple[int | None, str, bool]]:
    """Start every case at once, signal each at its moment; return (status, output, was ready) per case."""
    procs = []
    for i, (script, _, _, terminal) in cases:
        if terminal:
            procs.append(TerminalProcess([executable(script)] + ros_args(**_command_args(script, i)), env))
        else:
            procs.append(NodeProcess.node(script, env, tmp_path, label=f'sig{i}', **_command_args(script, i)).start())
    started = time.monotonic()
    timed = sorted((w, k) for k, (_, (_, _, w, _)) in enumerate(cases) if w != 'ready')
    for when, k in timed:
        time.sleep(max(started + when - time.monotonic(), 0.0))
        _send(procs[k].proc.pid, cases[k][1][1])
    ready = {}
    for k, (_, (_, pattern, when, terminal)) in enumerate(cases):
        if when != 'ready':
            continue
        proc = procs[k]
        ready[k] = proc.wait_ready(120.0) if terminal else proc.wait_for(READY_MARKER, 120.0) is not None
        _send(proc.proc.pid, pattern)
    out = []
    for k, proc in enumerate(procs):
        if isinstance(proc, TerminalProcess):
            code = proc.finish(60.0)
        else:
            try:
                proc.proc.wait(60.0)
            except subprocess.TimeoutExpired:
                pass
            proc.stop(int_timeout=1.0, term_timeout=1.0)
            code = proc.proc.returncode
        out.append((code, proc.output(), ready.get(k, True)))
    return out


@pytest.fixture(scope='module')
def stopped(tmp_path_factory, ros_domain_id):
    env = ros_env(ros_domain_id, os.environ['ROS_LOG_DIR'])
    indexed = list(enumerate(CASES))
    half = len(indexed) // 2  # two batches: a 2-core machine starts ~13 torch processes at a time well enough
    tmp = tmp_path_factory.mktemp('signals')
    return _run_batch(indexed[:half], env, tmp) + _run_batch(indexed[half:], env, tmp)


@pytest.mark.parametrize('case', range(len(CASES)),
                         ids=[f'{s}-{p}-{w if w == "ready" else f"{w}s"}{"-tty" if t else ""}' for s, p, w, t in CASES])
def test_a_stop_exits_0_without_traceback(stopped, case):
    code, output, was_ready = stopped[case]
    assert was_ready, output
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output
    assert code == 0, f'exit status {code}\n{output}'
