# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""A user-space delay line between two TUN devices: one-way delay (and optional loss) without ``netem``.

This kernel has no ``netem`` qdisc, so delay is added in user space.  One process holds one TUN
device in each namespace; every IP packet the kernel routes out of TUN A is read, held in a
:class:`DelayQueue` and written into TUN B, where the kernel receives it as if it came off a wire
(and the same from B to A).  Rate shaping is not done here: ``tc tbf`` on each TUN's egress does it
(:mod:`.netns`).

The pure part, :class:`DelayQueue`, takes the clock as an argument so it is unit-tested without
time passing.  :func:`run_delay_line` is the poll loop, :func:`main` the command line::

    python -m coinfer_edge.testbed.delay_line --ns-a NS --tun-a DEV --ns-b NS --tun-b DEV --delay-ms 10
        [--schedule FILE] [--capacity N] [--loss P --seed N] [--control stdin]

It prints one line starting with :data:`READY` once both devices are open, stops cleanly on
SIGTERM or SIGINT and prints a final ``stats {json}`` line.  With ``--control stdin`` it also reads
commands, one per line, and answers each on stdout (this is how the testbed changes the delay at
run time; end of input stops the process, so it never outlives a parent that dies)::

    delay MS [ab|ba|both]     -> ok delay MS DIR      (a constant delay from now on)
    stats                     -> stats {json}
    quit                      -> (stops)
"""

from __future__ import annotations

import argparse
import bisect
import ctypes
import fcntl
import json
import math
import os
import random
import select
import signal
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

READY = 'delay-line ready'
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
MAX_PACKET = 65536
# Packets read from one device per poll wake-up, so a flood in one direction cannot starve the other.
READ_BATCH = 256


class DelaySchedule:
    """A piecewise-constant one-way delay: steps ``(t, delay_ms)``; the first value also holds before its ``t``."""

    def __init__(self, steps: Sequence[tuple[float, float]]):
        steps = [(float(t), float(ms)) for t, ms in steps]
        if not steps:
            raise ValueError('a delay schedule needs at least one step')
        if any(b[0] < a[0] for a, b in zip(steps, steps[1:])):
            raise ValueError('delay schedule steps must be sorted by time')
        if any(ms < 0 or not math.isfinite(ms) for _, ms in steps):
            raise ValueError('delays must be finite and >= 0 ms')
        self.steps = steps
        self._times = [t for t, _ in steps]

    @classmethod
    def constant(cls, delay_ms: float) -> DelaySchedule:
        """Return a schedule that is ``delay_ms`` at all times."""
        return cls([(0.0, delay_ms)])

    def shifted(self, t0: float) -> DelaySchedule:
        """Return the schedule with every step time moved by ``t0`` (relative times to clock times)."""
        return DelaySchedule([(t + t0, ms) for t, ms in self.steps])

    def delay_s(self, now: float) -> float:
        """Return the delay in seconds at time ``now``."""
        i = bisect.bisect_right(self._times, now) - 1
        return self.steps[max(i, 0)][1] / 1000.0

    def next_change(self, now: float) -> float | None:
        """Return the time of the first step after ``now``, or None when the delay no longer changes."""
        i = bisect.bisect_right(self._times, now)
        return self._times[i] if i < len(self._times) else None


@dataclass
class QueueConfig:
    """How one direction of the delay line behaves."""

    delay_ms: float = 0.0
    #: optional ``(t_s, delay_ms)`` steps, ``t`` relative to the start of the delay line; overrides ``delay_ms``
    schedule: Sequence[tuple[float, float]] | None = None
    #: packets held at most; one more is dropped (tail drop) and counted
    capacity: int = 4096
    #: Bernoulli loss probability per packet (counted); 0 disables loss
    loss: float = 0.0
    seed: int | None = None

    def make_schedule(self, t0: float = 0.0) -> DelaySchedule:
        """Return the delay schedule in clock time, starting at ``t0``."""
        base = DelaySchedule(self.schedule) if self.schedule else DelaySchedule.constant(self.delay_ms)
        return base.shifted(t0)


@dataclass
class DelayQueue:
    """One direction of the delay line: a FIFO whose head leaves when ``now >= arrival + delay(now)``.

    Release depends only on the head, and arrival times never decrease, so packets leave in the
    order they came even when the delay drops (a later packet never overtakes an earlier one; it
    waits behind it).  When the delay drops, queued packets leave at ``arrival + new delay`` or at
    once if that has passed; when it rises, they wait longer.  Invariant:
    ``pushed == released + dropped + lost + len(self)``.
    """

    schedule: DelaySchedule = field(default_factory=lambda: DelaySchedule.constant(0.0))
    capacity: int = 4096
    loss: float = 0.0
    seed: int | None = None
    pushed: int = 0
    released: int = 0
    dropped: int = 0
    lost: int = 0

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError('capacity must be >= 1')
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError('loss must be within [0, 1]')
        self._queue: deque[tuple[float, bytes]] = deque()
        self._rng = random.Random(self.seed)
        self._last_arrival = -math.inf

    @classmethod
    def from_config(cls, config: QueueConfig, t0: float = 0.0, seed_offset: int = 0) -> DelayQueue:
        """Build a queue from a :class:`QueueConfig`; ``seed_offset`` keeps two directions' losses independent."""
        seed = None if config.seed is None else config.seed + seed_offset
        return cls(config.make_schedule(t0), config.capacity, config.loss, seed)

    def __len__(self) -> int:
        return len(self._queue)

    def set_delay(self, delay_ms: float) -> None:
        """Use a constant delay of ``delay_ms`` from now on (replaces any schedule)."""
        self.schedule = DelaySchedule.constant(delay_ms)

    def push(self, packet: bytes, now: float) -> bool:
        """Queue ``packet`` that arrived at ``now``; return False when it was lost or dropped (both counted)."""
        self.pushed += 1
        if self.loss and self._rng.random() < self.loss:
            self.lost += 1
            return False
        if len(self._queue) >= self.capacity:
            self.dropped += 1
            return False
        # A clock that steps back must not let a packet be released before the one ahead of it.
        self._last_arrival = max(self._last_arrival, now)
        self._queue.append((self._last_arrival, packet))
        return True

    def pop_ready(self, now: float) -> list[bytes]:
        """Remove and return, in arrival order, every packet whose delay has passed at ``now``."""
        delay = self.schedule.delay_s(now)
        out = []
        while self._queue and now >= self._queue[0][0] + delay:
            out.append(self._queue.popleft()[1])
        self.released += len(out)
        return out

    def next_release(self, now: float) -> float | None:
        """Return when :meth:`pop_ready` should be called next (a head release or a schedule step), or None."""
        if not self._queue:
            return None
        due = self._queue[0][0] + self.schedule.delay_s(now)
        change = self.schedule.next_change(now)
        return due if change is None else min(due, change)

    def stats(self) -> dict[str, int]:
        """Return the counters and the current length."""
        return {'pushed': self.pushed, 'released': self.released, 'dropped': self.dropped, 'lost': self.lost,
                'queued': len(self._queue)}


