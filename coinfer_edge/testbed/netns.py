# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
r"""Two emulated hosts on one machine: network namespaces joined by a delayed, rate-shaped link.

Topology (``docs/testbed.md`` has the figures)::

    netns <tag>-dev                                                   netns <tag>-edge
    lo, <tag>d (TUN) 10.213.0.1 peer 10.213.0.2                       lo, <tag>e (TUN) 10.213.0.2 peer 10.213.0.1
      egress: tbf (device->edge rate)                                   egress: tbf (edge->device rate)
             \                                                               /
              `--> fd A  ==  delay line process (DelayQueue per direction) ==  fd B <--'

Why a TUN pair and not the veth pair the issue names: a veth pair hands every packet straight
from one end to the other inside the kernel, so no user-space program can sit in its path, and
``netem`` (the kernel's delay qdisc) is not built in this kernel.  A TUN device gives its egress
packets to a user-space fd instead, so two TUN devices, one per namespace, bridged by
:mod:`.delay_line` form the link, and ``tbf`` on each TUN's egress shapes each direction's rate
(the qdisc runs before the TUN hands the packet to user space, so the delay line sees the shaped
stream).  Both TUN devices are POINTOPOINT,MULTICAST, so Fast DDS discovery by multicast works
across (``../shared/research/ros-env.md`` section 7).  ``link_down`` sets both devices down
(their routes vanish, senders get ENETUNREACH), ``link_up`` restores them with their qdiscs.

Everything the testbed creates carries the tag ``cib<pid><letter>`` (pid of the creating process),
so :func:`clean_leftovers` can remove what a crashed earlier run left, and only that.
"""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from coinfer_edge.testbed.delay_line import READY

PREFIX = 'cib'
SUBNET = '10.213.0'
DIRECTIONS = {'up': 'up', 'device_to_edge': 'up', 'down': 'down', 'edge_to_device': 'down'}
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_letters = itertools.count()
_active: set[str] = set()  # tags of this process's live testbeds, which clean_leftovers must not touch


class TestbedError(RuntimeError):
    """A testbed command failed; the message names the command and its error output."""

    __test__ = False  # not a pytest test class


def require_root(what: str = 'the testbed') -> None:
    """Raise PermissionError with one clear line when not running as root."""
    if os.geteuid() != 0:
        raise PermissionError(f'{what} needs root (network namespaces, TUN devices, tc, cgroups); '
                              f'run it as root (euid is {os.geteuid()})')


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return this environment with the package on PYTHONPATH, for Python children started in a namespace."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get('PYTHONPATH')) if p)
    env.update(extra or {})
    return env


def _run(cmd: Sequence[str], check: bool = True, timeout: float = 10.0) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise TestbedError(f'{" ".join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}')
    return proc


