# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""All-in-one demo: the whole coinfer graph on this machine, over real DDS, with a changing link.

``coinfer-demo`` starts the camera (Fashion-MNIST replay), device, CPU monitors, edge, link
monitor and policy nodes as separate processes -- the installed console scripts with the
same parameter files as the launch files (``config/*.yaml``) plus a few ``-p`` overrides --
and emulates a link whose bandwidth steps through a schedule (default 50 -> 12 -> 2 -> 25
Mbit/s) inside the device node, so no root is needed.  An rclpy monitor node in this
process records every result, ground-truth label, decision and link estimate, prints a
one-line live status, and at the end prints a table and writes plots, the per-frame
records and a JSON summary to the results folder.  Ctrl-C ends the run early (the nodes
are stopped with SIGINT, then SIGTERM, then SIGKILL) and still reports what ran.
See docs/demo.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import yaml

from coinfer_device.core.link_emulator import BandwidthSchedule
from coinfer_device.core.paths import DEFAULT_MODEL, SHIPPED_FILES, shipped
from coinfer_device.core.action import Action
from coinfer_device.core.slowdown import Calibration, calibrate
from coinfer_edge.core.decision import RewardConfig
from coinfer_edge.demo.compare import (DEFAULT_POLICIES, CompareError, PolicyRun, adaptation_times, format_comparison,
                                       live_metrics, policy_runs, worst_adaptation_s, write_comparison_plots)
from coinfer_edge.demo.report import (FrameRecord, jsonable, format_summary, frame_records, summarize, write_plots,
                                      write_records, write_summary)
from coinfer_edge.core.policy import PolicyObjective, default_policy_path
from coinfer_edge.demo.graph import DOMAIN_RANGE, STARTUP_PHASES, build_graph, choose_domain_id
from coinfer_edge.demo.harness import (NodeStartError, StartInterrupted, adopt_env, clean_stale_shm, config_file,
                                       ros_env)
from coinfer_edge.demo.monitor import Monitor, Snapshot

PROG = 'coinfer-demo'
DEFAULT_SCHEDULE_MBPS = (50.0, 12.0, 2.0, 25.0)  # raw input, a split, on-device, raw input (224 x 224 model)
DEFAULT_RTT_MS = 2.0
STATUS_WINDOW_S = 5.0
STARTUP_TIMEOUT_S = 120.0


class DemoError(RuntimeError):
    """The demo cannot run; the message is one line for the user."""


# --------------------------------------------------------------------------- settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog=PROG, description='Run the whole coinfer graph on this machine with a changing emulated link and '
        'report accuracy, latency and the policy decisions (docs/demo.md).')
    parser.add_argument('--duration', type=float, default=60.0, metavar='S',
                        help='seconds to run once the link schedule starts (default 60)')
    parser.add_argument('--out', type=Path, default=None,
                        help='results folder (default results/demo-<timestamp>)')
    parser.add_argument('--rate-hz', type=float, default=10.0, help='camera frame rate (default 10)')
    parser.add_argument('--policy', choices=('sacd', 'rule'), default='sacd',
                        help="'sacd' = the shipped SAC-d policy (default; 'rule' when it is missing), "
                        "'rule' = exhaustive search with the latency model")
    parser.add_argument('--no-plots', action='store_true', help='do not write PNG plots')
    parser.add_argument('--domain-id', type=int, default=None,
                        help=f'ROS_DOMAIN_ID of the graph (default: a random unused one in '
                        f'{DOMAIN_RANGE[0]}..{DOMAIN_RANGE[1] - 1})')
    parser.add_argument('--link-mbps', type=float, nargs='+', default=list(DEFAULT_SCHEDULE_MBPS), metavar='MBPS',
                        help='bandwidth steps of the emulated link (default: 50 12 2 25: raw input, a split and '
                        'on-device each win with the 224 x 224 model)')
    parser.add_argument('--step-s', type=float, default=None,
                        help='seconds per bandwidth step (default: duration / number of steps)')
    parser.add_argument('--rtt-ms', type=float, default=DEFAULT_RTT_MS,
                        help=f'round-trip time of the emulated link (default {DEFAULT_RTT_MS:g})')
    parser.add_argument('--compute-slowdown', type=float, default=None, metavar='K',
                        help='emulate a K times slower robot CPU in the device node (default: calibrated so that '
                        "the device compute equals the policy's latency model, i.e. latency.device_slowdown (6) "
                        "times the profile's timings; 1 = this machine as is)")
    parser.add_argument('--shipped', choices=tuple(SHIPPED_FILES), default=DEFAULT_MODEL,
                        help='which shipped model (with its profile and policy) runs unless --model, --profile, '
                        f'--policy-file say otherwise (default {DEFAULT_MODEL}: AlexNet at 224 x 224; small: the '
                        '32 x 32 network)')
    parser.add_argument('--model', type=Path, default=None,
                        help='checkpoint for device and edge (default: the shipped one)')
    parser.add_argument('--profile', type=Path, default=None,
                        help='machine profile for the policy (default: the shipped one)')
    parser.add_argument('--policy-file', type=Path, default=None,
                        help='trained SAC-d policy for --policy sacd (default: the shipped one)')
    parser.add_argument('--compare', nargs='*', default=None, metavar='POLICY',
                        help='run the same link schedule once per policy and compare them (default: '
                        f'{" ".join(DEFAULT_POLICIES)}; also rule or an action label such as e2/p5/b8); '
                        'each run takes --duration')
    parser.add_argument('--record', nargs='?', const='', default=None, metavar='BAG',
                        help='also record the run with coinfer-record into the rosbag2 bag BAG (default: OUT/bag; '
                        'docs/bags.md)')
    args = parser.parse_args(argv)
    if not args.duration > 0:
        parser.error('--duration must be > 0')
    if not 0.01 <= args.rate_hz <= 1000:
        parser.error('--rate-hz must be in 0.01..1000')
    if any(not v > 0 for v in args.link_mbps):
        parser.error('--link-mbps values must be > 0')
    if args.step_s is not None and not args.step_s > 0:
        parser.error('--step-s must be > 0')
    if args.rtt_ms < 0:
        parser.error('--rtt-ms must be >= 0')
    if args.compute_slowdown is not None and not 1.0 <= args.compute_slowdown <= 1000.0:
        parser.error('--compute-slowdown must be in 1..1000')
    if args.domain_id is not None and not 0 <= args.domain_id <= 232:
        parser.error('--domain-id must be in 0..232')
    return args


def shipped_assets(model: str = DEFAULT_MODEL) -> dict[str, Path]:
    """Return a shipped model's checkpoint, profile and policy paths (which may not exist)."""
    files = shipped(model)
    return {'model': files.checkpoint, 'profile': files.profile, 'policy': default_policy_path(model)}


def resolve_inputs(args: argparse.Namespace) -> tuple[str, list[str]]:
    """Check model, profile and policy; return the policy to run and notes for the user."""
    shipped = shipped_assets(args.shipped)
    model = args.model or shipped['model']
    if not model.is_file():
        raise DemoError(f'model checkpoint {model} is missing (train one with coinfer-train-model, or pass --model)')
    profile = args.profile or shipped['profile']
    if not profile.is_file():
        raise DemoError(f'machine profile {profile} is missing (measure one with coinfer-profile, or pass --profile)')
    notes = []
    policy = args.policy
    if policy == 'sacd' and args.policy_file is not None and not args.policy_file.is_file():
        raise DemoError(f'policy file {args.policy_file} is missing')
    if policy == 'sacd' and args.policy_file is None and not shipped['policy'].is_file():
        notes.append(f'note: the SAC-d policy {shipped["policy"]} is missing; using --policy rule '
                     '(train one with coinfer-train-policy)')
        policy = 'rule'
    # From here on every input is an explicit path, which the nodes get as parameters.
    args.model, args.profile = model, profile
    if policy == 'sacd' and args.policy_file is None:
        args.policy_file = shipped['policy']
    return policy, notes


def policy_device_slowdown(policy: str, policy_file: Path | None) -> float:
    """Return the robot CPU slowdown the policy assumes (``latency.device_slowdown``).

    SAC-d: the latency model it was trained with (its ``.json``); rule: ``config/policy.yaml``.
    """
    try:
        if policy == 'sacd':
            return PolicyObjective.read(policy_file).device_slowdown
        doc = yaml.safe_load(config_file('policy.yaml').read_text())
        return float(doc['/**/policy_node']['ros__parameters']['latency.device_slowdown'])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise DemoError(f'cannot read the device slowdown the {policy} policy assumes ({exc}); pass '
                        '--compute-slowdown') from exc


