# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Device node (robot side): camera frame -> head of the network -> features to the edge, or a local result.

Per frame the newest fresh ``coinfer/decision`` applies (else the configured local
``fallback_action``).  A local action classifies on the device and publishes
``coinfer/result``; otherwise the head runs to the partition point, the features are
encoded and handed to a sender thread (optionally through the in-process link emulator)
that publishes ``coinfer/features``.  The edge answers on ``coinfer/edge_result``; the
device completes the record with round-trip timing on its own clock and publishes the one
``coinfer/result`` of the frame.  Frames the edge does not answer in time are re-run
locally, repeated timeouts switch to local answers plus periodic probes until the edge
answers again (docs/topics.md, "Device behaviour").  Probes also keep the link measured
whatever the policy sends: when no small (RTT) or no large (bandwidth) message went out for
``probe_interval_s``, the frame is also sent as a probe of that size; its answer never
produces a second result.  With ``compute_slowdown`` k > 1 the device emulates a k-times
slower CPU (a Raspberry Pi 4 class robot on a workstation): after running its part of the
network it waits (k - 1) times the measured compute time.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float32, Header, Int32MultiArray

from coinfer_device.ros import params as rp
from coinfer_device.core.checkpoint import load_checkpoint
from coinfer_device.core.codec import FORMAT, encode_features, encoded_size
from coinfer_device.core.data import frame_to_input
from coinfer_device.core.device_state import (DecisionKeeper, EdgeTracker, Pending, check_action, choose_probe,
                                              is_local)
from coinfer_device.core.image_conversion import ImageFormatError, image_msg_to_frame
from coinfer_device.core.link_emulator import Bottleneck, LinkEmulator, schedule_from_params
from coinfer_device.core.profile import Action
from coinfer_device.ros.params import ParameterError
from coinfer_device.ros.runtime import BurstLogger, Diagnostics, RateMeter, level_of, run_node
from coinfer_device.ros import messages as m

QOS = (rp.QosDefault('image', 'image_raw', 'best_effort', 1),
       rp.QosDefault('features', 'coinfer/features', 'reliable', 2),
       rp.QosDefault('decision', 'coinfer/decision', 'reliable', 1, 'transient_local'),
       rp.QosDefault('edge_result', 'coinfer/edge_result', 'reliable', 10),
       rp.QosDefault('result', 'coinfer/result', 'reliable', 10),
       rp.QosDefault('link', 'coinfer/link/*', 'best_effort', 1))


def _positive_schedule(value: list[float]) -> str | None:
    return None if value and all(v > 0 for v in value) else 'must be a non-empty list of bandwidths > 0'


