# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""``coinfer-experiment``: every policy end to end on two emulated hosts, a shaped changing link and a throttled CPU.

One run per policy (``--repeats N``: N rounds over the policies), each with the same scenario
(:data:`SCENARIO`: steps of link rate, RTT and robot CPU load) on a fresh :class:`~coinfer_edge.testbed.netns.Testbed`:

* the **robot** namespace runs the camera, the device node, the link monitor, its CPU monitor and
  ``coinfer-record`` (what the robot did is in its bag also while the link is cut); the device
  node runs alone on a core of its own, as two cores ``k`` times slower than it (its inference
  thread on one, its other threads on the other: :class:`~coinfer_edge.testbed.robot_cpu.RobotCpu`,
  two cgroup CPU quotas, :meth:`~coinfer_edge.testbed.cgroup.CpuQuota.set_slowdown`); ``k`` is calibrated in
  closed loop before every run so that the full network takes the policy's
  ``latency.device_slowdown`` x the profile's per-frame time on that core
  (:mod:`~coinfer_edge.testbed.robot_cpu`), and a CPU-load step shrinks the quota further: a load
  ``u`` leaves the device ``1 - u`` of its share; every other process runs on the other cores;
* the **workstation** namespace runs the edge, the policy and its CPU monitor;
* between them, ``tc tbf`` shapes both directions to the step's rate and the TUN delay line adds
  half the step's RTT each way.  Nothing is emulated inside the nodes (``compute_slowdown`` 1,
  no ``emulated_link``).