def calibrate_slowdown(device_slowdown: float, args: argparse.Namespace) -> Calibration:
    """Return the device's ``compute_slowdown`` at which its compute matches the policy's latency model.

    Times the full network here once per camera period (as the device node runs it) against
    the profile's time for it (:mod:`coinfer_device.core.slowdown`).
    """
    import torch

    from coinfer_device.core.checkpoint import load_checkpoint
    from coinfer_device.core.profile import Profile

    torch.set_num_threads(1)  # as the device node (torch_threads: 1)
    return calibrate(load_checkpoint(args.model).model, Profile.load(args.profile), device_slowdown,
                     min(1.0 / args.rate_hz, 0.1))


def default_out() -> Path:
    """Return ``results/demo-<timestamp>`` under the current folder."""
    return Path('results') / f'demo-{datetime.now().strftime("%Y%m%d-%H%M%S")}'


# --------------------------------------------------------------------------- live status


class StatusLine:
    """One status line: rewritten in place on a terminal, one line every few seconds otherwise."""

    def __init__(self, stream: Any = None, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, 'isatty', lambda: False)())
        self.every_s = 0.5 if self.tty else every_s
        self._shown = False

    def show(self, text: str) -> None:
        """Print ``text`` as the current status."""
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            self.stream.write('\r' + text[:width].ljust(width))
            self._shown = True
        else:
            self.stream.write(text + '\n')
        self.stream.flush()

    def done(self) -> None:
        """End the in-place line (terminal only)."""
        if self.tty and self._shown:
            self.stream.write('\n')
            self.stream.flush()
            self._shown = False


