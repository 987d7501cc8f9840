# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""What a frame pays the framework: the real device and edge nodes against a minimal rclpy chain, same run.

The **real** side runs the console scripts ``device_node`` and ``edge_node`` as processes with
``config/device.yaml`` and ``config/edge.yaml`` (probes off, decisions never stale).  This
process publishes ``image_raw`` frames (28x28 mono8, as the Fashion-MNIST replay) at
``--rate-hz``, a fixed ``coinfer/decision`` (transient local) and records ``coinfer/result``.
Per frame the device's own record gives the **framework cost**: ``total_ms`` (the device's
clock, from receiving the image to receiving the edge's answer, or to the local result) minus
``device_compute_ms`` and ``edge_compute_ms`` (model compute).  It is everything the frame
paid besides the model: image conversion, thread hand-offs, encoding, both DDS hops,
decoding, executor wake-ups.

The **minimal** side is a two-process rclpy chain in namespace ``/mini`` with the same message
types, QoS and payload sizes: the mini device receives the same Image, publishes a prepared
``CompressedImage`` of the action's payload size, the mini edge answers with a prepared
``JointState`` as long as the edge's record, and the mini device times receipt-of-image ->
answer-back on its own clock (the two points ``total_ms`` spans) and reports it on
``/mini/coinfer/result``.  For the local action nothing crosses a process boundary (the
minimal chain's figure is an empty callback's), so it gets no ratio.

Blocks of ``--frames`` frames alternate real / minimal per action (the order flips every
round), so machine load hits both alike.  Per action it prints median and p90 of both and
the ratio of the medians; the overall figure is the median of the remote actions' ratios.
``--publication-mode async`` runs every process with ``RMW_FASTRTPS_PUBLICATION_MODE=ASYNCHRONOUS``.

Usage: ``python bench/bench_overhead.py [--quick] [--rounds N] [--frames N] [--publication-mode async]``
(about 2 minutes with the defaults, 40 s with ``--quick``).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import yaml
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Header, Int32MultiArray, UInt32

from coinfer_device.core import records as rec
from coinfer_device.core.codec import FORMAT
from coinfer_device.core.action import Action
from coinfer_device.core.profile import Profile
from coinfer_device.ros import messages as m
from coinfer_device.ros.background import BackgroundNode
from coinfer_device.ros.conventions import READY_MARKER
from coinfer_edge.demo.graph import choose_domain_id
from coinfer_edge.demo.harness import Graph, NodeProcess, adopt_env, clean_stale_shm, config_file, ros_env

# Remote actions from ~1 kB to ~64 kB (payload sizes: the shipped profile's codec table) and one local action.
REMOTE_ACTIONS = (Action(2, 0, 8), Action(2, 2, 8), Action(2, 1, 8), Action(2, 1, 16))
LOCAL_ACTION = Action(2, 10, 0)
IMAGE_SIDE = 28
MINI_NS = '/mini'
PAYLOAD_TOPIC = 'bench/payload_bytes'
# The real device: decisions never go stale, no link probes between frames, a slow answer is not an edge failure.
DEVICE_PARAMS = {'decision_timeout_s': 3600.0, 'probe_interval_s': 0.0, 'edge_timeout_ms': 5000.0}
SETTLE_S = 0.3      # after changing the action, before a block's first frame
ANSWER_WAIT_S = 2.0  # after a block's last frame, for its result
PUBLICATION_MODES = {'default': None, 'sync': 'SYNCHRONOUS', 'async': 'ASYNCHRONOUS'}


def node_qos(config: str, node: str, name: str) -> QoSProfile:
    """Return the QoS ``qos.<name>.*`` of ``node`` in ``config/<config>``, the profile the real node uses."""
    params = yaml.safe_load(config_file(config).read_text())[f'/**/{node}']['ros__parameters']
    return QoSProfile(depth=params[f'qos.{name}.depth'],
                      reliability=ReliabilityPolicy[params[f'qos.{name}.reliability'].upper()],
                      durability=DurabilityPolicy[params[f'qos.{name}.durability'].upper()])