class _Control:
    """The line protocol on the control fd (see the module docstring)."""

    def __init__(self, fd_in: int, out: Callable[[str], None], queues: dict[str, DelayQueue]):
        self.fd_in, self.out, self.queues = fd_in, out, queues
        self._buffer = b''

    def handle_input(self) -> bool:
        """Read what is available and run complete commands; return False to stop."""
        try:
            data = os.read(self.fd_in, 4096)
        except BlockingIOError:
            return True
        if not data:
            return False
        self._buffer += data
        while b'\n' in self._buffer:
            line, self._buffer = self._buffer.split(b'\n', 1)
            if not self.command(line.decode(errors='replace').split()):
                return False
        return True

    def command(self, words: list[str]) -> bool:
        if not words:
            return True
        if words[0] == 'quit':
            return False
        if words[0] == 'stats':
            self.out('stats ' + json.dumps({k: q.stats() for k, q in self.queues.items()}))
        elif words[0] == 'delay' and len(words) in (2, 3):
            direction = words[2] if len(words) == 3 else 'both'
            try:
                ms = float(words[1])
                if ms < 0 or not math.isfinite(ms) or direction not in ('ab', 'ba', 'both'):
                    raise ValueError
            except ValueError:
                self.out(f'error bad delay command: {" ".join(words)}')
                return True
            for name, q in self.queues.items():
                if direction in (name, 'both'):
                    q.set_delay(ms)
            self.out(f'ok delay {ms:g} {direction}')
        else:
            self.out(f'error unknown command: {" ".join(words)}')
        return True


def run_delay_line(fd_a: int, fd_b: int, config: QueueConfig, stop_fd: int, control_fd: int | None = None,
                   reply: Callable[[str], None] | None = None,
                   clock: Callable[[], float] = time.monotonic) -> dict[str, dict[str, int]]:
    """Move packets A->B and B->A through two :class:`DelayQueue` until ``stop_fd`` becomes readable.

    ``fd_a``/``fd_b`` are non-blocking packet fds (TUN devices, or datagram sockets in tests);
    each read returns one packet and each write sends one.  A failed write (a device that is down)
    counts as ``write_errors`` of that direction.  ``control_fd`` (optional) takes the line
    commands of the module docstring, answered through ``reply``; its end of input stops the loop.
    Returns the final counters per direction (``ab``, ``ba``).
    """
    t0 = clock()
    queues = {'ab': DelayQueue.from_config(config, t0, 0), 'ba': DelayQueue.from_config(config, t0, 1)}
    write_errors = {'ab': 0, 'ba': 0}
    routes = {fd_a: ('ab', fd_b), fd_b: ('ba', fd_a)}
    control = _Control(control_fd, reply or (lambda line: None), queues) if control_fd is not None else None
    poller = select.poll()
    for fd in (fd_a, fd_b, stop_fd) + ((control_fd,) if control_fd is not None else ()):
        poller.register(fd, select.POLLIN)
    while True:
        now = clock()
        wake = []
        for fd_in, (name, fd_out) in routes.items():
            for packet in queues[name].pop_ready(now):
                try:
                    os.write(fd_out, packet)
                except OSError:
                    write_errors[name] += 1
            nxt = queues[name].next_release(now)
            if nxt is not None:
                wake.append(nxt)
        # Round up: waking a little late keeps "never before its delay"; waking early would busy-loop.
        timeout = max(0, math.ceil((min(wake) - clock()) * 1000)) if wake else None
        for fd, events in poller.poll(timeout):
            if fd == stop_fd:
                return _final_stats(queues, write_errors)
            if control is not None and fd == control_fd:
                if not control.handle_input():
                    return _final_stats(queues, write_errors)
                continue
            if fd not in routes:
                continue
            name = routes[fd][0]
            for _ in range(READ_BATCH):
                try:
                    packet = os.read(fd, MAX_PACKET)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    # A TUN device that is down reports an error; there is nothing to read from it.
                    break
                if not packet:
                    break
                queues[name].push(packet, clock())


