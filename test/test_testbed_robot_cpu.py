# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The robot's CPU: the core split, the closed-loop quota calibration, threads in quotas (root).

The calibration loop is checked against made-up hosts (time = a x k + b, noise, a floor); the
thread placement for real, as root: a busy loop timed in the group runs ``k`` times slower.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from coinfer_edge.testbed.cgroup import CpuQuota
from coinfer_device.core.thread_names import INFERENCE_THREAD
from coinfer_edge.testbed.robot_cpu import (Calibration, RobotCpu, calibrate_slowdown, split_cpus, taskset_args,
                                            thread_ids, thread_in)

import testbed_support


def test_the_robot_takes_the_highest_core_and_the_rest_get_the_others():
    assert split_cpus({0, 1}) == ({1}, {0})
    assert split_cpus({0, 2, 5, 7}) == ({7}, {0, 2, 5})
    assert split_cpus({3}) is None          # one core: nothing to split
    assert taskset_args({0, 2, 5}) == ['taskset', '-c', '0,2,5']
    assert taskset_args(None) == []


@pytest.mark.parametrize('per_k_ms, fixed_ms', [(16.0, 0.0), (16.0, 9.0), (40.0, -5.0), (3.0, 20.0)])
def test_the_loop_finds_the_factor_whose_measured_time_is_the_target(per_k_ms, fixed_ms):
    def host(k: float) -> float:
        return per_k_ms * k + fixed_ms

    cal = calibrate_slowdown(host, target_ms=130.0, start=2.0)
    assert abs(cal.error) <= 0.03, cal.rounds
    assert cal.measured_ms == pytest.approx(host(cal.slowdown))
    assert cal.rounds[0][0] == 2.0 and len(cal.rounds) <= 6


def test_one_round_when_the_start_already_fits():
    cal = calibrate_slowdown(lambda k: 16.2 * k, target_ms=130.0, start=8.0)
    assert len(cal.rounds) == 1 and cal.slowdown == 8.0
    assert 'k = 8.00' in cal.describe() and '1 rounds' in cal.describe()
    assert cal.as_dict() == {'slowdown': 8.0, 'measured_ms': pytest.approx(129.6), 'target_ms': 130.0, 'rounds': 1}


def test_a_noisy_host_ends_at_the_round_closest_to_the_target():
    noise = iter([1.2, 0.8, 1.15, 0.85, 1.1, 0.9])   # +-10 % and more: rarely within 3 %

    cal = calibrate_slowdown(lambda k: 10.0 * k * next(noise), target_ms=100.0, start=10.0)
    assert len(cal.rounds) <= 6
    assert cal.error == pytest.approx(min((m / 100.0 - 1.0 for _, m in cal.rounds), key=abs))


def test_a_host_slower_than_the_target_stays_at_full_speed():
    cal = calibrate_slowdown(lambda k: 200.0 * k, target_ms=130.0, start=3.0)
    assert cal.slowdown == 1.0 and cal.error > 0   # cannot be made faster than the core


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        calibrate_slowdown(lambda k: 1.0, target_ms=0.0, start=2.0)
    with pytest.raises(ValueError):
        calibrate_slowdown(lambda k: 1.0, target_ms=10.0, start=0.5)
    with pytest.raises(ValueError):
        calibrate_slowdown(lambda k: 0.0, target_ms=10.0, start=2.0)
    assert Calibration(1.0, [(2.0, 1.0)], 0).error == 0.0


def busy_ms(work: int = 1_500_000) -> float:
    # About 40 ms of work here: far longer than the kernel's 4 ms tick at which quotas are enforced, so the
    # throttled time is k x the work and not a few ticks more or less.
    start = time.perf_counter()
    x = 0
    for i in range(work):
        x += i
    return (time.perf_counter() - start) * 1e3


def test_a_thread_in_the_quota_runs_k_times_slower_and_leaves_it_after():
    testbed_support.require_root('the robot CPU tests (cgroups)')
    split = split_cpus()
    robot = split[0] if split else None
    before_affinity = os.sched_getaffinity(0)
    free = min(busy_ms() for _ in range(3))
    with CpuQuota(1.0) as quota:
        quota.set_slowdown(4.0)
        with thread_in(quota, robot):
            assert str(threading.get_native_id()) in (quota.path / 'tasks').read_text().split()
            if robot:
                assert os.sched_getaffinity(0) == robot
            throttled = min(busy_ms() for _ in range(3))
        assert str(threading.get_native_id()) not in (quota.path / 'tasks').read_text().split()
    assert os.sched_getaffinity(0) == before_affinity
    assert 2.5 <= throttled / free <= 6.0, (free, throttled)


def test_a_step_shaped_host_is_bracketed_instead_of_swinging():
    # Bursts shorter than the kernel's tick: the time jumps between plateaus as k grows.
    def host(k: float) -> float:
        return 9.0 if k < 15.0 else 23.0

    cal = calibrate_slowdown(host, target_ms=14.5, start=6.0)
    ks = [k for k, _ in cal.rounds]
    assert all(k <= 2.0 * prev for prev, k in zip(ks, ks[1:])), ks     # never more than doubled
    assert max(ks) < 30.0 and len(cal.rounds) == 6
    assert cal.measured_ms in (9.0, 23.0)                               # the closest plateau, reported as it is


WORKER = '''
import sys, threading, time
from coinfer_device.core.thread_names import INFERENCE_THREAD, name_this_thread
def work():
    name_this_thread(INFERENCE_THREAD)
    time.sleep(60)
if sys.argv[1] == 'named':
    threading.Thread(target=work, daemon=True).start()
print('ready', flush=True)
time.sleep(60)
'''


@pytest.fixture
def worker_process():
    procs = []

    def start(kind: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, '-c', WORKER, kind], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == 'ready'
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_the_inference_thread_gets_its_own_slow_core_and_the_rest_the_other(worker_process):
    testbed_support.require_root('the robot CPU tests (cgroups)')
    proc = worker_process('named')
    with RobotCpu() as robot:
        robot.set_slowdown(5.0)
        tid = robot.place(proc.pid, INFERENCE_THREAD)
        assert thread_ids(proc.pid, INFERENCE_THREAD) == [tid] and tid != proc.pid
        inference = (robot.inference.path / 'tasks').read_text().split()
        rest = (robot.rest.path / 'tasks').read_text().split()
        assert inference == [str(tid)]
        assert str(proc.pid) in rest and str(tid) not in rest
        for group in (robot.inference, robot.rest):
            assert (group.path / 'cpu.cfs_period_us').read_text().strip() == '5000'
        robot.release()
        assert (robot.inference.path / 'cpu.cfs_quota_us').read_text().strip() == '-1'
        paths = (robot.inference.path, robot.rest.path)
    assert not any(p.exists() for p in paths)


def test_a_process_without_an_inference_thread_is_one_clear_error(worker_process):
    testbed_support.require_root('the robot CPU tests (cgroups)')
    proc = worker_process('unnamed')
    with RobotCpu() as robot, pytest.raises(RuntimeError, match=INFERENCE_THREAD):
        robot.place(proc.pid, INFERENCE_THREAD, timeout_s=0.3)
