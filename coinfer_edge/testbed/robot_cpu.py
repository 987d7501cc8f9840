# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The robot's CPU: a core of its own, two slow cores on it, and a quota calibrated in closed loop to the policy's Pi.

On one machine the robot's device node shares the cores with the workstation's nodes, the
recorder and the delay line.  Under a CPU quota alone its speed then depends on what the others
do: the full network once per 100 ms took 59 ms at ``k`` = 3.5 on an idle machine and 66-68 ms
with three busy processes beside it (2 cores).  Pinned to a core of its own, the same work took
55-57 ms either way.  So the robot gets :func:`split_cpus`'s robot core (the other processes the
rest) and a quota that makes it ``k`` times slower there.

A Pi 4 has four cores: the device node's inference thread computes on one while its executor
takes images and the edge's answers and DDS moves messages on the others.  One quota for the
whole process would serialize them, and an answer would wait for the next frame's inference
before the device takes it in.  :class:`RobotCpu` therefore has two groups on the robot core, each
``k`` times slower than the core: the inference thread (the pipeline names it ``coinfer-infer``,
:data:`coinfer_device.core.thread_names.INFERENCE_THREAD`) in one, every other thread of the
device process in the other.

``k`` is found in closed loop (:func:`calibrate_slowdown`): a thread of this process joins the
quota's group on the robot core, times the full network once per camera period, and ``k`` is
scaled by target / measured until the measured time is the policy's ``device_slowdown`` x the
profile's per-frame time.  The work timed is passed in, so the loop is tested without a network.
"""

from __future__ import annotations

import math
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from coinfer_edge.testbed.cgroup import CpuQuota

TOLERANCE = 0.03  # a measured time within 3 % of the target ends the calibration
MAX_ROUNDS = 6


def split_cpus(available: set[int] | None = None) -> tuple[set[int], set[int]] | None:
    """Return (robot core, the other cores) of ``available`` (default: this process's), None with one core.

    The robot takes the highest-numbered core: the lower ones more often serve interrupts.
    """
    cpus = set(os.sched_getaffinity(0) if available is None else available)
    if len(cpus) < 2:
        return None
    robot = max(cpus)
    return {robot}, cpus - {robot}


def taskset_args(cpus: set[int] | None) -> list[str]:
    """Return the ``taskset -c`` prefix that runs a command on ``cpus`` (nothing for None)."""
    return ['taskset', '-c', ','.join(str(c) for c in sorted(cpus))] if cpus else []


@dataclass
class Calibration:
    """The rounds of :func:`calibrate_slowdown` (``(k, measured ms)`` each) and the round it settled on."""

    target_ms: float
    rounds: list[tuple[float, float]] = field(default_factory=list)
    chosen: int = -1

    @property
    def slowdown(self) -> float:
        """Return the chosen factor ``k``."""
        return self.rounds[self.chosen][0]

    @property
    def measured_ms(self) -> float:
        """Return the time measured at the chosen factor."""
        return self.rounds[self.chosen][1]

    @property
    def error(self) -> float:
        """Return the chosen round's relative error against the target (0.02 = 2 % slower than the target)."""
        return self.measured_ms / self.target_ms - 1.0

    def describe(self) -> str:
        """Return one line: factor, measured against target, rounds."""
        return (f'k = {self.slowdown:.2f}: full network {self.measured_ms:.1f} ms per frame against the target '
                f'{self.target_ms:.1f} ms ({100 * self.error:+.1f} %, {len(self.rounds)} rounds)')

    def as_dict(self) -> dict[str, float | int]:
        """Return what ``run.json`` records of it."""
        return {'slowdown': self.slowdown, 'measured_ms': self.measured_ms, 'target_ms': self.target_ms,
                'rounds': len(self.rounds)}


def calibrate_slowdown(measure_ms: Callable[[float], float], target_ms: float, start: float,
                       tolerance: float = TOLERANCE, max_rounds: int = MAX_ROUNDS) -> Calibration:
    """Return the slowdown ``k`` at which ``measure_ms(k)`` is within ``tolerance`` of ``target_ms``.

    Time under a quota grows about linearly with ``k``, so each round scales ``k`` by target / measured,
    at most by 2 either way and (at least 1) inside the bracket the rounds so far have found: a ``k``
    that measured too fast is a lower bound, one too slow an upper bound (bursts shorter than the
    kernel's tick make the time a step function of ``k``; the bracket keeps the loop from swinging).
    After ``max_rounds`` the round closest to the target wins.
    """
    if not target_ms > 0 or not start >= 1.0:
        raise ValueError(f'need target_ms > 0 and start >= 1, got {target_ms}, {start}')
    cal = Calibration(target_ms)
    k, lo, hi = start, 1.0, math.inf
    for _ in range(max_rounds):
        measured = measure_ms(k)
        if not measured > 0:
            raise ValueError(f'measured time must be > 0 ms, got {measured}')
        cal.rounds.append((k, measured))
        if abs(measured / target_ms - 1.0) <= tolerance:
            break
        if measured < target_ms:
            lo = max(lo, k)
        else:
            hi = min(hi, k)
        proposal = min(max(k * target_ms / measured, k / 2.0, 1.0), 2.0 * k)
        if not lo <= proposal <= hi:
            proposal = (lo + hi) / 2.0 if math.isfinite(hi) else 2.0 * lo
        if proposal == k:  # at full speed and still too slow, or the bracket closed: nothing left to try
            break
        k = proposal
    cal.chosen = min(range(len(cal.rounds)), key=lambda i: abs(cal.rounds[i][1] / target_ms - 1.0))
    return cal


@contextmanager
def thread_in(quota: CpuQuota, cpus: set[int] | None) -> Iterator[None]:
    """Run the calling thread (only it) inside ``quota``'s group and on ``cpus`` for the ``with`` block."""
    tid = threading.get_native_id()
    previous = os.sched_getaffinity(0)  # pid 0 = the calling thread
    if cpus:
        os.sched_setaffinity(0, cpus)
    (quota.path / 'tasks').write_text(str(tid))
    try:
        yield
    finally:
        (quota.path.parent / 'tasks').write_text(str(tid))
        os.sched_setaffinity(0, previous)


def thread_ids(pid: int, name: str, proc: Path = Path('/proc')) -> list[int]:
    """Return the ids of the threads of process ``pid`` whose kernel name is ``name``."""
    out = []
    for task in (proc / str(pid) / 'task').glob('*'):
        try:
            if (task / 'comm').read_text().strip() == name:
                out.append(int(task.name))
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
    return sorted(out)


class RobotCpu:
    """The robot's two slow cores on one real core: the inference thread in one group, the rest in the other."""

    def __init__(self) -> None:
        """Describe both groups; they are created by ``__enter__``."""
        self.inference = CpuQuota(1.0)
        self.rest = CpuQuota(1.0)

    def __enter__(self) -> RobotCpu:
        self.inference.create()
        try:
            self.rest.create()
        except BaseException:
            self.inference.remove()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.rest.remove()
        finally:
            self.inference.remove()

    def set_slowdown(self, factor: float) -> None:
        """Make both cores ``factor`` times slower than the real core."""
        for group in (self.inference, self.rest):
            group.set_slowdown(factor)

    def release(self) -> None:
        """Lift both limits (e.g. before stopping the node: its shutdown is not measured)."""
        for group in (self.inference, self.rest):
            group.set_fraction(None)

    def place(self, pid: int, inference_thread: str, timeout_s: float = 10.0) -> int:
        """Put process ``pid`` in the rest group and its thread named ``inference_thread`` in the inference group.

        Returns that thread's id; raises RuntimeError when no such thread appears within ``timeout_s``.
        """
        self.rest.add(pid)
        deadline = time.monotonic() + timeout_s
        while not (tids := thread_ids(pid, inference_thread)):
            if time.monotonic() > deadline:
                raise RuntimeError(f'process {pid} has no thread named {inference_thread!r} (is it device_node, '
                                   'and active?)')
            time.sleep(0.05)
        for tid in tids:
            self.inference.add_thread(tid)
        return tids[0]
