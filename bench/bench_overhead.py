# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Per-frame framework overhead (ROS 2 + feature codec, no model compute) against the head's compute time.

For every partition point ``p`` and bit width, this process (the "device") takes the real
head output of ``MultiExitAlexNet(ModelSpec())`` (seeded, untrained: timing does not
depend on the weights), encodes it with the codec, publishes it as the device does
(``sensor_msgs/CompressedImage`` on ``coinfer/features``, reliable, asynchronous Fast DDS
publication, loopback-only discovery) to a separate *echo* process.  The echo does what the
edge node does minus the model: it checks the format, decodes the features and answers
with a ``coinfer/edge_result`` record built by the same code as the edge node's.  The
device measures the round trip from just before encoding to the answer's arrival: that is
the framework's per-frame cost on one machine (encode + publish + DDS both ways + decode +
reply), with no network delay and no model compute.  The same run measures the head's
compute time ``model.head(x, p)`` on this machine and prints the ratio overhead / head.
Everything runs with one torch thread (as the nodes do).

Usage: ``python bench/bench_overhead.py [--rounds N] [--bits 2 8 32] [--domain-id D]``
(about a minute with the defaults).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

from coinfer_device.core.codec import FORMAT, decode_features, encode_features, parse_format
from coinfer_device.core.model import ModelSpec, MultiExitAlexNet
from coinfer_device.ros import messages as m

PARTITIONS = tuple(range(0, 10))
DEFAULT_BITS = (2, 4, 8, 16, 32)
FINAL_EXIT = 2
ECHO_READY = 'echo ready'


def qos_profiles() -> tuple[Any, Any]:
    """Return the QoS of the feature and answer topics (the nodes' defaults: reliable, keep-last)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return (QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE),
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))


# --------------------------------------------------------------------------- echo process


def run_echo() -> int:
    """Echo process: decode every feature message and answer with an edge-result record."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from sensor_msgs.msg import CompressedImage, JointState

    torch.set_num_threads(1)
    rclpy.init()
    node = Node('overhead_echo')
    features_qos, answer_qos = qos_profiles()
    pub = node.create_publisher(JointState, 'coinfer/edge_result', answer_qos)

    def on_features(msg: CompressedImage) -> None:
        t0 = time.perf_counter()
        parse_format(msg.format)
        header, _feature = decode_features(msg.data)
        decode_ms = (time.perf_counter() - t0) * 1e3
        pub.publish(m.make_edge_result_msg(m.EdgeResult(
            frame_seq=header.frame_seq, class_id=0, confidence=1.0, exit=header.exit_point,
            partition=header.partition_point, bits=header.bits, device_ms=header.device_compute_ms,
            edge_ms=decode_ms, payload_bytes=len(msg.data), device_stamp_ns=header.device_stamp_ns), msg.header))

    node.create_subscription(CompressedImage, 'coinfer/features', on_features, features_qos)
    print(ECHO_READY, flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


# --------------------------------------------------------------------------- device side


class Device:
    """Publisher of feature messages that waits for each answer (executor in a background thread)."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import CompressedImage, JointState
        from std_msgs.msg import Header

        self._rclpy = rclpy
        self._header_type = Header
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node('overhead_device', context=self.context)
        features_qos, answer_qos = qos_profiles()
        self.pub = self.node.create_publisher(CompressedImage, 'coinfer/features', features_qos)
        self.answer = threading.Event()
        self.last: m.EdgeResult | None = None
        self.answered_at = 0.0
        self.node.create_subscription(JointState, 'coinfer/edge_result', self._on_answer, answer_qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - ends with the context
            pass

    def _on_answer(self, msg: Any) -> None:
        self.answered_at = time.perf_counter()
        self.last = m.read_edge_result(msg)
        self.answer.set()

    def wait_matched(self, timeout: float = 30.0) -> bool:
        """Wait until the echo subscribes to the features and publishes answers we receive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.pub.get_subscription_count() >= 1
                    and self.node.count_publishers('coinfer/edge_result') >= 1):
                return True
            time.sleep(0.05)
        return False

    def round_trip(self, feature: torch.Tensor, p: int, bits: int, seq: int) -> tuple[float, float, float, int]:
        """Encode, publish and wait for the answer; return (total s, encode s, echo decode s, message bytes)."""
        self.answer.clear()
        t0 = time.perf_counter()
        payload = encode_features(feature, bits=bits, exit_point=FINAL_EXIT, partition_point=p, frame_seq=seq,
                                  device_stamp_ns=time.monotonic_ns())
        t_enc = time.perf_counter()
        header = self._header_type()
        header.frame_id = 'camera'
        self.pub.publish(m.make_features_msg(payload, header, FORMAT))
        if not self.answer.wait(10.0):
            raise RuntimeError(f'no answer from the echo process for p={p} bits={bits}')
        if self.last is None or self.last.frame_seq != seq:
            raise RuntimeError(f'answer for frame {getattr(self.last, "frame_seq", None)}, expected {seq}')
        return self.answered_at - t0, t_enc - t0, self.last.edge_ms / 1e3, len(payload)

    def close(self) -> None:
        """Shut the context down."""
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)