def _final_stats(queues: dict[str, DelayQueue], write_errors: dict[str, int]) -> dict[str, dict[str, int]]:
    return {name: dict(q.stats(), write_errors=write_errors[name]) for name, q in queues.items()}


def setns_net(path: str) -> None:
    """Move the calling thread into the network namespace at ``path`` (``/var/run/netns/NAME``)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if hasattr(os, 'setns'):  # Python >= 3.12
            os.setns(fd, CLONE_NEWNET)
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f'setns({path}): {os.strerror(err)}')
    finally:
        os.close(fd)


def open_tun(name: str) -> int:
    """Open (or create) TUN device ``name`` in the current network namespace; return a non-blocking fd."""
    if not 0 < len(name) <= 15:
        raise ValueError(f'interface name {name!r} must have 1..15 characters')
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH22x', name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def load_schedule(path: str) -> list[tuple[float, float]]:
    """Read ``(t_s, delay_ms)`` steps: a JSON list of pairs, or text lines ``t_s delay_ms`` (``#`` comments)."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if text.lstrip().startswith('['):
        return [(float(t), float(ms)) for t, ms in json.loads(text)]
    steps = []
    for line in text.splitlines():
        words = line.split('#', 1)[0].split()
        if words:
            steps.append((float(words[0]), float(words[1])))
    return steps


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m coinfer_edge.testbed.delay_line', description=__doc__.split('\n')[0])
    p.add_argument('--ns-a', help='network namespace of TUN A (default: the current one)')
    p.add_argument('--tun-a', required=True, help='TUN device A (created if missing)')
    p.add_argument('--ns-b', help='network namespace of TUN B (default: the current one)')
    p.add_argument('--tun-b', required=True, help='TUN device B (created if missing)')
    p.add_argument('--delay-ms', type=float, default=0.0, help='one-way delay of each direction (default 0)')
    p.add_argument('--schedule', help='file of (t_s, delay_ms) steps; overrides --delay-ms')
    p.add_argument('--capacity', type=int, default=4096, help='packets held per direction before tail drop')
    p.add_argument('--loss', type=float, default=0.0, help='Bernoulli loss probability per packet')
    p.add_argument('--seed', type=int, help='seed of the loss draws')
    p.add_argument('--control', choices=['none', 'stdin'], default='none', help='read line commands from stdin')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Open both TUN devices, print the ready line, run until SIGTERM/SIGINT (or end of control input)."""
    args = _parser().parse_args(argv)
    config = QueueConfig(delay_ms=args.delay_ms, schedule=load_schedule(args.schedule) if args.schedule else None,
                         capacity=args.capacity, loss=args.loss, seed=args.seed)
    stop_r, stop_w = os.pipe()
    os.set_blocking(stop_w, False)

    def on_signal(signum, frame):
        try:
            os.write(stop_w, b'x')
        except BlockingIOError:
            pass

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fds = []
    try:
        # The TUN device is created in the namespace of the thread that opens it, so enter each one first.
        # The process stays in namespace B afterwards, where `ip netns pids` finds it.
        for ns, dev in ((args.ns_a, args.tun_a), (args.ns_b, args.tun_b)):
            if ns:
                setns_net(f'/var/run/netns/{ns}')
            fds.append(open_tun(dev))
    except OSError as exc:
        print(f'delay-line: cannot open the TUN devices: {exc}', file=sys.stderr)
        return 2

    def reply(line: str) -> None:
        try:
            print(line, flush=True)
        except BrokenPipeError:  # the parent is gone; nobody reads the answers any more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    control_fd = None
    if args.control == 'stdin':
        control_fd = sys.stdin.fileno()
        os.set_blocking(control_fd, False)
    reply(f'{READY} {args.tun_a}<->{args.tun_b} delay_ms={args.delay_ms:g}')
    stats = run_delay_line(fds[0], fds[1], config, stop_r, control_fd, reply)
    reply('stats ' + json.dumps(stats))
    for fd in fds:
        os.close(fd)
    return 0


if __name__ == '__main__':
    sys.exit(main())
