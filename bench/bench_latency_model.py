# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Does the latency model predict the running graph?  Fixed actions over the emulated link, predicted vs measured.

Runs the real ``edge_node`` and ``device_node`` (``config/*.yaml``, the device's emulated link at a
constant ``--mbps`` and ``--rtt-ms``, its CPU emulated ``--compute-slowdown`` times slower, no
link probes) and publishes camera frames at ``--rate-hz`` (28 x 28 mono8, as the Fashion-MNIST
camera) and one fixed ``coinfer/decision`` per block of frames.  Each action runs two blocks:

1. **calibration** (first block of every action): the per-frame framework terms of the latency
   model are measured here, on the running graph: ``device_overhead_ms`` = the median over the
   local actions' frames of measured latency minus the model's device compute, and
   ``remote_overhead_ms`` = the median over the remote actions' frames of what is left after the
   model's device compute, device overhead, payload / bandwidth, RTT and edge compute;
2. **check** (second block): the latency model of :mod:`coinfer_edge.core.decision` with the
   profile's per-frame timings, ``device_slowdown = --compute-slowdown`` and the two measured terms
   predicts each action; the table shows predicted and measured median and p95, their ratio, and
   where the time goes (the records' device, transfer, edge and framework parts).

Target: predicted median within +-15 % of measured for every action.  ``--write-profile FILE``
writes the profile with the two measured terms in ``settings.latency`` (``coinfer-train-policy``
and the rule apply them).

Usage: ``python bench/bench_latency_model.py [--model CKPT --profile JSON] [--quick]`` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Int32MultiArray

from coinfer_device.core import records as rec
from coinfer_device.core.action import Action
from coinfer_device.core.checkpoint import default_checkpoint
from coinfer_device.core.paths import profile_for
from coinfer_device.core.profile import Profile
from coinfer_device.ros import messages as m
from coinfer_device.ros.background import BackgroundNode
from coinfer_edge.core.decision import LatencyModel, LatencySettings, SystemState
from coinfer_edge.demo.graph import choose_domain_id
from coinfer_edge.demo.harness import Graph, adopt_env, clean_stale_shm, config_file, ros_env

IMAGE_SIDE = 28
SETTLE_S = 0.5
ANSWER_WAIT_S = 3.0
TOLERANCE = 0.15


def default_actions(profile: Profile) -> list[Action]:
    """Every local exit and, for the final exit, the raw input and a few partitions at 8 bits (+ one float32)."""
    last = len(profile.branch_points) - 1
    bp = profile.branch_points
    local = [Action(e, bp[e], 0) for e in range(len(bp))]
    remote = [Action(last, p, 8) for p in sorted({0, bp[0], bp[1], bp[-1] - 2})]
    return local + remote + [Action(last, bp[-1] - 2, 32)]


class FrameSource:
    """The bench's node: publishes frames and fixed decisions, records the device's results by header stamp."""

    def __init__(self) -> None:
        self._background = BackgroundNode('latency_model_bench')
        node = self._background.node
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.image_pub = node.create_publisher(Image, 'image_raw', QoSProfile(depth=5))
        self.decision_pub = node.create_publisher(Int32MultiArray, 'coinfer/decision', latched)
        self.results: dict[int, rec.Result] = {}
        self._lock = threading.Lock()
        node.create_subscription(JointState, 'coinfer/result', self._on_result,
                                 QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))
        pixels = np.random.default_rng(0).integers(0, 256, IMAGE_SIDE * IMAGE_SIDE, dtype=np.uint8).tobytes()
        self.image = Image(height=IMAGE_SIDE, width=IMAGE_SIDE, encoding='mono8', step=IMAGE_SIDE, data=pixels)
        self._last = 0

    def _on_result(self, msg: JointState) -> None:
        try:
            result = m.read_result(msg)
        except rec.MessageError:
            return
        with self._lock:
            self.results[m.stamp_ns(msg.header)] = result

    def wait_matched(self, timeout: float) -> bool:
        """Wait until the device subscribes to the frames and publishes results."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.image_pub.get_subscription_count() and self._background.node.count_publishers('coinfer/result'):
                return True
            time.sleep(0.05)
        return False

    def run_block(self, action: Action, frames: int, period_s: float) -> list[rec.Result]:
        """Decide ``action``, publish ``frames`` frames one per period; return the results that ran it as decided."""
        self.decision_pub.publish(m.make_decision_msg(action))
        time.sleep(SETTLE_S)
        stamps = []
        start = time.monotonic()
        for i in range(frames):
            time.sleep(max(0.0, start + i * period_s - time.monotonic()))
            stamp = max(time.time_ns(), self._last + 1)
            self._last = stamp
            self.image.header.stamp.sec, self.image.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            self.image_pub.publish(self.image)
            stamps.append(stamp)
        end = time.monotonic() + ANSWER_WAIT_S
        while time.monotonic() < end and stamps[-1] not in self.results:
            time.sleep(0.01)
        with self._lock:
            got = [self.results.get(s) for s in stamps]
        return [r for r in got if r is not None and r.action == action and r.fallback == rec.FALLBACK_NONE]

    def close(self) -> None:
        """Stop the node."""
        self._background.close()


@dataclass
class ActionRun:
    """One action's results: calibration block and check block."""

    action: Action
    calibration: list[rec.Result] = field(default_factory=list)
    check: list[rec.Result] = field(default_factory=list)


def fit_overheads(runs: list[ActionRun], model: LatencyModel, state: SystemState) -> tuple[float, float]:
    """Return ``(device_overhead_ms, remote_overhead_ms)`` measured on the calibration blocks (module docstring)."""
    base = model.table(state)
    local, remote = [], []
    for run in runs:
        predicted = float(base[model.index[run.action]])
        for r in run.calibration:
            (local if model.local[model.index[run.action]] else remote).append((r.total_ms, predicted))
    device = statistics.median(t - p for t, p in local) if local else 0.0
    remote_extra = statistics.median(t - p - device for t, p in remote) if remote else 0.0
    return max(device, 0.0), max(remote_extra, 0.0)


def median(values: list[float]) -> float:
    """Return the middle value (NaN when there is none)."""
    return statistics.median(values) if values else math.nan


def report(runs: list[ActionRun], model: LatencyModel, state: SystemState, profile: Profile) -> list[float]:
    """Print the predicted-vs-measured table; return the ratios predicted / measured median."""
    predicted = model.table(state)
    print('| action | payload B | frames | predicted ms | measured p50 | measured p95 | predicted / p50 | '
          'device p50 | transfer p50 | edge p50 | framework p50 |')
    print('|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
    ratios = []
    for run in runs:
        rs = run.check
        p = float(predicted[model.index[run.action]])
        total = [r.total_ms for r in rs]
        ratio = p / median(total) if total else math.nan
        ratios.append(ratio)
        parts = [median([getattr(r, k) for r in rs]) for k in ('device_ms', 'transfer_ms', 'edge_ms')]
        framework = median([r.total_ms - r.device_ms - r.transfer_ms - r.edge_ms for r in rs])
        print(f'| {run.action.label()} | {profile.payload(run.action)} | {len(rs)} | {p:.2f} | {median(total):.2f} | '
              f'{np.percentile(total, 95) if total else math.nan:.2f} | {ratio:.3f} | '
              + ' | '.join(f'{v:.2f}' for v in parts) + f' | {framework:.2f} |')
    return ratios


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', type=Path, default=None, help='checkpoint (default: the shipped one)')
    p.add_argument('--profile', type=Path, default=None, help='profile of that checkpoint (default: the shipped one)')
    p.add_argument('--actions', nargs='+', default=None, help='action labels (default: every local exit and a few '
                   'final-exit partitions)')
    p.add_argument('--mbps', type=float, default=50.0, help='emulated link bandwidth (default 50)')
    p.add_argument('--rtt-ms', type=float, default=5.0, help='emulated link RTT (default 5)')
    p.add_argument('--compute-slowdown', type=float, default=1.0,
                   help='device CPU emulated this many times slower; the latency model uses it as device_slowdown')
    p.add_argument('--rate-hz', type=float, default=10.0, help='frame rate (default 10)')
    p.add_argument('--frames', type=int, default=40, help='frames per block (two blocks per action)')
    p.add_argument('--quick', action='store_true', help='15 frames per block')
    p.add_argument('--write-profile', type=Path, default=None,
                   help='write the profile with the measured overheads in settings.latency to this file')
    p.add_argument('--domain-id', type=int, default=None)
    args = p.parse_args()
    if args.quick:
        args.frames = 15
    return args


def main() -> int:
    """Run the benchmark."""
    args = parse_args()
    profile = Profile.load(args.profile or profile_for(args.model))
    by_label = {a.label(): a for a in profile.actions()}
    try:
        actions = [by_label[label] for label in args.actions] if args.actions else default_actions(profile)
    except KeyError as exc:
        raise SystemExit(f'unknown action {exc} for this profile') from None
    log_dir = Path(tempfile.mkdtemp(prefix='coinfer-bench-latency-model-'))
    domain = args.domain_id if args.domain_id is not None else choose_domain_id()
    env = ros_env(domain, log_dir / 'ros')
    adopt_env(env)
    model_path = str(args.model or default_checkpoint())
    files = {'model_path': model_path, 'profile_path': str(args.profile or profile_for(model_path))}
    graph = Graph(env, log_dir)
    graph.add('edge', 'edge_node', params_files=[config_file('edge.yaml')], params=files)
    graph.add('device', 'device_node', params_files=[config_file('device.yaml')], params={
        **files, 'decision_timeout_s': 3600.0, 'probe_interval_s': 0.0, 'edge_timeout_ms': 5000.0,
        'emulated_link.enabled': True, 'emulated_link.bandwidth_schedule_mbps': [float(args.mbps)],
        'emulated_link.rtt_ms': float(args.rtt_ms), 'compute_slowdown': float(args.compute_slowdown)})
    started = datetime.now().strftime('%Y-%m-%d %H:%M')
    load_before = os.getloadavg()
    source = None
    runs = [ActionRun(a) for a in actions]
    period = 1.0 / args.rate_hz
    try:
        clean_stale_shm()
        graph.start(timeout=120.0)
        source = FrameSource()
        if not source.wait_matched(30.0):
            raise SystemExit('the device did not match the bench node in 30 s')
        source.run_block(actions[-1], 10, period)  # warm-up: discovery of the answer path, first allocations
        for phase in ('calibration', 'check'):
            for run in runs:
                getattr(run, phase).extend(source.run_block(run.action, args.frames, period))
                print(f'{phase} {run.action.label()}: {len(getattr(run, phase))}/{args.frames} frames', flush=True)
    finally:
        if source is not None:
            source.close()
        graph.stop()
        clean_stale_shm()
    state = SystemState(args.mbps, args.rtt_ms, 1.0, 1.0)
    bare = LatencyModel(profile, LatencySettings(device_slowdown=args.compute_slowdown))
    device_oh, remote_oh = fit_overheads(runs, bare, state)
    model = LatencyModel(profile, LatencySettings(device_slowdown=args.compute_slowdown,
                                                  device_overhead_ms=device_oh, remote_overhead_ms=remote_oh))
    print(f'\nlatency model vs the running graph, {started}, {os.cpu_count()} CPUs, load average '
          f'{load_before[0]:.2f} -> {os.getloadavg()[0]:.2f}; model {model_path}, profile {args.profile or "shipped"} '
          f'({profile.timing_basis} timings); link {args.mbps:g} Mbit/s, RTT {args.rtt_ms:g} ms; device CPU x'
          f'{args.compute_slowdown:g}; {args.rate_hz:g} Hz; {args.frames} frames per block')
    print(f'measured on the calibration blocks: device_overhead_ms {device_oh:.2f}, remote_overhead_ms '
          f'{remote_oh:.2f}\n')
    ratios = report(runs, model, state, profile)
    worst = max(abs(r - 1.0) for r in ratios if not math.isnan(r))
    print(f'\nworst |predicted / measured p50 - 1| = {100 * worst:.1f} % (target <= {100 * TOLERANCE:.0f} %): '
          f'{"met" if worst <= TOLERANCE else "NOT met"}')
    if args.write_profile:
        out = copy.deepcopy(profile)
        out.settings = dict(out.settings)
        out.settings['latency'] = {'device_overhead_ms': round(device_oh, 3), 'remote_overhead_ms': round(remote_oh, 3)}
        out.settings['overheads_measured_by'] = ('python bench/bench_latency_model.py ' + ' '.join(sys.argv[1:])
                                                 + f' ({started})')
        out.save(args.write_profile)
        print(f'wrote {args.write_profile} with settings.latency {out.settings["latency"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