Every run is recorded as a bag; :mod:`coinfer_edge.demo.results` turns the bags into the report.
Discovery crosses the namespaces by multicast on the TUN link (``ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET``,
which reaches only the testbed's own two namespaces).  Needs root.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import psutil
import yaml

from coinfer_device.core.paths import DEFAULT_MODEL, SHIPPED_FILES, shipped
from coinfer_device.core.profile import Profile
from coinfer_device.core.thread_names import INFERENCE_THREAD
from coinfer_device.ros.conventions import FRAME_COUNTS_MARKER
from coinfer_edge.core.policy import PolicyObjective, default_policy_path
from coinfer_edge.demo.compare import DEFAULT_POLICIES, CompareError, PolicyRun, policy_runs
from coinfer_edge.demo.graph import choose_domain_id
from coinfer_edge.demo.harness import (Graph, NodeProcess, NodeStartError, StartInterrupted, clean_stale_shm,
                                       config_file, ros_env, stop_processes)
from coinfer_edge.testbed.cgroup import CpuQuota, clean_leftover_cgroups
from coinfer_edge.testbed.netns import Testbed, TestbedError, clean_leftovers, require_root
from coinfer_edge.testbed.robot_cpu import (Calibration, RobotCpu, calibrate_slowdown, split_cpus, taskset_args,
                                            thread_in)

PROG = 'coinfer-experiment'
RUN_JSON = 'run.json'
# The recorder runs on the robot, as a user records (docs/bags.md): what the robot did is in the bag also while
# the link is cut; it starts with the workstation's nodes, before the device and the camera.
EDGE_SIDE = ('edge', 'edge_cpu_monitor', 'policy')
DEVICE_SIDE = ('recorder', 'link_monitor', 'cpu_monitor', 'device', 'camera')
STARTUP_TIMEOUT_S = 120.0
EXPERIMENT_POLICIES = DEFAULT_POLICIES + ('neurosurgeon', 'rule', 'e2/p2/b4', 'e2/p8/b4')


@dataclass(frozen=True)
class Step:
    """One step of a scenario: link rate [Mbit/s], round-trip time [ms], CPU loads in [0, 1), link up or cut.

    A CPU load ``u`` is competing work on that host: the device keeps ``1 - u`` of its quota, the
    edge gets ``1 - u`` of one CPU (no limit at 0).
    """

    name: str
    mbps: float
    rtt_ms: float
    device_load: float = 0.0
    edge_load: float = 0.0
    link_up: bool = True
    trace_mbps: tuple[float, ...] = ()  # if set, the rate follows these, one per trace_dt_s (mbps: their mean)
    trace_dt_s: float = 0.5

    def __post_init__(self) -> None:
        if (not self.mbps > 0 or not self.rtt_ms >= 0 or not 0.0 <= self.device_load < 1.0
                or not 0.0 <= self.edge_load < 1.0 or not self.trace_dt_s > 0
                or any(not v >= 0 for v in self.trace_mbps)):
            raise ValueError(f'bad scenario step {self}')

    def rate_at(self, t_s: float) -> float:
        """Return the link rate [Mbit/s] ``t_s`` seconds into the step (a trace's zero capacity: a trickle)."""
        if not self.trace_mbps:
            return self.mbps
        return max(self.trace_mbps[min(max(int(t_s // self.trace_dt_s), 0), len(self.trace_mbps) - 1)],
                   MIN_TRACE_MBPS)


def trace_step(path: Path, offset_s: float, duration_s: float, rtt_ms: float, dt_s: float = 0.5) -> Step:
    """Return a step whose link rate replays ``duration_s`` of a bandwidth trace (mahimahi or CSV) from ``offset_s``."""
    from coinfer_edge.core.traces import load_trace

    rates = load_trace(path, dt_s).bandwidth_mbps
    first, count = int(round(offset_s / dt_s)), int(math.ceil(duration_s / dt_s))
    if offset_s < 0 or first + count > len(rates):
        raise ValueError(f'{path}: {len(rates) * dt_s:g} s long, cannot replay {duration_s:g} s from {offset_s:g} s')
    window = tuple(float(v) for v in rates[first:first + count])
    return Step(f'trace {Path(path).name} @{offset_s:g} s', max(float(np.mean(window)), MIN_TRACE_MBPS), rtt_ms,
                trace_mbps=window, trace_dt_s=dt_s)


SCENARIOS = {
    # Every regime in which a different knob wins, a sudden drop, an LTE-like high-bandwidth / high-RTT link and a
    # robot CPU burst at high bandwidth.
    'policies': (Step('WiFi, fast', 50.0, 4.0), Step('WiFi, medium', 12.0, 4.0), Step('sudden drop', 2.0, 4.0),
                 Step('LTE-like', 30.0, 60.0), Step('CPU burst', 50.0, 4.0, device_load=0.6),
                 Step('recovered', 25.0, 4.0)),
    # A link cut and a saturated edge CPU between normal steps.
    'reliability': (Step('normal', 50.0, 4.0), Step('link cut', 50.0, 4.0, link_up=False),
                    Step('restored', 50.0, 4.0), Step('edge CPU saturated', 50.0, 4.0, edge_load=0.9),
                    Step('normal again', 50.0, 4.0)),
    # One long step for memory and queue growth (bench/bench_soak.py runs it at 30 Hz).
    'soak': (Step('steady WiFi', 25.0, 4.0),),
}
RSS_EVERY_S = 5.0
MIN_TRACE_MBPS = 0.05  # tbf needs a rate: a trace's windows without capacity become this trickle
DRAIN_S = 1.5  # after the device stopped: its last results cross the slowest link of a scenario


@dataclass
class Setting:
    """What every run of one experiment shares."""

    out: Path
    steps: tuple[Step, ...]
    step_s: float
    rate_hz: float
    device_factor: float  # k of the robot's quota; recalibrated before every run unless fixed
    model: Path
    profile: Path
    policy_file: Path
    objective: PolicyObjective
    device_params: dict[str, Any] = field(default_factory=dict)
    robot_cpus: set[int] | None = None  # the device node's core (None: shared with the rest, one-core machine)
    other_cpus: set[int] | None = None
    robot: RobotCalibrator | None = None  # None: k fixed by --device-factor


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Return the command line of ``coinfer-experiment``."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0])
    p.add_argument('--policies', nargs='+', default=list(EXPERIMENT_POLICIES), metavar='POLICY',
                   help=f'policies to run (default: {" ".join(EXPERIMENT_POLICIES)}); any action label fixes one')
    p.add_argument('--step-s', type=float, default=10.0, help='seconds per scenario step (default 10)')
    p.add_argument('--scenario', choices=tuple(SCENARIOS), default='policies',
                   help='policies: link and CPU regimes (default); reliability: a link cut and a saturated edge; '
                        'soak: one long steady step')
    p.add_argument('--steps', type=int, default=None, help='run only the first N steps of the scenario')
    p.add_argument('--rate-hz', type=float, default=10.0, help='camera frame rate (default 10)')
    p.add_argument('--out', type=Path, default=None, help='runs folder (default results/experiment-<timestamp>)')
    p.add_argument('--report', type=Path, default=None,
                   help='write the report here when done (default: OUT/results.md; make experiment: docs/results.md)')
    p.add_argument('--shipped', choices=tuple(SHIPPED_FILES), default=DEFAULT_MODEL,
                   help=f'shipped model, profile and policy (default {DEFAULT_MODEL}; small: the 32 x 32 network)')
    p.add_argument('--device-param', action='append', default=[], metavar='NAME=VALUE',
                   help='extra device_node parameter (YAML value), e.g. publish_thread=true; repeatable')
    p.add_argument('--device-factor', type=float, default=None, metavar='K',
                   help="robot CPU: K times slower than its core here (default: calibrated in closed loop before "
                        "every run to the policy's Pi)")
    p.add_argument('--link-trace', type=Path, default=None, metavar='FILE',
                   help='append a step whose link rate replays this bandwidth trace (mahimahi or CSV, e.g. '
                        '../shared/traces/cellular/TMobile-LTE-short.up) every 0.5 s')
    p.add_argument('--trace-offset-s', type=float, default=0.0, help='with --link-trace: start this far into it')
    p.add_argument('--trace-rtt-ms', type=float, default=40.0, help='with --link-trace: the RTT (default 40 ms)')
    p.add_argument('--repeats', type=int, default=1, metavar='N',
                   help='run every policy N times, in N rounds over the policies (default 1; make experiment: 3)')
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error('--repeats must be >= 1')
    return args


class RobotCalibrator:
    """Finds the quota factor ``k`` at which the full network takes the policy's Pi time on the robot core.

    A thread of this process joins a fresh quota group on the robot core and times the full network
    once per camera period (40 calls, the median); :func:`calibrate_slowdown` closes the loop.
    """

    CALLS = 40

    def __init__(self, model_path: Path, profile: Profile, device_slowdown: float, rate_hz: float,
                 cpus: set[int] | None):
        """Load the model (torch on one thread, as the device node runs it) and set the target time."""
        import torch

        from coinfer_device.core.checkpoint import load_checkpoint
        from coinfer_device.core.slowdown import full_network_ms

        torch.set_num_threads(1)
        self.model = load_checkpoint(model_path).model
        self.target_ms = device_slowdown * full_network_ms(profile)
        self.period_s = min(1.0 / rate_hz, 0.1)
        self.cpus = cpus

    def measure_ms(self, k: float) -> float:
        """Return the full network's median per-frame time on the robot core under a quota of factor ``k``."""
        from coinfer_device.core.slowdown import per_frame_ms

        with CpuQuota(1.0) as quota:
            quota.set_slowdown(k)
            with thread_in(quota, self.cpus):
                return per_frame_ms(self.model, self.period_s, self.CALLS)

    def calibrate(self, start: float) -> Calibration:
        """Return the closed-loop calibration starting at factor ``start`` (one round when it still fits)."""
        return calibrate_slowdown(self.measure_ms, self.target_ms, start)

    def open_loop_start(self) -> float:
        """Return a first guess of ``k``: the target over the full network's time on the robot core, unthrottled."""
        from coinfer_device.core.slowdown import per_frame_ms

        with CpuQuota(None) as quota, thread_in(quota, self.cpus):
            return max(1.0, self.target_ms / per_frame_ms(self.model, self.period_s, self.CALLS // 4))


def build_graph(setting: Setting, run: PolicyRun, testbed: Testbed, env: dict[str, str], out: Path) -> Graph:
    """Return the node processes of one run, each to be started inside its side's namespace."""
    deadline = setting.objective.reward.deadline_ms
    model = {'model_path': str(setting.model), 'profile_path': str(setting.profile)}
    policy = {**run.node_params, 'profile_path': str(setting.profile), 'deadline_ms': deadline}
    if run.node_params.get('policy') == 'sacd':
        policy['policy_path'] = str(setting.policy_file)
    g = Graph(env, out / 'logs')
    robot = taskset_args(setting.robot_cpus)
    others = taskset_args(setting.other_cpus)
    edge_yaml, device_yaml = config_file('edge.yaml'), config_file('device.yaml')
    g.add('recorder', 'coinfer-record', name='recorder', params={'output': str(out / 'bag')})
    g.add('edge', 'edge_node', name='edge_node', params_files=[edge_yaml], params=model)
    g.add('edge_cpu_monitor', 'cpu_monitor', name='edge_cpu_monitor', params_files=[edge_yaml])
    g.add('policy', 'policy_node', name='policy_node', params_files=[config_file('policy.yaml')], params=policy)
    g.add('link_monitor', 'link_monitor', name='link_monitor', params_files=[config_file('link_monitor.yaml')])
    g.add('cpu_monitor', 'cpu_monitor', name='cpu_monitor', params_files=[device_yaml])
    g.add('device', 'device_node', name='device_node', params_files=[device_yaml],
          params={**model, 'compute_slowdown': 1.0, 'deadline_ms': deadline, **setting.device_params})
    g.add('camera', 'camera_node', name='camera_node', params_files=[config_file('camera.yaml')],
          params={'rate_hz': float(setting.rate_hz)})
    for label, proc in g.nodes.items():
        _inside(proc, testbed.exec_args('edge' if label in EDGE_SIDE else 'device') + (
            robot if label == 'device' else others))
    return g


def _inside(proc: NodeProcess, prefix: list[str]) -> None:
    # `ip netns exec` execs the node, so signals reach it directly.  The harness asks lifecycle nodes
    # for their state over DDS from this process, which is outside both namespaces: the ready line
    # (logged on activation) is the readiness signal here.
    proc.command = prefix + proc.command
    proc.lifecycle_node = None


def run_policy(setting: Setting, run: PolicyRun, repeat: int, domain: int, stop: threading.Event) -> dict[str, Any]:
    """Run the scenario once with ``run``'s policy (round ``repeat``); return what ``run.json`` records."""
    out = setting.out / f'r{repeat}' / run.name.replace('/', '_')  # an action label names the run of a fixed split
    out.mkdir(parents=True, exist_ok=True)
    if (out / 'bag').exists():
        raise SystemExit(f'{PROG}: error: {out / "bag"} exists; choose another --out or remove it')
    robot = None
    if setting.robot is not None:
        cal = setting.robot.calibrate(setting.device_factor)
        setting.device_factor = cal.slowdown
        robot = cal.as_dict()
        print(f'  robot CPU: {cal.describe()}', flush=True)
        if abs(cal.error) > 0.1:
            print(f'  note: the robot is {100 * cal.error:+.0f} % off its target; a network whose frames are shorter '
                  "than the kernel's scheduler tick (about 4 ms here) cannot be throttled precisely", flush=True)
    first = setting.steps[0]
    doc: dict[str, Any] = {'policy': run.name, 'label': run.label, 'repeat': repeat, 'node_params': run.node_params,
                           'steps': [asdict(s) for s in setting.steps], 'step_s': setting.step_s,
                           'rate_hz': setting.rate_hz, 'device_factor': setting.device_factor,
                           'robot_calibration': robot, 'robot_cpus': sorted(setting.robot_cpus or ()),
                           'model': str(setting.model), 'profile': str(setting.profile),
                           'policy_file': str(setting.policy_file), 'device_params': setting.device_params,
                           'bag': str(out / 'bag')}
    with Testbed(delay_ms=first.rtt_ms / 2, rate_mbps=first.mbps, handle_signals=False,
                 delay_line_cpus=setting.other_cpus) as bed, \
            RobotCpu() as robot_cpu, CpuQuota(None) as edge_quota:
        env = ros_env(domain, out / 'ros_log', ROS_AUTOMATIC_DISCOVERY_RANGE='SUBNET')
        graph = build_graph(setting, run, bed, env, out)
        try:
            graph.start(['recorder', *EDGE_SIDE], STARTUP_TIMEOUT_S, stop)
            graph.start(['link_monitor', 'cpu_monitor', 'device'], STARTUP_TIMEOUT_S, stop)
            robot_cpu.set_slowdown(setting.device_factor / (1.0 - first.device_load))
            robot_cpu.place(graph['device'].pid, INFERENCE_THREAD)
            edge_quota.add(graph['edge'].pid)
            graph.start(['camera'], STARTUP_TIMEOUT_S, stop)
            doc['t0_ns'] = time.time_ns()
            start = time.monotonic()
            rss = RssLog(graph)
            for i, step in enumerate(setting.steps):
                apply_step(step, bed, robot_cpu, edge_quota, setting.device_factor)
                print(f'  t={time.monotonic() - start:5.1f}s step {i + 1}/{len(setting.steps)}: {describe(step)}',
                      flush=True)
                begin, end = start + i * setting.step_s, start + (i + 1) * setting.step_s
                rate = step.rate_at(0.0)
                while time.monotonic() < end:
                    dead = [label for label, p in graph.nodes.items() if not p.alive()]
                    if dead:
                        raise RuntimeError(f'{dead[0]} stopped unexpectedly:\n{graph[dead[0]].tail(15)}')
                    rss.sample(time.monotonic() - start)
                    wanted = step.rate_at(time.monotonic() - begin)
                    if step.trace_mbps and step.link_up and wanted != rate:
                        rate = wanted
                        bed.set_rate('both', rate)
                    tick = min(0.5, step.trace_dt_s / 2) if step.trace_mbps else 0.5
                    if stop.wait(min(tick, max(end - time.monotonic(), 0.0))):
                        raise KeyboardInterrupt
            doc['ran_s'] = time.monotonic() - start
            doc['rss_mb'] = rss.samples
        finally:
            codes = stop_in_order(graph, robot_cpu.release)
            doc['exit_codes'] = codes
            doc['device_counts'] = frame_counts(graph['device'].output())
            try:
                doc['delay_line'] = bed.delay_line_stats()
            except TestbedError as exc:  # a dead delay line: say so in run.json, do not mask the run's own error
                doc['delay_line'] = f'unavailable: {exc}'
            clean_stale_shm()
            (out / RUN_JSON).write_text(json.dumps(doc, indent=1) + '\n')
    return doc


def stop_in_order(graph: Graph, release_robot: Callable[[], None]) -> dict[str, int | None]:
    """Stop the camera, then the device (it logs its frame counters), then the rest; return the exit statuses.

    ``release_robot`` lifts the robot's CPU quota once the camera has stopped: no frame is timed any
    more, and a node's shutdown at 1/k of a core could outlast the stop timeouts.  The rest waits
    :data:`DRAIN_S` so that the device's last results cross the link: the recorder then holds every
    result the device sent.
    """
    codes = stop_processes([graph['camera']], int_timeout=8.0, term_timeout=4.0)
    release_robot()
    codes.update(stop_processes([graph['device']], int_timeout=8.0, term_timeout=4.0))
    time.sleep(DRAIN_S)
    codes.update(stop_processes([p for label, p in graph.nodes.items() if label not in codes], 8.0, 4.0))
    return codes


def apply_step(step: Step, bed: Testbed, robot_cpu: RobotCpu, edge_quota: CpuQuota, device_factor: float) -> None:
    """Set the link (rate, delay, up or cut) and both hosts' CPU shares of ``step``."""
    if step.link_up:
        bed.link_up()
        bed.set_rate('both', step.rate_at(0.0))
    else:
        bed.link_down()
    bed.set_delay(step.rtt_ms / 2)
    robot_cpu.set_slowdown(device_factor / (1.0 - step.device_load))
    edge_quota.set_fraction(1.0 - step.edge_load if step.edge_load > 0 else None)


def describe(step: Step) -> str:
    """Return one line for the progress output."""
    rate = f'{step.mbps:.3g} Mbit/s on average (trace)' if step.trace_mbps else f'{step.mbps:g} Mbit/s'
    link = f'{rate}, RTT {step.rtt_ms:g} ms' if step.link_up else 'link cut'
    return f'{step.name}: {link}, robot CPU load {step.device_load:g}, edge CPU load {step.edge_load:g}'


class RssLog:
    """Resident memory of every node process, sampled every :data:`RSS_EVERY_S` (MB by label)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.samples: list[dict[str, float]] = []
        self._next = 0.0

    def sample(self, t_s: float) -> None:
        """Take a sample when one is due."""
        if t_s < self._next:
            return
        self._next = t_s + RSS_EVERY_S
        row = {'t_s': round(t_s, 2)}
        for label, proc in self.graph.nodes.items():
            try:
                row[label] = psutil.Process(proc.pid).memory_info().rss / 1e6
            except (psutil.NoSuchProcess, TypeError):
                pass
        self.samples.append(row)


def frame_counts(log: str) -> dict[str, Any] | None:
    """Return the device node's frame counters from its log (the line it writes when it stops taking frames)."""
    for line in reversed(log.splitlines()):
        if FRAME_COUNTS_MARKER in line:
            return json.loads(line.split(FRAME_COUNTS_MARKER, 1)[1])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``coinfer-experiment``."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        require_root(PROG)
    except PermissionError as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return 2
    files = shipped(args.shipped)
    model, profile, policy_file = files.checkpoint, files.profile, default_policy_path(args.shipped)
    scenario = SCENARIOS[args.scenario]
    steps = scenario[:args.steps] if args.steps else scenario
    if args.link_trace is not None:
        try:
            steps = (*steps, trace_step(args.link_trace, args.trace_offset_s, args.step_s, args.trace_rtt_ms))
        except (OSError, ValueError) as exc:
            print(f'{PROG}: error: --link-trace: {exc}', file=sys.stderr)
            return 2
    objective = PolicyObjective.read(policy_file)
    loaded_profile = Profile.load(profile)
    try:
        runs = policy_runs(args.policies, loaded_profile, objective.best_fixed)
    except CompareError as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return 2
    clean_leftovers()
    clean_leftover_cgroups()
    robot_cpus, other_cpus = split_cpus() or (None, None)
    robot = None
    if args.device_factor is None:
        robot = RobotCalibrator(model, loaded_profile, objective.device_slowdown, args.rate_hz, robot_cpus)
        factor = robot.open_loop_start()
    else:
        factor = args.device_factor
    out = args.out or Path('results') / f'experiment-{datetime.now():%Y%m%d-%H%M%S}'
    setting = Setting(out.resolve(), tuple(steps), args.step_s, args.rate_hz, factor, model, profile,
                      policy_file, objective, device_params(args.device_param), robot_cpus, other_cpus, robot)
    setting.out.mkdir(parents=True, exist_ok=True)
    where = (f'core {",".join(map(str, sorted(robot_cpus)))} for the device node, the rest on the others'
             if robot_cpus else 'one core shared by every process')
    how = (f'calibrated before every run to {robot.target_ms:.0f} ms for the full network' if robot
           else f'{factor:.2f}x slower (fixed)')
    print(f'{PROG}: {len(runs)} policies x {args.repeats} rounds x {len(steps)} steps of {args.step_s:g} s; robot CPU '
          f'{how}; {where}; runs in {setting.out}', flush=True)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    domain = choose_domain_id()
    status = 0
    try:
        for i, (repeat, run) in enumerate((r, run) for r in range(1, args.repeats + 1) for run in runs):
            print(f'\n=== {i + 1}/{len(runs) * args.repeats}: {run.label}, round {repeat} ===', flush=True)
            doc = run_policy(setting, run, repeat, domain, stop)
            bad = {k: v for k, v in doc['exit_codes'].items() if v not in (0, None)}
            if bad:
                print(f'note: exit statuses {bad} (logs in {Path(doc["bag"]).parent / "logs"})', flush=True)
                status = 1
    except (KeyboardInterrupt, StartInterrupted):
        print(f'{PROG}: interrupted; the testbed was cleaned up', flush=True)
        return 130
    except (NodeStartError, RuntimeError) as exc:
        print(f'{PROG}: error: {exc}\n(the testbed was cleaned up; node logs in {setting.out})', file=sys.stderr,
              flush=True)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    from coinfer_edge.demo.results import write_report
    report = write_report(setting.out, args.report or setting.out / 'results.md')
    print(f'\n{report.read_text()}\nwrote {report}', flush=True)
    return status


def device_params(pairs: Sequence[str]) -> dict[str, Any]:
    """Return ``NAME=VALUE`` pairs as parameters (values parsed as YAML: true, 3, 0.5, [1, 2])."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition('=')
        if not sep or not name:
            raise SystemExit(f'{PROG}: error: --device-param wants NAME=VALUE, got {pair!r}')
        out[name] = yaml.safe_load(value)
    return out


if __name__ == '__main__':
    sys.exit(main())