def topic_qos() -> dict[str, QoSProfile]:
    """Return the QoS of every topic: the real nodes' (params files) and the bench's own."""
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    qos = {name: node_qos('device.yaml', 'device_node', name)
           for name in ('image', 'features', 'edge_result', 'result', 'decision')}
    qos.update(camera=node_qos('camera.yaml', 'camera_node', 'image'), payload=latched,
               record=QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))
    return qos


def blank(record_type: type) -> Any:
    """Return a record dataclass with every field zero (the minimal chain's messages carry no meaning)."""
    return record_type(**{f.name: 0 for f in fields(record_type) if f.name != 'class_name'})


# --------------------------------------------------------------------------- minimal chain processes


class MiniDevice:
    """Receive an image, publish a prepared feature message, time the answer (see module docstring)."""

    def __init__(self, node: Node) -> None:
        qos = topic_qos()
        self.payload_bytes = 0
        self.messages: dict[int, Any] = {}
        self.pending: dict[int, int] = {}
        self.features_pub = node.create_publisher(CompressedImage, 'coinfer/features', qos['features'])
        self.result_pub = node.create_publisher(JointState, 'coinfer/result', qos['result'])
        node.create_subscription(Image, 'image_raw', self.on_image, qos['image'])
        node.create_subscription(JointState, 'coinfer/edge_result', self.on_answer, qos['edge_result'])
        node.create_subscription(UInt32, PAYLOAD_TOPIC, self.on_payload, qos['payload'])

    def on_payload(self, msg: Any) -> None:
        """Prepare the feature message of the new payload size (0 = a local action)."""
        n = int(msg.data)
        if n and n not in self.messages:
            self.messages[n] = m.make_features_msg(bytes(n), Header(), FORMAT)
        self.payload_bytes = n

    def on_image(self, msg: Any) -> None:
        """Send the prepared features for this frame (or report at once for a local action)."""
        received = time.monotonic_ns()
        if not self.payload_bytes:
            self.report(msg.header, received)
            return
        features = self.messages[self.payload_bytes]
        features.header = msg.header
        self.pending[m.stamp_ns(msg.header)] = received
        self.features_pub.publish(features)

    def on_answer(self, msg: Any) -> None:
        """Report the frame's time from image receipt to this answer."""
        received = self.pending.pop(m.stamp_ns(msg.header), None)
        if received is not None:
            self.report(msg.header, received)

    def report(self, header: Any, received_ns: int) -> None:
        """Publish the measured time as a result record."""
        total_ms = (time.monotonic_ns() - received_ns) / 1e6
        result = blank(rec.Result)
        result.total_ms, result.payload_bytes = total_ms, self.payload_bytes
        self.result_pub.publish(m.make_result_msg(result, header))


def run_mini(role: str) -> int:
    """Run the mini device or the mini edge until SIGINT."""
    try:
        rclpy.init()
        node = Node(f'mini_{role}', namespace=MINI_NS)
        if role == 'device':
            MiniDevice(node)
        else:
            qos = topic_qos()
            answer = m.make_edge_result_msg(blank(rec.EdgeResult), Header())
            pub = node.create_publisher(JointState, 'coinfer/edge_result', qos['edge_result'])

            def on_features(msg: Any) -> None:
                answer.header = msg.header
                pub.publish(answer)
            node.create_subscription(CompressedImage, 'coinfer/features', on_features, qos['features'])
        print(f'{READY_MARKER} mini {role}', flush=True)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0


# --------------------------------------------------------------------------- this process: frames and records


@dataclass
class Block:
    """Frames of one action sent to one side; ``stamps`` in send order."""

    kind: str  # 'real' or 'mini'
    action: Action
    stamps: list[int] = field(default_factory=list)