def list_namespaces() -> list[str]:
    """Return the names of the named network namespaces (``ip netns list``)."""
    out = _run(['ip', 'netns', 'list'], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_pids(ns: str) -> list[int]:
    """Return the pids of the processes inside namespace ``ns``."""
    out = _run(['ip', 'netns', 'pids', ns], check=False).stdout
    return [int(w) for w in out.split() if w.isdigit()]


def _stop_pids(pids: Sequence[int], grace_s: float = 2.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; only ever called with pids the testbed created."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.02)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as gone; reap it if it is ours
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return Path(f'/proc/{pid}').exists() and 'Z' not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return 'Z'


def _tag_pattern(prefix: str) -> re.Pattern:
    return re.compile(rf'^({re.escape(prefix)}(\d+)[a-z])-(dev|edge)$')


def clean_leftovers(prefix: str = PREFIX) -> list[str]:
    """Remove namespaces (with their processes, devices and qdiscs) left by crashed testbed runs.

    Only namespaces named ``<prefix><pid><letter>-dev|edge`` are considered, and only those whose
    creating process is gone (or is this process but no longer holds them).  Returns the names removed.
    """
    removed = []
    pattern = _tag_pattern(prefix)
    for ns in list_namespaces():
        m = pattern.match(ns)
        if not m:
            continue
        tag, pid = m.group(1), int(m.group(2))
        if tag in _active or (pid != os.getpid() and _alive(pid)):
            continue
        _stop_pids(namespace_pids(ns))
        _run(['ip', 'netns', 'del', ns], check=False)
        removed.append(ns)
    return removed


class Testbed:
    """Device and edge namespaces joined by a delayed, shaped TUN link (see the module docstring).

    Use it as a context manager; every exit path (normal, exception, SIGINT, SIGTERM, interpreter
    exit) runs :meth:`cleanup`, which stops every process started here or running inside the
    namespaces, and deletes the namespaces with their devices and qdiscs.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, delay_ms: float = 0.0, rate_mbps: float | None = None, *, loss: float = 0.0,
                 seed: int | None = None, capacity: int = 4096, queue_s: float = 1.0,
                 delay_schedule: str | None = None, prefix: str = PREFIX, subnet: str = SUBNET,
                 handle_signals: bool = True, timeout_s: float = 10.0, delay_line_cpus: set[int] | None = None):
        """Describe the testbed; nothing is created before ``__enter__`` (or :meth:`start`).

        ``delay_ms`` is the one-way delay of each direction (RTT = 2 x delay_ms), ``rate_mbps`` the
        initial tbf rate of both directions (None: unshaped), ``queue_s`` the tbf queue length in
        seconds of the rate, ``delay_schedule`` a file for ``delay_line --schedule``, ``delay_line_cpus``
        the cores the delay line may run on (None: any).
        """
        self.tag = f'{prefix}{os.getpid()}{chr(97 + next(_letters) % 26)}'
        self.device_ns, self.edge_ns = f'{self.tag}-dev', f'{self.tag}-edge'
        self.device_if, self.edge_if = f'{self.tag}d', f'{self.tag}e'
        self.device_ip, self.edge_ip = f'{subnet}.1', f'{subnet}.2'
        self.delay_ms, self.rate_mbps = delay_ms, rate_mbps
        self.loss, self.seed, self.capacity, self.queue_s = loss, seed, capacity, queue_s
        self.delay_schedule, self.handle_signals, self.timeout_s = delay_schedule, handle_signals, timeout_s
        self.delay_line_cpus = delay_line_cpus
        self.rates: dict[str, float | None] = {'up': None, 'down': None}
        self.delay_line: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._namespaces: list[str] = []
        self._processes: list[subprocess.Popen] = []
        self._previous_handlers: dict[int, Any] = {}
        self._cleaning = False
        self._pending_signal: int | None = None
        self.final_stats: str | None = None

    # -- life cycle -------------------------------------------------------------------------------------------------

    def __enter__(self) -> Testbed:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.cleanup()

    def start(self) -> None:
        """Create namespaces, TUN devices, addresses, the delay line and the qdiscs; clean up on any failure."""
        require_root()
        _active.add(self.tag)
        atexit.register(self.cleanup)
        self._install_signal_handlers()
        try:
            self._create()
        except BaseException:
            self.cleanup()
            raise

    def _create(self) -> None:
        ends = ((self.device_ns, self.device_if, self.device_ip, self.edge_ip),
                (self.edge_ns, self.edge_if, self.edge_ip, self.device_ip))
        for ns, dev, ip, peer in ends:
            _run(['ip', 'netns', 'add', ns])
            self._namespaces.append(ns)
            _run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
            _run(['ip', '-n', ns, 'tuntap', 'add', 'dev', dev, 'mode', 'tun'])
            _run(['ip', '-n', ns, 'addr', 'add', ip, 'peer', f'{peer}/32', 'dev', dev])
            _run(['ip', '-n', ns, 'link', 'set', dev, 'up'])
        cmd = [sys.executable, '-m', 'coinfer_edge.testbed.delay_line', '--ns-a', self.device_ns,
               '--tun-a', self.device_if, '--ns-b', self.edge_ns, '--tun-b', self.edge_if,
               '--delay-ms', str(self.delay_ms), '--capacity', str(self.capacity), '--loss', str(self.loss),
               '--control', 'stdin']
        cmd += ['--seed', str(self.seed)] if self.seed is not None else []
        cmd += ['--schedule', self.delay_schedule] if self.delay_schedule else []
        # Own session: a Ctrl-C at the terminal reaches this process, whose handler stops the delay line in order.
        self.delay_line = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                           env=child_env(), start_new_session=True,
                                           preexec_fn=self._pin_delay_line if self.delay_line_cpus else None)
        self._reader = threading.Thread(target=self._read_lines, args=(self.delay_line.stdout,), daemon=True)
        self._reader.start()
        self._expect(READY, 'the delay line to start')
        if self.rate_mbps is not None:
            self.set_rate('both', self.rate_mbps)

    def _pin_delay_line(self) -> None:
        os.sched_setaffinity(0, self.delay_line_cpus)

    def _read_lines(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line.rstrip('\n'))
        self._lines.put('')  # end of output

    def _expect(self, prefix: str, what: str) -> str:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TestbedError(f'timed out after {self.timeout_s} s waiting for {what}') from None
            if line.startswith(prefix):
                return line
            if line == '' or line.startswith('error'):
                raise TestbedError(f'delay line failed while waiting for {what}: {line or "it exited"}')

    def cleanup(self) -> None:
        """Stop every process, delete qdiscs and namespaces; safe to call any number of times, from any path."""
        if self._cleaning:
            return
        self._cleaning = True
        try:
            self._stop_processes()
            for ns in list(self._namespaces):
                _stop_pids(namespace_pids(ns))
            for ns, dev in ((self.device_ns, self.device_if), (self.edge_ns, self.edge_if)):
                if ns in self._namespaces:
                    _run(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', dev, 'root'], check=False)
            for ns in list(self._namespaces):
                _run(['ip', 'netns', 'del', ns], check=False)
                self._namespaces.remove(ns)
            self.rates = {'up': None, 'down': None}
            _active.discard(self.tag)
            atexit.unregister(self.cleanup)
            self._restore_signal_handlers()
        finally:
            self._cleaning = False
        if self._pending_signal is not None:
            signum, self._pending_signal = self._pending_signal, None
            self._redeliver(signum, None)

    def _stop_processes(self) -> None:
        for proc in self._processes:
            if proc.poll() is None:
                _stop_pids([proc.pid])
            _reap(proc)
        self._processes.clear()
        if self.delay_line is not None:
            proc, self.delay_line = self.delay_line, None
            try:
                proc.stdin.close()  # end of control input: the delay line prints its stats and exits
            except OSError:
                pass
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                _stop_pids([proc.pid])
            if self._reader is not None:
                self._reader.join(timeout=2.0)
            _reap(proc)
            lines = []
            while not self._lines.empty():
                lines.append(self._lines.get_nowait())
            self.final_stats = next((line for line in reversed(lines) if line.startswith('stats ')), None)

    # -- signals ----------------------------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _restore_signal_handlers(self) -> None:
        for signum, previous in self._previous_handlers.items():
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, previous)
        self._previous_handlers.clear()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._cleaning:  # interrupted our own cleanup: finish it first, then act on the signal
            self._pending_signal = signum
            return
        previous = self._previous_handlers.get(signum, signal.SIG_DFL)
        self.cleanup()
        self._redeliver(signum, frame, previous)

    def _redeliver(self, signum: int, frame: Any, previous: Any = None) -> None:
        """Act on ``signum`` as the handler in place before the testbed would have."""
        previous = signal.getsignal(signum) if previous is None else previous
        if callable(previous) and previous is not self._on_signal:
            previous(signum, frame)  # e.g. default_int_handler raises KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    # -- the link ---------------------------------------------------------------------------------------------------

    def _direction_devices(self, direction: str) -> list[tuple[str, str, str]]:
        if direction == 'both':
            return self._direction_devices('up') + self._direction_devices('down')
        if direction not in DIRECTIONS:
            raise ValueError(f'direction must be both, {", ".join(DIRECTIONS)}; got {direction!r}')
        d = DIRECTIONS[direction]
        return [(d, self.device_ns, self.device_if) if d == 'up' else (d, self.edge_ns, self.edge_if)]

    def set_rate(self, direction: str, mbps: float | None) -> None:
        """Shape ``direction`` (up/device_to_edge, down/edge_to_device, both) to ``mbps`` with tbf; None unshapes.

        The first call adds the qdisc, later ones use ``tc qdisc change`` so queued packets stay.
        """
        for d, ns, dev in self._direction_devices(direction):
            tc = ['ip', 'netns', 'exec', ns, 'tc', 'qdisc']
            if mbps is None:
                if self.rates[d] is not None:
                    _run(tc + ['del', 'dev', dev, 'root'])
            else:
                if mbps <= 0:
                    raise ValueError('rate must be > 0 Mbit/s (use link_down for a cut)')
                verb = 'change' if self.rates[d] is not None else 'add'
                _run(tc + [verb, 'dev', dev, 'root', 'handle', '1:', 'tbf'] + tbf_args(mbps, self.queue_s))
            self.rates[d] = mbps

    def set_delay(self, delay_ms: float, direction: str = 'both') -> None:
        """Set the one-way delay of ``direction`` (up, down or both) from now on; waits for the delay line's ack."""
        if delay_ms < 0:
            raise ValueError('delay must be >= 0 ms')
        dl = {'both': 'both', **{k: 'ab' if v == 'up' else 'ba' for k, v in DIRECTIONS.items()}}
        if direction not in dl:
            raise ValueError(f'direction must be both, {", ".join(DIRECTIONS)}; got {direction!r}')
        self._command(f'delay {delay_ms} {dl[direction]}', 'ok delay')
        if direction == 'both':
            self.delay_ms = delay_ms

    def delay_line_stats(self) -> str:
        """Return the delay line's counters as its ``stats {json}`` line."""
        return self._command('stats', 'stats ')

    def _command(self, line: str, ack: str) -> str:
        if self.delay_line is None or self.delay_line.poll() is not None:
            raise TestbedError('the delay line is not running')
        self.delay_line.stdin.write(line + '\n')
        self.delay_line.stdin.flush()
        return self._expect(ack, f'the delay line to answer {line!r}')

    def link_down(self) -> None:
        """Cut the link: both TUN devices down (routes gone, nothing passes either way)."""
        for ns, dev in ((self.device_ns, self.device_if), (self.edge_ns, self.edge_if)):
            _run(['ip', '-n', ns, 'link', 'set', dev, 'down'])

    def link_up(self) -> None:
        """Restore the link after :meth:`link_down` (addresses, routes and qdiscs come back)."""
        for ns, dev in ((self.device_ns, self.device_if), (self.edge_ns, self.edge_if)):
            _run(['ip', '-n', ns, 'link', 'set', dev, 'up'])

    # -- processes --------------------------------------------------------------------------------------------------

    def namespace(self, side: str) -> str:
        """Return the namespace name of ``side`` ('device' or 'edge'; a full name passes through)."""
        names = {'device': self.device_ns, 'edge': self.edge_ns}
        if side in names.values():
            return side
        if side not in names:
            raise ValueError(f"side must be 'device' or 'edge', got {side!r}")
        return names[side]

    def exec_args(self, side: str) -> list[str]:
        """Return the command prefix that runs a program inside ``side``'s namespace."""
        return ['ip', 'netns', 'exec', self.namespace(side)]

    def popen(self, side: str, args: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """Start ``args`` inside ``side``'s namespace (package on PYTHONPATH); cleanup stops it."""
        kwargs.setdefault('env', child_env())
        proc = subprocess.Popen(self.exec_args(side) + list(args), **kwargs)
        self._processes.append(proc)
        return proc

    def qdiscs(self) -> dict[str, str]:
        """Return ``tc qdisc show`` of each TUN device, by direction (up, down)."""
        return {d: _run(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'show', 'dev', dev]).stdout.strip()
                for d, ns, dev in self._direction_devices('both')}


def tbf_args(mbps: float, queue_s: float = 1.0, mtu: int = 1500) -> list[str]:
    """Return the ``tbf`` parameters for ``mbps``: a burst of ~4 ms of the rate (>= 4 MTU), ``queue_s`` of queue."""
    rate_bytes = mbps * 1e6 / 8
    burst = max(4 * mtu, int(rate_bytes * 0.004))
    limit = max(burst + 16 * mtu, int(rate_bytes * queue_s))
    return ['rate', f'{mbps * 1000:.0f}kbit', 'burst', str(burst), 'limit', str(limit)]


def _reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