def median_time(fn: Any, rounds: int) -> float:
    """Return the median seconds of ``fn()`` over ``rounds`` calls (after two warm-up calls)."""
    fn()
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def start_echo(env: dict[str, str]) -> subprocess.Popen:
    """Start the echo process and wait for its ready line."""
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), '--echo'], env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    line = proc.stdout.readline()
    if ECHO_READY not in line:
        proc.kill()
        raise RuntimeError(f'echo process failed to start: {line}{proc.stdout.read()}')
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain, never block the echo
    return proc


def stop_echo(proc: subprocess.Popen) -> None:
    """Stop the echo process: SIGINT, then SIGKILL."""
    proc.send_signal(2)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def main() -> int:
    """Run the benchmark (or the echo process with ``--echo``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=100, help='timed round trips per (partition, bits)')
    parser.add_argument('--bits', type=int, nargs='+', default=list(DEFAULT_BITS), help='bit widths to measure')
    parser.add_argument('--domain-id', type=int, default=None, help='ROS domain (default: a free one)')
    parser.add_argument('--echo', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo:
        return run_echo()

    from coinfer_edge.demo.cli import choose_domain_id
    from coinfer_edge.demo.harness import clean_stale_shm, ros_env

    torch.set_num_threads(1)
    log_dir = tempfile.mkdtemp(prefix='coinfer-bench-overhead-')
    domain = args.domain_id if args.domain_id is not None else choose_domain_id()
    env = ros_env(domain, log_dir)
    for key in set(os.environ) - set(env):  # this process's own DDS participant uses the same settings
        del os.environ[key]
    os.environ.update(env)
    torch.manual_seed(0)
    spec = ModelSpec()
    model = MultiExitAlexNet(spec).eval()
    x = torch.rand(1, spec.in_channels, spec.image_size, spec.image_size)
    with torch.inference_mode():
        features = {p: model.head(x, p).contiguous() for p in PARTITIONS}
        head_s = {p: median_time(lambda p=p: model.head(x, p), args.rounds) for p in PARTITIONS}
        full_s = median_time(lambda: model.infer(x, model.num_blocks, FINAL_EXIT), args.rounds)

    echo = start_echo(env)
    device = Device()
    rows = []
    try:
        if not device.wait_matched():
            raise RuntimeError('the echo process and this one did not discover each other in 30 s')
        seq = 0
        for _ in range(20):  # warm up DDS (first messages of a size allocate buffers)
            seq += 1
            device.round_trip(features[9], 9, 8, seq)
        combos = [(p, bits) for p in PARTITIONS for bits in args.bits]
        samples: dict[tuple[int, int], list[tuple[float, float, float, int]]] = {c: [] for c in combos}
        for i in range(args.rounds + 3):  # round-robin, so machine-load noise spreads over every row
            for p, bits in combos:
                seq += 1
                sample = device.round_trip(features[p], p, bits, seq)
                if i >= 3:
                    samples[(p, bits)].append(sample)
        for (p, bits), ss in samples.items():
            rows.append((p, bits, ss[0][3], statistics.median(s[1] for s in ss),
                         statistics.median(s[2] for s in ss), statistics.median(s[0] for s in ss)))
    finally:
        device.close()
        stop_echo(echo)
        clean_stale_shm()

    print(f'coinfer per-frame framework overhead (ROS 2 + codec, no model), {platform.machine()}, '
          f'torch {torch.__version__}, 1 thread, {os.cpu_count()} CPUs, ROS_DOMAIN_ID={domain}, '
          f'{args.rounds} round trips per row (medians)')
    print(f'full network on this machine (head + final exit, batch 1): {full_s * 1e3:.3f} ms\n')
    print('overhead = encode + publish + DDS to the echo process + decode + answer + DDS back (loopback, '
          'same machine);\nROS+DDS = overhead - encode - decode\n')
    print('|  p | feature shape | bits | message bytes | head ms | encode us | decode us | overhead ms '
          '| ROS+DDS ms | overhead / head | overhead / full net |')
    print('|---:|:--------------|-----:|--------------:|--------:|----------:|----------:|------------:'
          '|-----------:|----------------:|--------------------:|')
    for p, bits, nbytes, enc, dec, total in rows:
        shape = 'x'.join(map(str, features[p].shape[1:]))
        ratio = f'{total / head_s[p]:.1f}' if head_s[p] > 0 else '-'
        print(f'| {p:2d} | {shape:13s} | {bits:4d} | {nbytes:13d} | {head_s[p] * 1e3:7.3f} | {enc * 1e6:9.1f} '
              f'| {dec * 1e6:9.1f} | {total * 1e3:11.3f} | {(total - enc - dec) * 1e3:10.3f} | {ratio:>15s} '
              f'| {total / full_s:19.2f} |')
    overall = statistics.median(r[5] for r in rows)
    print(f'\nmedian overhead over all rows: {overall * 1e3:.3f} ms = {overall / full_s:.2f} x the full network '
          f'compute on this machine')
    return 0


if __name__ == '__main__':
    sys.exit(main())