PARAMS = [
    rp.Param('model_path', '', "Checkpoint file (.pt with its .json); '' = the shipped Fashion-MNIST model"),
    rp.Param('torch_threads', 1, 'torch intra-op threads (0 = torch default)', lo=0, hi=256),
    rp.Param('deadline_ms', 20.0, 'Per-frame latency deadline for deadline_met (keep equal to the policy deadline)',
             lo=0.1, hi=1e6, dynamic=True, unit='ms'),
    rp.Param('decision_timeout_s', 2.0, 'A decision older than this (receipt time) is stale: fallback_action '
             'applies', lo=0.01, hi=3600.0, dynamic=True, unit='s'),
    rp.Param('fallback_action', [2, 10, 0], 'Local [exit, partition, bits] used without a fresh decision, while '
             'the edge is down and to re-run unanswered frames', check=rp.action_check),
    rp.Param('compute_slowdown', 1.0, 'Emulate a CPU this many times slower: after the head (and the exit branch '
             'or the encoding) the device waits (k - 1) x the measured compute time (1 = off; keep equal to the '
             "policy's latency.device_slowdown when emulating the robot on a faster machine)", lo=1.0, hi=1000.0,
             dynamic=True),
    rp.Param('edge_timeout_ms', 1000.0, 'A sent frame without an edge answer after this is re-run locally',
             lo=1.0, hi=600000.0, dynamic=True, unit='ms'),
    rp.Param('edge_fallback_after', 2, 'Consecutive edge timeouts that switch to local answers (edge down)',
             lo=1, hi=1000),
    rp.Param('probe_interval_s', 0.5, 'When no small (<= probe_small_bytes) or no large (>= probe_large_bytes) '
             'message went to the edge for this long, the frame is also sent as a probe of that size (link '
             'measurement, edge recovery); 0 = never', lo=0.0, hi=3600.0, unit='s'),
    rp.Param('probe_actions', [2, 0, 8, 2, 0, 32, 2, 2, 8, 2, 2, 16, 2, 1, 8], 'Remote actions probes may use: '
             'flat list of [exit, partition, bits] triples; the smallest serves as the small probe, the large '
             'probe is chosen by probe_target_ms (default: 1 kB; 4, 8, 16 and 32 kB)', check=rp.triples_check),
    rp.Param('probe_small_bytes', 2048, 'Messages up to this size measure the RTT (keep equal to the link '
             "monitor's small_payload_bytes)", lo=0, unit='bytes'),
    rp.Param('probe_large_bytes', 4096, 'Messages from this size measure the bandwidth (keep equal to the link '
             "monitor's min_bandwidth_payload_bytes)", lo=1, unit='bytes'),
    rp.Param('probe_target_ms', 25.0, 'The large probe is the largest of probe_actions that serializes within '
             'this at the measured bandwidth (coinfer/link/bandwidth_mbps, or the newest large probe\'s own when '
             'lower), else the smallest large one; the largest while nothing is measured', lo=0.0, hi=60000.0,
             unit='ms'),
    rp.Param('emulated_link.enabled', False, 'Delay feature messages through the in-process link emulator'),
    rp.Param('emulated_link.bandwidth_schedule_mbps', [10.0], 'Emulated bandwidth steps', check=_positive_schedule,
             unit='Mbit/s'),
    rp.Param('emulated_link.step_s', 5.0, 'Duration of each bandwidth step', lo=0.001, hi=1e6, unit='s'),
    rp.Param('emulated_link.loop', True, 'Cycle the bandwidth schedule (else hold the last value)'),
    rp.Param('emulated_link.rtt_ms', 20.0, 'Emulated round-trip time added to every feature message', lo=0.0,
             hi=60000.0, unit='ms'),
    rp.Param('emulated_link.max_queue_ms', 2000.0, 'Tail-drop a feature message that would wait longer than '
             'this for the emulated link', lo=0.0, hi=1e7, unit='ms'),
] + rp.qos_params(QOS)


@dataclass
class FrameJob:
    """A frame waiting for the worker."""

    msg: Image
    received_ns: int


@dataclass
class SentFrame:
    """What the device keeps about a frame sent to the edge."""

    header: Header
    received_ns: int
    x: torch.Tensor
    action: Action
    fallback: int
    device_ms: float
    payload_bytes: int
    ready_ns: int


@dataclass
class DeferredProbe:
    """A probe waiting for the answer to the frame it was made from."""

    frame_stamp: int
    seq: int
    header: Header
    feature: torch.Tensor
    action: Action


class _Sender:
    """Publish from a dedicated thread so a slow link never blocks inference."""

    def __init__(self, publish: Callable[[Any], None]) -> None:
        self._publish = publish
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name='feature-sender', daemon=True)
        self._thread.start()

    def send(self, msg: Any, nbytes: int) -> bool:
        self._queue.put(msg)
        return True

    def queued(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while (msg := self._queue.get()) is not None:
            self._publish(msg)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=2.0)