class Bench:
    """The bench's own node: publishes frames and settings, records both sides' results."""

    def __init__(self) -> None:
        self._background = BackgroundNode('overhead_bench')
        node = self._background.node
        qos = topic_qos()
        self.image_pubs = {'real': node.create_publisher(Image, 'image_raw', qos['camera']),
                           'mini': node.create_publisher(Image, f'{MINI_NS}/image_raw', qos['camera'])}
        self.decision_pub = node.create_publisher(Int32MultiArray, 'coinfer/decision', qos['decision'])
        self.payload_pub = node.create_publisher(UInt32, f'{MINI_NS}/{PAYLOAD_TOPIC}', qos['payload'])
        self._lock = threading.Lock()
        self.results: dict[int, rec.Result] = {}
        self.bad_records = 0
        for topic in ('coinfer/result', f'{MINI_NS}/coinfer/result'):
            node.create_subscription(JointState, topic, self._on_result, qos['record'])
        pixels = np.random.default_rng(0).integers(0, 256, IMAGE_SIDE * IMAGE_SIDE, dtype=np.uint8).tobytes()
        self.image = Image(height=IMAGE_SIDE, width=IMAGE_SIDE, encoding='mono8', step=IMAGE_SIDE, data=pixels)
        self.image.header.frame_id = 'camera'
        self._last_stamp = 0

    def _on_result(self, msg: Any) -> None:
        try:
            result = m.read_result(msg)
        except rec.MessageError:
            self.bad_records += 1
            return
        with self._lock:
            self.results[m.stamp_ns(msg.header)] = result

    def wait_matched(self, timeout: float) -> bool:
        """Wait until both devices subscribe to the images and both result topics have a publisher."""
        node = self._background.node
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (all(p.get_subscription_count() >= 1 for p in self.image_pubs.values())
                    and node.count_publishers('coinfer/result') >= 1
                    and node.count_publishers(f'{MINI_NS}/coinfer/result') >= 1):
                return True
            time.sleep(0.05)
        return False

    def set_action(self, action: Action, payload_bytes: int) -> None:
        """Make the real device apply ``action`` and the mini device send ``payload_bytes``."""
        self.decision_pub.publish(m.make_decision_msg(action))
        self.payload_pub.publish(UInt32(data=payload_bytes))

    def run_block(self, block: Block, frames: int, period_s: float, deadline: float) -> None:
        """Publish ``frames`` images to the block's side, one every ``period_s``; wait for the last result."""
        pub = self.image_pubs[block.kind]
        start = time.monotonic()
        for i in range(frames):
            delay = start + i * period_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() > deadline:
                raise TimeoutError('the benchmark ran past --timeout-s')
            stamp = max(time.time_ns(), self._last_stamp + 1)
            self._last_stamp = stamp
            self.image.header.stamp.sec, self.image.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            pub.publish(self.image)
            block.stamps.append(stamp)
        wait_until = time.monotonic() + ANSWER_WAIT_S
        while time.monotonic() < wait_until and block.stamps[-1] not in self.results:
            time.sleep(0.01)

    def result(self, stamp: int) -> rec.Result | None:
        """Return the result recorded for the frame with header stamp ``stamp``."""
        with self._lock:
            return self.results.get(stamp)

    def close(self) -> None:
        """Stop the node."""
        self._background.close()


def framework_ms(r: rec.Result) -> float:
    """Return what a real frame paid besides model compute (raise if the record lacks the compute fields)."""
    edge = r.edge_compute_ms if r.source == rec.SOURCE_EDGE else 0.0
    if math.isnan(r.device_compute_ms) or math.isnan(edge):
        raise RuntimeError('the device node does not fill device_compute_ms / edge_compute_ms in coinfer/result')
    return r.total_ms - r.device_compute_ms - edge


@dataclass
class Samples:
    """One action's per-frame figures (ms)."""

    framework: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    compute: list[float] = field(default_factory=list)
    minimal: list[float] = field(default_factory=list)
    payload_bytes: set[int] = field(default_factory=set)
    sent: dict[str, int] = field(default_factory=lambda: {'real': 0, 'mini': 0})
    skipped: int = 0  # real frames answered with another action or as a fallback


def collect(bench: Bench, blocks: list[Block], warmup: int) -> dict[Action, Samples]:
    """Turn the recorded results into per-action samples (the first ``warmup`` frames of each block left out)."""
    out: dict[Action, Samples] = {}
    for block in blocks:
        s = out.setdefault(block.action, Samples())
        for stamp in block.stamps[warmup:]:
            s.sent[block.kind] += 1
            r = bench.result(stamp)
            if r is None:
                continue
            if block.kind == 'mini':
                s.minimal.append(r.total_ms)
                continue
            expected_source = rec.SOURCE_DEVICE if block.action == LOCAL_ACTION else rec.SOURCE_EDGE
            if r.action != block.action or r.fallback != rec.FALLBACK_NONE or r.source != expected_source:
                s.skipped += 1
                continue
            s.framework.append(framework_ms(r))
            s.total.append(r.total_ms)
            s.compute.append(r.device_compute_ms + (r.edge_compute_ms if r.source == rec.SOURCE_EDGE else 0.0))
            s.payload_bytes.add(r.payload_bytes)
    return out


