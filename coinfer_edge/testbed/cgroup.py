# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""A CPU quota for a process group: cgroup v1 ``cpu`` controller (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``).

``CpuQuota(0.25)`` creates ``/sys/fs/cgroup/cpu/cib<pid><letter>-cpu`` whose members together get
at most a quarter of one CPU per period (100 ms by default), however many threads they run::

    with CpuQuota(0.25) as quota:
        quota.add(proc.pid)        # the whole process, every thread
        quota.set_fraction(0.5)    # at run time, e.g. from a CPU trace

On exit the member processes move back to the parent cgroup and the directory is removed.
:func:`clean_leftover_cgroups` removes groups left by crashed runs (our prefix, dead creator only).
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import time
from pathlib import Path
from typing import Any

from coinfer_edge.testbed.netns import PREFIX, require_root

CPU_ROOT = Path('/sys/fs/cgroup/cpu')
MIN_QUOTA_US = 1000  # the kernel refuses quotas below 1 ms
MAX_PERIOD_US = 1_000_000  # and periods above 1 s
_letters = itertools.count()
_active: set[str] = set()


class CgroupError(RuntimeError):
    """The cgroup v1 cpu controller is missing or refused a setting."""


def require_cpu_controller(root: Path = CPU_ROOT) -> None:
    """Raise CgroupError with one clear line when the cgroup v1 ``cpu`` controller is not mounted at ``root``."""
    if not (root / 'cpu.cfs_quota_us').exists():
        raise CgroupError(f'the cgroup v1 cpu controller is not mounted at {root} (no cpu.cfs_quota_us there); '
                          'mount it: mount -t cgroup -o cpu cgroup ' + str(root))


class CpuQuota:
    """A cgroup v1 cpu group whose members share ``fraction`` of one CPU; a context manager."""

    def __init__(self, fraction: float, period_us: int = 100_000, *, root: Path = CPU_ROOT, prefix: str = PREFIX):
        """Describe the group; it is created by ``__enter__`` (or :meth:`create`)."""
        self.root = Path(root)
        self.name = f'{prefix}{os.getpid()}{chr(97 + next(_letters) % 26)}-cpu'
        self.path = self.root / self.name
        self.period_us = int(period_us)
        self.fraction = fraction
        self._created = False

    def __enter__(self) -> CpuQuota:
        self.create()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.remove()

    def create(self) -> None:
        """Create the group and set period and quota."""
        require_root('a CPU quota')
        require_cpu_controller(self.root)
        self.path.mkdir()
        self._created = True
        _active.add(self.name)
        try:
            (self.path / 'cpu.cfs_period_us').write_text(str(self.period_us))
            self.set_fraction(self.fraction)
        except BaseException:
            self.remove()
            raise

    def set_fraction(self, fraction: float) -> None:
        """Limit the group to ``fraction`` of one CPU (e.g. 0.25; above 1 allows several CPUs; None: no limit)."""
        if fraction is None:
            quota = -1
        else:
            if not fraction > 0:
                raise ValueError('fraction must be > 0 (None removes the limit)')
            quota = max(MIN_QUOTA_US, round(fraction * self.period_us))
        (self.path / 'cpu.cfs_quota_us').write_text(str(quota))
        self.fraction = fraction

    def set_slowdown(self, factor: float, quantum_us: int = MIN_QUOTA_US) -> None:
        """Make the members run ``factor`` times slower than on one free CPU, at a fine grain.

        The group gets ``quantum_us`` of CPU per ``factor x quantum_us`` period.  A plain fraction
        with the default 100 ms period would let a burst shorter than the quota (one 4 ms inference)
        run at full speed; a 1 ms quantum spreads every burst over ``factor`` times its length, as a
        slower CPU would.
        """
        if not factor >= 1.0:
            raise ValueError(f'slowdown must be >= 1, got {factor}')
        quantum_us = max(MIN_QUOTA_US, int(quantum_us))
        self.period_us = min(MAX_PERIOD_US, round(factor * quantum_us))
        (self.path / 'cpu.cfs_quota_us').write_text(str(quantum_us))
        (self.path / 'cpu.cfs_period_us').write_text(str(self.period_us))
        self.fraction = quantum_us / self.period_us

    def add(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the group."""
        (self.path / 'cgroup.procs').write_text(str(pid))

    def add_thread(self, tid: int) -> None:
        """Move one thread ``tid`` into the group (its process's other threads stay where they are)."""
        (self.path / 'tasks').write_text(str(tid))

    def pids(self) -> list[int]:
        """Return the pids of the processes in the group."""
        return _read_pids(self.path)

    def stat(self) -> dict[str, int]:
        """Return ``cpu.stat`` (nr_periods, nr_throttled, throttled_time in ns)."""
        return {k: int(v) for k, v in (line.split() for line in (self.path / 'cpu.stat').read_text().splitlines())}

    def remove(self) -> None:
        """Move the members back to the parent group and remove the group; idempotent."""
        if not self._created:
            return
        _remove_group(self.path)
        self._created = False
        _active.discard(self.name)


def _read_pids(path: Path) -> list[int]:
    try:
        return [int(w) for w in (path / 'cgroup.procs').read_text().split()]
    except FileNotFoundError:
        return []


def _remove_group(path: Path, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while path.exists():
        for pid in _read_pids(path):
            try:
                (path.parent / 'cgroup.procs').write_text(str(pid))
            except OSError as exc:
                if exc.errno != errno.ESRCH:  # exited meanwhile
                    raise
        try:
            path.rmdir()
        except FileNotFoundError:
            return
        except OSError as exc:
            # EBUSY while an exiting task still counts as a member: retry until the deadline
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f'cannot remove {path}: {exc}') from exc
            time.sleep(0.02)


def clean_leftover_cgroups(prefix: str = PREFIX, root: Path = CPU_ROOT) -> list[str]:
    """Remove ``<prefix><pid><letter>-cpu`` groups whose creating process is gone; return their names."""
    removed = []
    if not root.is_dir():
        return removed
    pattern = re.compile(rf'^{re.escape(prefix)}(\d+)[a-z]-cpu$')
    for path in root.iterdir():
        m = pattern.match(path.name)
        if not m or path.name in _active:
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and Path(f'/proc/{pid}').exists():
            continue
        _remove_group(path)
        removed.append(path.name)
    return removed