def status_text(monitor: Monitor, t0: float, now: float, schedule: BandwidthSchedule) -> str:
    """Return the live one-line status."""
    results, truth, decisions, _ = monitor.snapshot()
    judged = [(stamp, r) for _, stamp, r in results if stamp in truth]
    acc = sum(truth[s] == r.class_id for s, r in judged) / len(judged) if judged else None
    recent = sorted(r.total_ms for t, _, r in results if now - t <= STATUS_WINDOW_S)
    recent_hit = [r.deadline_met for t, _, r in results if now - t <= STATUS_WINDOW_S]
    p50 = recent[len(recent) // 2] if recent else None
    est = monitor.latest('bandwidth_mbps')
    rtt = monitor.latest('rtt_ms')
    load = monitor.latest('device_load')
    slowdown = monitor.latest('device_slowdown')
    parts = [f't={now - t0:5.1f}s', f'frames {len(results):4d}',
             f'acc {acc:.3f}' if acc is not None else 'acc   -  ',
             f'p50 {p50:6.1f} ms' if p50 is not None else 'p50     -    ',
             f'hit {100.0 * sum(recent_hit) / len(recent_hit):3.0f}%' if recent_hit else 'hit   -',
             f'link {schedule.mbps_at(now - t0):g} Mbit/s (est {_short(est)}' if est is not None
             else f'link {schedule.mbps_at(now - t0):g} Mbit/s (est -',
             (f'rtt {rtt:.1f} ms)' if rtt is not None else 'rtt -)'),
             (f'cpu {load:.2f}' if load is not None else 'cpu -')
             + (f' slowdown {slowdown:.1f}x' if slowdown is not None else ''),
             f'decision {decisions[-1][1]}' if decisions else 'decision - (device fallback)']
    return ' | '.join(parts[:2] + [' '.join(parts[2:5]), ' '.join(parts[5:7]), parts[7], parts[8]])


def _short(value: float) -> str:
    return f'{value:.2g}' if value < 10 else f'{value:.0f}'


# --------------------------------------------------------------------------- main


@dataclass
class Setting:
    """What every run of one ``coinfer-demo`` invocation shares: graph environment, link, CPU emulation, objective."""

    policy: str
    out: Path
    domain: int
    env: dict[str, str]
    assumed_slowdown: float
    calibration: Calibration | None
    slowdown: float
    schedule: BandwidthSchedule
    reward: RewardConfig
    best_fixed: Action | None


@dataclass
class Outcome:
    """One run of the graph: its exit status and what the monitor saw (times relative to the link's start)."""

    status: int
    records: list[FrameRecord]
    decisions: list[tuple[float, str]]
    duration_s: float
    interrupted: bool


def prepare(args: argparse.Namespace) -> Setting:
    """Check the inputs, choose the domain, calibrate the robot CPU emulation and read the policy's objective."""
    policy, notes = resolve_inputs(args)
    for note in notes:
        print(note, flush=True)
    out = (args.out or default_out()).resolve()
    out.mkdir(parents=True, exist_ok=True)
    domain = args.domain_id if args.domain_id is not None else choose_domain_id()
    env = ros_env(domain, out / 'ros_log')
    adopt_env(env)
    assumed = policy_device_slowdown(policy, args.policy_file)
    calibration = None if args.compute_slowdown is not None else calibrate_slowdown(assumed, args)
    slowdown = args.compute_slowdown if calibration is None else round(calibration.compute_slowdown, 2)
    step_s = args.step_s or args.duration / len(args.link_mbps)
    reward, best_fixed = policy_objective(policy, args.policy_file)
    return Setting(policy, out, domain, env, assumed, calibration, slowdown,
                   BandwidthSchedule(tuple(args.link_mbps), step_s, loop=True), reward, best_fixed)


def policy_objective(policy: str, policy_file: Path | None) -> tuple[RewardConfig, Action | None]:
    """Return the reward the SAC-d policy was trained for and its best fixed action (defaults for the rule)."""
    if policy != 'sacd':
        return RewardConfig(), None
    objective = PolicyObjective.read(policy_file)
    return objective.reward, objective.best_fixed


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    """Run the demo (or, with ``--compare``, one run per policy and the comparison); return the exit status."""
    setting = prepare(args)
    if args.compare is None:
        outcome = run_policy(args, setting, {'policy': setting.policy}, setting.out, stop)
        return outcome.status
    return run_comparison(args, setting, stop)


def run_comparison(args: argparse.Namespace, setting: Setting, stop: threading.Event) -> int:
    """Run the graph once per policy of ``--compare`` with the same schedule; print and write the comparison."""
    from coinfer_device.core.profile import Profile

    profile = Profile.load(args.profile)
    names = args.compare or list(DEFAULT_POLICIES if setting.policy == 'sacd' else
                                 [n for n in DEFAULT_POLICIES if n not in ('sacd', 'best-fixed')] + ['rule'])
    try:
        runs = policy_runs(names, profile, setting.best_fixed)
    except CompareError as exc:
        raise DemoError(str(exc)) from exc
    done: list[tuple[PolicyRun, Outcome]] = []
    for i, policy_run in enumerate(runs):
        print(f'\n=== {i + 1}/{len(runs)}: {policy_run.label} ===', flush=True)
        outcome = run_policy(args, setting, policy_run.node_params, setting.out / policy_run.name, stop,
                             plots=False)
        done.append((policy_run, outcome))
        if outcome.interrupted:
            break
    rows = []
    for policy_run, outcome in done:
        m = live_metrics(outcome.records, setting.reward, profile.accuracy_of)
        adaptation = adaptation_times(outcome.decisions, setting.schedule, outcome.duration_s)
        m['adaptation'] = adaptation
        m['adaptation_s'] = worst_adaptation_s(adaptation) if policy_run.adaptive else None
        rows.append((policy_run, m))
    text = format_comparison(rows)
    print(f'\ncoinfer demo comparison: {len(done)} policies, the same {args.duration:g} s link schedule '
          f'({" -> ".join(f"{v:g}" for v in setting.schedule.mbps)} Mbit/s), deadline {setting.reward.deadline_ms:g} ms'
          f'\n\n{text}', flush=True)
    for policy_run, m in rows:
        if policy_run.adaptive:
            steps = ', '.join(f"{r['from_mbps']:g}->{r['to_mbps']:g} Mbit/s: "
                              + ('same choice' if not r['changed'] else f"{r['before']} -> {r['after']} in "
                                 f"{r['seconds']:.1f} s") for r in m['adaptation'])
            print(f'{policy_run.label} after each bandwidth step: {steps}', flush=True)
    (setting.out / 'comparison.md').write_text(text + '\n')
    doc = {'schedule_mbps': list(setting.schedule.mbps), 'step_s': setting.schedule.step_s,
           'duration_s': args.duration, 'reward': setting.reward.to_dict(), 'compute_slowdown': setting.slowdown,
           'policies': [{'name': r.name, 'label': r.label, 'node_params': r.node_params, **m} for r, m in rows]}
    (setting.out / 'comparison.json').write_text(json.dumps(jsonable(doc), indent=1) + '\n')
    written = ['comparison.md', 'comparison.json']
    if not args.no_plots and done:
        written += [p.name for p in write_comparison_plots(
            setting.out, [(r, o.records, o.decisions) for r, o in done], setting.schedule, args.duration,
            setting.reward.deadline_ms)]
    print(f'\nwrote {", ".join(written)} to {setting.out} (each run in its own folder)', flush=True)
    return 0 if all(o.status == 0 for _, o in done) else 1


def run_policy(args: argparse.Namespace, setting: Setting, policy_params: dict[str, Any], out: Path,
               stop: threading.Event, plots: bool = True) -> Outcome:
    """Run the graph once with the policy node's ``policy_params``; report into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    log_dir = out / 'logs'
    log_dir.mkdir(exist_ok=True)
    schedule, slowdown, calibration = setting.schedule, setting.slowdown, setting.calibration
    policy = policy_params['policy']
    config = {'duration_s': args.duration, 'rate_hz': args.rate_hz, 'policy': policy, 'domain_id': setting.domain,
              'policy_params': policy_params, 'link_mbps': list(schedule.mbps), 'step_s': schedule.step_s,
              'rtt_ms': args.rtt_ms, 'compute_slowdown': slowdown, 'policy_device_slowdown': setting.assumed_slowdown,
              'deadline_ms': setting.reward.deadline_ms,
              'calibration': None if calibration is None else {'per_frame_ms': calibration.measured_ms,
                                                               'profiled_ms': calibration.profiled_ms},
              'model': str(args.model or 'shipped'), 'profile': str(args.profile or 'shipped'),
              'policy_file': str(args.policy_file or 'shipped') if policy == 'sacd' else None,
              'out': str(out)}
    print(f'{PROG}: ROS_DOMAIN_ID={setting.domain}, policy {policy}, {args.rate_hz:g} Hz Fashion-MNIST replay, '
          f'emulated link {" -> ".join(f"{v:g}" for v in schedule.mbps)} Mbit/s every {schedule.step_s:g} s (RTT '
          f'{args.rtt_ms:g} ms), device CPU emulated {slowdown:g}x slower, deadline {setting.reward.deadline_ms:g} '
          f'ms, {args.duration:g} s; node logs in {log_dir}', flush=True)
    if calibration is not None:
        print(f'device CPU: the policy assumes {setting.assumed_slowdown:g}x the profile\'s compute; one full '
              f'inference per frame takes {calibration.measured_ms:.2f} ms here against {calibration.profiled_ms:.2f} '
              f'ms profiled, so the device emulates {slowdown:g}x (--compute-slowdown to choose)', flush=True)

    clean_stale_shm()
    graph = build_graph(args, policy_params, schedule, setting.env, log_dir, slowdown, setting.reward.deadline_ms)
    phases = STARTUP_PHASES
    if args.record is not None:  # started first, so that it sees every message of the run
        bag = Path(args.record).resolve() if args.record else out / 'bag'
        if args.compare is not None and args.record:
            bag = bag.with_name(f'{bag.name}-{out.name}')
        config['bag'] = str(bag)
        graph.add('recorder', 'coinfer-record', name='recorder', params={'output': config['bag']})
        phases = (('recorder',),) + phases
    monitor = None
    status = StatusLine()
    t0 = end = None
    interrupted = False
    ready: dict[str, float] = {}
    try:
        monitor = Monitor()
        for phase in phases:
            print(f'starting {", ".join(graph[k].label for k in phase)} ...', flush=True)
            ready.update(graph.start(phase, STARTUP_TIMEOUT_S, stop))
        t0 = ready['device']  # the emulated link's schedule starts when the device node is ready
        print(f'all {len(ready)} nodes ready; running for {args.duration:g} s, Ctrl-C to stop early', flush=True)
        while True:
            now = time.monotonic()
            if now - t0 >= args.duration:
                break
            dead = [label for label, p in graph.nodes.items() if not p.alive()]
            if dead:
                status.done()
                raise DemoError(f'{", ".join(dead)} stopped unexpectedly; log tail of {dead[0]}:\n'
                                f'{graph[dead[0]].tail(15)}')
            status.show(status_text(monitor, t0, now, schedule))
            if stop.wait(min(status.every_s, max(t0 + args.duration - now, 0.01))):
                interrupted = True
                break
        end = time.monotonic()
    except (KeyboardInterrupt, StartInterrupted):
        interrupted, end = True, time.monotonic()
    except NodeStartError as exc:
        raise DemoError(f'a node did not start: {exc}') from exc
    finally:
        status.done()
        if interrupted:
            print('interrupted: stopping the nodes', flush=True)
        codes = graph.stop(int_timeout=8.0, term_timeout=4.0)
        if monitor is not None:
            snap = monitor.snapshot()
            monitor.close()
        clean_stale_shm()
    if args.record is not None and codes.get('recorder') == 0:
        print(f'recorded the run to {config["bag"]} (coinfer-bag-extract {config["bag"]})', flush=True)
    bad = {k: v for k, v in codes.items() if v not in (0, None)}
    if bad:
        print(f'note: node exit statuses {bad} (logs in {log_dir})', flush=True)
    if t0 is None:
        print(f'{PROG}: stopped before the nodes were ready; nothing to report', flush=True)
        return Outcome(0 if interrupted else 1, [], [], 0.0, interrupted)
    duration = min(end - t0, args.duration) if not interrupted else end - t0
    status, records, decisions = report(out, config, snap, t0, duration, schedule,
                                        plots=plots and not args.no_plots)
    return Outcome(status, records, decisions, duration, interrupted)


def report(out: Path, config: dict[str, Any], snap: Snapshot, t0: float, duration: float, schedule: BandwidthSchedule,
           plots: bool) -> tuple[int, list[FrameRecord], list[tuple[float, str]]]:
    """Print the final table and write the records, summary and plots; return the exit status, records, decisions."""
    results, truth, decisions, series = snap
    results = [item for item in results if item[0] - t0 <= duration]
    records = frame_records(results, truth, t0, schedule, series['bandwidth_mbps'])
    decisions_rel = [(t - t0, label) for t, label in decisions if t - t0 <= duration]
    summary = summarize(records, decisions_rel, schedule, duration,
                        [(t - t0, v) for t, v in series['device_load']])
    config = dict(config, ran_s=duration)
    print(f'\ncoinfer demo: {duration:.1f} s, policy {config["policy"]}\n', flush=True)
    print(format_summary(summary), flush=True)
    written = [write_records(out, records)]
    timelines = {'decisions': decisions_rel}
    timelines.update({k: [(t - t0, v) for t, v in items] for k, items in series.items()})
    written.append(write_summary(out, summary, config, timelines))
    if plots:
        written += write_plots(out, records, decisions_rel, timelines['bandwidth_mbps'], schedule, duration)
    print(f'\nwrote {", ".join(p.name for p in written)} to {out}', flush=True)
    if not records:
        print(f'{PROG}: error: no results were received (see the node logs in {out / "logs"})', file=sys.stderr,
              flush=True)
        return 1, records, decisions_rel
    return 0, records, decisions_rel


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``coinfer-demo``."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(args, stop)
    except DemoError as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr, flush=True)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == '__main__':
    sys.exit(main())