def pct(values: list[float], q: float) -> float:
    """Return the ``q``-th percentile (nan when empty)."""
    return float(np.percentile(values, q)) if values else math.nan


def print_report(samples: dict[Action, Samples], payloads: dict[Action, int], header: str) -> float:
    """Print the table; return the overall ratio (median over the remote actions of framework/minimal p50)."""
    print(header)
    print('\nframework = total_ms - device_compute_ms - edge_compute_ms of the real nodes\' coinfer/result; '
          'minimal = the two-process rclpy chain, receipt of the image -> answer back\n')
    print('| action | payload B | frames real / mini | real total p50 | model compute p50 | framework p50 | '
          'framework p90 | minimal p50 | minimal p90 | framework / minimal |')
    print('|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
    ratios = []
    for action in (*REMOTE_ACTIONS, LOCAL_ACTION):
        s = samples[action]
        ratio = statistics.median(s.framework) / statistics.median(s.minimal) if s.framework and s.minimal else math.nan
        if action != LOCAL_ACTION and not math.isnan(ratio):
            ratios.append(ratio)
        shown = 'n/a' if action == LOCAL_ACTION else f'{ratio:.2f}'
        counts = f'{len(s.framework)}/{s.sent["real"]} / {len(s.minimal)}/{s.sent["mini"]}'
        print(f'| {action.label()} | {payloads[action]} | {counts} | {pct(s.total, 50):.3f} | {pct(s.compute, 50):.3f} '
              f'| {pct(s.framework, 50):.3f} | {pct(s.framework, 90):.3f} | {pct(s.minimal, 50):.3f} '
              f'| {pct(s.minimal, 90):.3f} | {shown} |')
        if s.payload_bytes - {payloads[action]}:
            print(f'  note: the device sent {sorted(s.payload_bytes)} bytes for {action.label()}, the minimal chain '
                  f'{payloads[action]}')
        if s.skipped:
            print(f'  note: {s.skipped} real frames of {action.label()} came back with another action or a fallback')
    overall = statistics.median(ratios) if ratios else math.nan
    print(f'\noverall (median over the remote actions of framework p50 / minimal p50): {overall:.2f}x (target <= 1.3x)'
          '\nlocal action: no ROS hop inside total_ms; its framework cost is the node\'s own per-frame work (image '
          'conversion, preprocessing, thread hand-off), against an empty callback in the minimal chain: no ratio')
    return overall


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='one round of short blocks (about 40 s)')
    parser.add_argument('--rounds', type=int, default=3, help='rounds of blocks (every action, real and minimal)')
    parser.add_argument('--frames', type=int, default=30, help='measured frames per block')
    parser.add_argument('--warmup', type=int, default=3, help='frames left out at the start of each block')
    parser.add_argument('--rate-hz', type=float, default=10.0, help='frame rate (default 10, as the demo camera)')
    parser.add_argument('--publication-mode', choices=tuple(PUBLICATION_MODES), default='default',
                        help="RMW_FASTRTPS_PUBLICATION_MODE of every process ('default': not set, i.e. synchronous)")
    parser.add_argument('--device-param', action='append', default=[], metavar='NAME=VALUE',
                        help='extra device_node parameter (value parsed as YAML), e.g. publish_thread=true')
    parser.add_argument('--domain-id', type=int, default=None, help='ROS domain (default: a free one)')
    parser.add_argument('--timeout-s', type=float, default=900.0, help='give up after this long (default 900)')
    parser.add_argument('--mini', choices=('device', 'edge'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.frames, args.warmup = 1, 15, 2
    if args.rounds < 1 or args.frames < 2 or args.warmup < 0 or not 0.1 <= args.rate_hz <= 100:
        parser.error('need --rounds >= 1, --frames >= 2, --warmup >= 0 and --rate-hz in 0.1..100')
    return args


def device_params(assignments: list[str]) -> dict[str, Any]:
    """Return the real device's parameter overrides: :data:`DEVICE_PARAMS` plus ``--device-param``."""
    params = dict(DEVICE_PARAMS)
    for item in assignments:
        name, sep, value = item.partition('=')
        if not sep:
            raise SystemExit(f'--device-param expects NAME=VALUE, got {item!r}')
        params[name] = yaml.safe_load(value)
    return params


def main() -> int:
    """Run the benchmark (or one process of the minimal chain with ``--mini``)."""
    args = parse_args()
    if args.mini:
        return run_mini(args.mini)
    deadline = time.monotonic() + args.timeout_s
    log_dir = Path(tempfile.mkdtemp(prefix='coinfer-bench-overhead-'))
    domain = args.domain_id if args.domain_id is not None else choose_domain_id()
    mode = PUBLICATION_MODES[args.publication_mode]
    env = ros_env(domain, log_dir / 'ros', **({'RMW_FASTRTPS_PUBLICATION_MODE': mode} if mode else {}))
    if not mode:
        env.pop('RMW_FASTRTPS_PUBLICATION_MODE', None)
    adopt_env(env)
    profile = Profile.load()
    payloads = {a: profile.payload(a) for a in REMOTE_ACTIONS} | {LOCAL_ACTION: 0}
    started = datetime.now().strftime('%Y-%m-%d %H:%M')
    load_before = os.getloadavg()

    graph = Graph(env, log_dir)
    graph.add('edge', 'edge_node', params_files=[config_file('edge.yaml')])
    graph.add('device', 'device_node', params_files=[config_file('device.yaml')],
              params=device_params(args.device_param))
    for role in ('edge', 'device'):
        graph.nodes[f'mini_{role}'] = NodeProcess([sys.executable, str(Path(__file__).resolve()), '--mini', role],
                                                  env, log_dir / f'mini_{role}.log', f'mini_{role}')
    bench = None
    blocks: list[Block] = []
    try:
        graph.start(timeout=max(min(120.0, deadline - time.monotonic()), 1.0))
        bench = Bench()
        if not bench.wait_matched(30.0):
            raise RuntimeError('the bench, the nodes and the minimal chain did not discover each other in 30 s')
        period = 1.0 / args.rate_hz
        for kind in ('real', 'mini'):  # warm-up: discovery of the answer paths, first allocations
            bench.set_action(REMOTE_ACTIONS[-1], payloads[REMOTE_ACTIONS[-1]])
            time.sleep(SETTLE_S)
            warm = Block(kind, REMOTE_ACTIONS[-1])
            bench.run_block(warm, 10, period, deadline)
            if bench.result(warm.stamps[-1]) is None:
                raise RuntimeError(f'no {kind} results during the warm-up; device log:\n{graph["device"].tail()}')
        for rnd in range(args.rounds):
            for action in (*REMOTE_ACTIONS, LOCAL_ACTION):
                bench.set_action(action, payloads[action])
                for kind in (('real', 'mini') if rnd % 2 == 0 else ('mini', 'real')):
                    time.sleep(SETTLE_S)
                    blocks.append(Block(kind, action))
                    bench.run_block(blocks[-1], args.warmup + args.frames, period, deadline)
        samples = collect(bench, blocks, args.warmup)
    finally:
        if bench is not None:
            bench.close()
        graph.stop()
        clean_stale_shm()
    load_after = os.getloadavg()
    header = (f'coinfer per-frame framework cost vs a minimal rclpy chain, {started}, {platform.machine()}, '
              f'{os.cpu_count()} CPUs, load average {load_before[0]:.2f} -> {load_after[0]:.2f}, '
              f'ROS_DOMAIN_ID={domain}, publication mode {mode or "default (synchronous)"}, {args.rate_hz:g} Hz, '
              f'{args.rounds} round(s) x {args.frames} frames per block and side, device params '
              f'{device_params(args.device_param)}')
    print_report(samples, payloads, header)
    return 0


if __name__ == '__main__':
    sys.exit(main())