class DeviceNode(Node):
    """Run the head of the multi-exit network on camera frames (see module docstring)."""

    def __init__(self) -> None:
        super().__init__('device_node')
        self.p = rp.declare(self, PARAMS)
        if self.p['torch_threads'] > 0:
            torch.set_num_threads(self.p['torch_threads'])
        loaded = load_checkpoint(self.p['model_path'] or None)
        self.model, self.pre, self.class_names = loaded.model, loaded.preprocessing, loaded.class_names
        self.branch_points = list(self.model.spec.exit_branch_points)
        self.fallback_action = self._checked_action('fallback_action', self.p['fallback_action'], local=True)
        self.probe_candidates = self._probe_candidates()
        schedule = None
        if self.p['emulated_link.enabled']:
            schedule = schedule_from_params(self.p['emulated_link.bandwidth_schedule_mbps'],
                                            self.p['emulated_link.step_s'], self.p['emulated_link.loop'])
        self._warm_up()

        self.keeper = DecisionKeeper(self.fallback_action, self.p['decision_timeout_s'])
        self.tracker = EdgeTracker(self.p['edge_timeout_ms'] / 1e3, self.p['edge_fallback_after'],
                                   self.p['probe_interval_s'], self.p['probe_small_bytes'],
                                   self.p['probe_large_bytes'])
        self.c = {k: RateMeter() for k in (
            'frames_in', 'dropped_busy', 'processed', 'results_local', 'results_edge', 'edge_timeouts_rerun',
            'probes_sent', 'probes_answered', 'deadline_misses', 'rejected_images', 'rejected_decisions',
            'late_edge_results', 'link_drops')}
        self.warn_images = BurstLogger(self.get_logger().warning)
        self.warn_decisions = BurstLogger(self.get_logger().warning)
        self._last_action: Action | None = None
        self._last_fallback = -1
        self._seq = 0
        self._stamp_lock = threading.Lock()
        self._last_stamp = 0
        self._measured_mbps: float | None = None  # coinfer/link/bandwidth_mbps
        self._measured_rtt_ms = 0.0  # coinfer/link/rtt_ms
        self._probe_mbps: float | None = None  # what the newest large probe's own round trip implies
        self._deferred_lock = threading.Lock()
        self._deferred: DeferredProbe | None = None
        self._encode_s: dict[tuple[int, int], float] = {}  # newest encoding time per (partition, bits)

        self.features_pub = self.create_publisher(CompressedImage, 'coinfer/features', rp.qos_from(self.p, 'features'))
        self.result_pub = self.create_publisher(JointState, 'coinfer/result', rp.qos_from(self.p, 'result'))
        self.create_subscription(Image, 'image_raw', self._on_image, rp.qos_from(self.p, 'image'))
        self.create_subscription(Int32MultiArray, 'coinfer/decision', self._on_decision,
                                 rp.qos_from(self.p, 'decision'))
        self.create_subscription(JointState, 'coinfer/edge_result', self._on_edge_result,
                                 rp.qos_from(self.p, 'edge_result'))
        self.create_subscription(Float32, 'coinfer/link/bandwidth_mbps', self._on_bandwidth,
                                 rp.qos_from(self.p, 'link'))
        self.create_subscription(Float32, 'coinfer/link/rtt_ms', self._on_rtt, rp.qos_from(self.p, 'link'))
        self.create_timer(0.02, self._check_timeouts)
        rp.install_set_callback(self, PARAMS, self._on_param)
        Diagnostics(self, self._diagnostics)

        # Threads start last: nothing above may fail after them.
        self._cv = threading.Condition()
        self._mailbox: FrameJob | None = None
        self._reruns: list[Pending] = []
        self._stop = False
        if schedule is not None:
            bottleneck = Bottleneck(schedule, self.p['emulated_link.rtt_ms'], self.p['emulated_link.max_queue_ms'])
            self.sender: Any = LinkEmulator(bottleneck, self.features_pub.publish,
                                            on_drop=lambda _msg: self.c['link_drops'].add())
        else:
            self.sender = _Sender(self.features_pub.publish)
        self._worker = threading.Thread(target=self._work, name='device-inference', daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ setup helpers

    def _checked_action(self, name: str, triple: list[int], local: bool) -> Action:
        action = Action(*[int(v) for v in triple])
        problem = check_action(action, self.branch_points)
        if problem is None and is_local(action, self.branch_points) != local:
            problem = ('must be a local action (partition = branch point, bits 0)' if local
                       else 'must send features (partition < branch point of the exit)')
        if problem:
            raise ParameterError(f'{self.get_fully_qualified_name()}: parameter {name!r} {action.to_list()}: {problem}')
        return action

    def _probe_candidates(self) -> list[tuple[Action, int]]:
        triples = self.p['probe_actions']
        candidates = []
        for i in range(0, len(triples), 3):
            action = self._checked_action('probe_actions', triples[i:i + 3], local=False)
            shape = (1,) + tuple(self.model.feature_shape(action.partition))
            candidates.append((action, encoded_size(shape, action.bits)))
        if self.p['probe_interval_s'] > 0:
            sizes = {a.label(): n for a, n in candidates}
            if not any(n <= self.p['probe_small_bytes'] for _, n in candidates):
                raise ParameterError(f'{self.get_fully_qualified_name()}: parameter \'probe_actions\' has no action '
                                     f'of at most probe_small_bytes {self.p["probe_small_bytes"]} (sizes {sizes})')
            if not any(n >= self.p['probe_large_bytes'] for _, n in candidates):
                raise ParameterError(f'{self.get_fully_qualified_name()}: parameter \'probe_actions\' has no action '
                                     f'of at least probe_large_bytes {self.p["probe_large_bytes"]} (sizes {sizes})')
        return candidates

    def _warm_up(self) -> None:
        s = self.model.spec
        x = torch.zeros(1, s.in_channels, s.image_size, s.image_size)
        with torch.inference_mode():
            for e, bp in enumerate(self.branch_points):
                self.model.infer(x, bp, e)

    def ready_summary(self) -> str:
        """Return the one-line description logged with the ready marker."""
        link = 'emulated link' if self.p['emulated_link.enabled'] else 'direct link'
        slower = f', CPU emulated {self.p["compute_slowdown"]:g}x slower' if self.p['compute_slowdown'] > 1 else ''
        return (f'model {self.model.spec.exit_branch_points} exits, fallback {self.fallback_action.label()}, '
                f'{link}, deadline {self.p["deadline_ms"]:g} ms{slower}')

    def _on_param(self, name: str, value: Any) -> None:
        self.p[name] = value
        if name == 'decision_timeout_s':
            self.keeper.timeout_s = value
        elif name == 'edge_timeout_ms':
            self.tracker.timeout_s = value / 1e3

    # ------------------------------------------------------------------ callbacks (executor thread)

    def _on_image(self, msg: Image) -> None:
        self.c['frames_in'].add()
        job = FrameJob(msg, time.monotonic_ns())
        with self._cv:
            if self._mailbox is not None:
                self.c['dropped_busy'].add()
            self._mailbox = job
            self._cv.notify()

    def _on_decision(self, msg: Int32MultiArray) -> None:
        try:
            action = m.read_decision(msg)
        except m.MessageError as exc:
            problem = str(exc)
        else:
            problem = check_action(action, self.branch_points)
        if problem:
            self.c['rejected_decisions'].add()
            self.warn_decisions.event(f'rejected decision: {problem}')
            return
        if is_local(action, self.branch_points):
            action = Action(action.exit, action.partition, 0)
        self.keeper.offer(action, time.monotonic())

    def _on_bandwidth(self, msg: Float32) -> None:
        if msg.data > 0:
            self._measured_mbps = float(msg.data)

    def _on_rtt(self, msg: Float32) -> None:
        if msg.data >= 0:
            self._measured_rtt_ms = float(msg.data)

    def _on_edge_result(self, msg: JointState) -> None:
        now_ns = time.monotonic_ns()
        try:
            er = m.read_edge_result(msg)
        except m.MessageError:
            self.c['late_edge_results'].add()
            return
        pending, came_back = self.tracker.answered(er.frame_seq, er.device_stamp_ns)
        if came_back:
            self.get_logger().info('edge answering again: back to the policy decisions')
        if pending is None:
            self.c['late_edge_results'].add()
            return
        if pending.probe:
            self.c['probes_answered'].add()
            if pending.payload_bytes >= self.p['probe_large_bytes']:
                serialization_ms = (now_ns / 1e9 - pending.sent_at) * 1e3 - er.edge_ms - self._measured_rtt_ms
                # Only a clearly slow probe says something (the link monitor's estimate may lag a drop).
                self._probe_mbps = (8.0 * pending.payload_bytes / serialization_ms / 1e3
                                    if serialization_ms > 1.0 else None)
            return
        sent: SentFrame = pending.data
        round_trip = (now_ns - sent.ready_ns) / 1e6
        total = (now_ns - sent.received_ns) / 1e6
        self._publish_result(sent.header, m.Result(
            frame_seq=er.frame_seq, class_id=er.class_id, confidence=er.confidence, exit=er.exit,
            partition=er.partition, bits=er.bits, source=m.SOURCE_EDGE, fallback=sent.fallback,
            device_ms=sent.device_ms, transfer_ms=max(round_trip - er.edge_ms, 0.0), edge_ms=er.edge_ms,
            total_ms=total, round_trip_ms=round_trip, payload_bytes=sent.payload_bytes,
            deadline_ms=self.p['deadline_ms'], deadline_met=total <= self.p['deadline_ms']))
        self.c['results_edge'].add()
        self._send_deferred_probe(pending.stamp_ns)

    def _check_timeouts(self) -> None:
        expired, began = self.tracker.expire(time.monotonic())
        if began:
            self.get_logger().warning(
                f'edge not answering ({self.tracker.timeouts_to_fallback} frames timed out after '
                f'{self.tracker.timeout_s * 1e3:g} ms): answering locally with {self.fallback_action.label()}, '
                f'probing every {self.p["probe_interval_s"]:g} s')
        reruns = [p for p in expired if not p.probe]
        if reruns:
            with self._cv:
                self._reruns.extend(reruns)
                self._cv.notify()

    # ------------------------------------------------------------------ worker thread

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._stop and self._mailbox is None and not self._reruns:
                    self._cv.wait()
                if self._stop:
                    return
                if self._reruns:
                    rerun, job = self._reruns.pop(0), None
                else:
                    rerun, job = None, self._mailbox
                    self._mailbox = None
            try:
                with torch.inference_mode():
                    if rerun is not None:
                        self._rerun(rerun)
                    else:
                        self._process(job)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the robot
                self.get_logger().error(f'frame processing failed: {type(exc).__name__}: {exc}')

    def _process(self, job: FrameJob) -> None:
        t0 = time.perf_counter()
        try:
            frame = image_msg_to_frame(job.msg)
        except ImageFormatError as exc:
            self.c['rejected_images'].add()
            self.warn_images.event(f'rejected image: {exc}')
            return
        now = time.monotonic()
        action, fresh = self.keeper.current(now)
        fallback = m.FALLBACK_NONE if fresh else m.FALLBACK_NO_DECISION
        remote = not is_local(action, self.branch_points)
        if remote and self.tracker.edge_down:
            action, fallback, remote = self.fallback_action, m.FALLBACK_EDGE_DOWN, False
        if fallback != self._last_fallback:
            self.get_logger().info(f'applying {action.label()} ({_FALLBACK_WORDS[fallback]})')
            self._last_fallback = fallback
        elif action != self._last_action:
            self.get_logger().debug(f'applying {action.label()}')
        self._last_action = action
        seq = self._seq
        self._seq += 1
        self.c['processed'].add()
        x = frame_to_input(frame, self.pre)
        header = job.msg.header
        if remote:
            feature, head_s = self._timed(lambda: self.model.head(x, action.partition))

            def record(device_ms: float, nbytes: int, ready_ns: int) -> SentFrame:
                return SentFrame(header, job.received_ns, x, action, fallback, device_ms, nbytes, ready_ns)
            stamp = self._send(seq, header, feature, action, probe=False, t0=t0, data=record, compute_s=head_s)
            kind = self.tracker.probe_due(now)
            if kind:  # sent once the frame is answered, so the probe never delays the frame on the link
                probe_action = self._probe_action(kind)
                with self._deferred_lock:
                    self._deferred = DeferredProbe(stamp, seq, header, self._probe_head(x, probe_action),
                                                   probe_action)
            return
        self._answer_locally(seq, header, x, action, fallback, job.received_ns, t0)
        kind = self.tracker.probe_due(now)
        if kind:
            probe_action = self._probe_action(kind)
            self._send_probe(seq, header, self._probe_head(x, probe_action), probe_action)

    def _timed(self, compute: Callable[[], Any]) -> tuple[Any, float]:
        """Return ``compute()`` and its duration in seconds."""
        start = time.perf_counter()
        return compute(), time.perf_counter() - start

    def _emulate_slower_cpu(self, compute_s: float) -> None:
        """Wait (k - 1) x ``compute_s``: the extra time a ``compute_slowdown`` k times slower CPU would take."""
        extra = (self.p['compute_slowdown'] - 1.0) * compute_s
        if extra > 0:
            time.sleep(extra)

    def _probe_head(self, x: torch.Tensor, action: Action) -> torch.Tensor:
        feature, head_s = self._timed(lambda: self.model.head(x, action.partition))
        self._emulate_slower_cpu(head_s)  # on the robot the probe's head takes the CPU too
        return feature

    def _probe_action(self, kind: str) -> Action:
        # The link monitor's estimate lags a drop by seconds; the newest probe's own round trip does not,
        # and a probe sized for the old link would hold the slower one (and the frames behind it) for long.
        known = [v for v in (self._measured_mbps, self._probe_mbps) if v is not None]
        return choose_probe(kind, self.probe_candidates, self.p['probe_small_bytes'], self.p['probe_large_bytes'],
                            min(known) if self._measured_mbps is not None else None, self.p['probe_target_ms'])

    def _send_probe(self, seq: int, header: Header, feature: torch.Tensor, action: Action) -> None:
        self._send(seq, header, feature, action, probe=True, t0=time.perf_counter(), data=lambda *_: None)
        self.c['probes_sent'].add()

    def _send_deferred_probe(self, frame_stamp: int) -> None:
        with self._deferred_lock:
            probe = self._deferred
            if probe is None or probe.frame_stamp != frame_stamp:
                return
            self._deferred = None
        with torch.inference_mode():
            self._send_probe(probe.seq, probe.header, probe.feature, probe.action)

    def _next_stamp(self) -> int:
        with self._stamp_lock:  # unique: answers are matched by stamp (a frame and its probe share frame_seq)
            self._last_stamp = max(time.monotonic_ns(), self._last_stamp + 1)
            return self._last_stamp

    def _send(self, seq: int, header: Header, feature: torch.Tensor, action: Action, probe: bool, t0: float,
              data: Callable[[float, int, int], Any], compute_s: float | None = None) -> int:
        """Encode and hand a feature message to the sender; return its stamp.

        With ``compute_s`` (the head's time) the slower CPU is emulated for the head and the
        encoding (the latter as measured for the previous message of this size).
        """
        key = (action.partition, action.bits)
        if compute_s is not None:  # before the stamp: the link monitor's round trip must not contain it
            self._emulate_slower_cpu(compute_s + self._encode_s.get(key, 0.0))
        # The stamp goes into the message, so it is taken before encoding; the round trip is
        # counted from the end of encoding (ready_ns) so device_ms and round_trip_ms do not overlap.
        stamp = self._next_stamp()
        start = time.perf_counter()
        payload = encode_features(feature, bits=action.bits, exit_point=action.exit,
                                  partition_point=action.partition, frame_seq=seq,
                                  device_compute_ms=(start - t0) * 1e3, device_stamp_ns=stamp)
        if compute_s is not None:
            self._encode_s[key] = time.perf_counter() - start
        ready_ns = time.monotonic_ns()
        device_ms = (time.perf_counter() - t0) * 1e3
        self.tracker.sent(Pending(seq, ready_ns / 1e9, stamp, probe, payload_bytes=len(payload),
                                  data=data(device_ms, len(payload), ready_ns)))
        self.sender.send(m.make_features_msg(payload, header, FORMAT), len(payload))
        return stamp

    def _answer_locally(self, seq: int, header: Header, x: torch.Tensor, action: Action, fallback: int,
                        received_ns: int, t0: float) -> None:
        logits, compute_s = self._timed(lambda: self.model.infer(x, self.branch_points[action.exit], action.exit))
        self._emulate_slower_cpu(compute_s)
        probs = torch.softmax(logits[0], dim=0)
        conf, cls = torch.max(probs, dim=0)
        device_ms = (time.perf_counter() - t0) * 1e3
        total = (time.monotonic_ns() - received_ns) / 1e6
        self._publish_result(header, m.Result(
            frame_seq=seq, class_id=int(cls), confidence=float(conf), exit=action.exit, partition=action.partition,
            bits=0, source=m.SOURCE_DEVICE, fallback=fallback, device_ms=device_ms, transfer_ms=0.0, edge_ms=0.0,
            total_ms=total, round_trip_ms=0.0, payload_bytes=0, deadline_ms=self.p['deadline_ms'],
            deadline_met=total <= self.p['deadline_ms']))
        self.c['results_local'].add()

    def _rerun(self, pending: Pending) -> None:
        sent: SentFrame = pending.data
        self.c['edge_timeouts_rerun'].add()
        self._answer_locally(pending.seq, sent.header, sent.x, self.fallback_action, m.FALLBACK_EDGE_TIMEOUT,
                             sent.received_ns, time.perf_counter())

    def _publish_result(self, header: Header, result: m.Result) -> None:
        result.class_name = self.class_names[result.class_id] if 0 <= result.class_id < len(self.class_names) else ''
        if not result.deadline_met:
            self.c['deadline_misses'].add()
        self.result_pub.publish(m.make_result_msg(result, header))

    # ------------------------------------------------------------------ diagnostics and shutdown

    def _diagnostics(self) -> tuple[bytes, str, dict[str, Any]]:
        now = time.monotonic()
        action, fresh = self.keeper.current(now)
        values: dict[str, Any] = {name: meter.total for name, meter in self.c.items()}
        values.update({
            'frame_rate_hz': self.c['frames_in'].rate(), 'processed_rate_hz': self.c['processed'].rate(),
            'decision': action.label(), 'decision_fresh': fresh, 'decision_age_s': self.keeper.age(now),
            'decisions_accepted': self.keeper.accepted, 'edge_down': self.tracker.edge_down,
            'edge_fallback_entries': self.tracker.fallback_entries, 'in_flight': self.tracker.in_flight(),
            'sender_queue': self.sender.queued(),
        })
        if self.p['emulated_link.enabled']:
            values['emulated_bandwidth_mbps'] = self.sender.current_mbps()
        level = level_of([(not fresh, DiagnosticStatus.WARN), (self.tracker.edge_down, DiagnosticStatus.WARN)])
        message = ('edge down: answering locally' if self.tracker.edge_down
                   else 'no fresh decision: fallback action' if not fresh else 'ok')
        return level, message, values

    def close(self) -> None:
        """Stop the worker and sender threads."""
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._worker.join(timeout=5.0)
        self.sender.close()


_FALLBACK_WORDS = {m.FALLBACK_NONE: 'policy decision', m.FALLBACK_NO_DECISION: 'no fresh decision',
                   m.FALLBACK_EDGE_DOWN: 'edge down', m.FALLBACK_EDGE_TIMEOUT: 'edge timeout'}


def main(args: list[str] | None = None) -> int:
    """Console script ``device_node``."""
    return run_node(DeviceNode, args)


if __name__ == '__main__':
    sys.exit(main())
