# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Device node (robot side): camera frame -> head of the network -> features to the edge, or a local result.

A thin ROS adapter of :class:`coinfer_device.core.pipeline.DevicePipeline`, which does the
per-frame work (action choice and fallback, head, encoding, edge answers, re-runs, probes,
slow-CPU emulation; docs/topics.md, "Device behaviour").  This node declares the parameters,
reads ``image_raw``, ``coinfer/decision``, ``coinfer/edge_result``, ``coinfer/link/*`` and the
camera's frame numbers (``coinfer/ground_truth``, for :mod:`coinfer_device.core.frame_accounting`),
publishes ``coinfer/features`` (on the inference thread, from a sender thread with
``publish_thread``, or through the in-process link emulator) and ``coinfer/result``, and
reports diagnostics.

A lifecycle node (:class:`~coinfer_device.ros.runtime.ManagedNode`): *configure* loads the
model and creates the publishers, subscriptions and the pipeline; *activate* starts taking
frames; *deactivate* stops taking frames (the model stays loaded, results of frames still in
flight are not published); *cleanup* releases everything.
"""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from typing import Any

import torch
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float32, Header, Int32MultiArray

from coinfer_device.core import records as rec
from coinfer_device.core.checkpoint import load_checkpoint
from coinfer_device.core.codec import FORMAT
from coinfer_device.core.frame_accounting import FrameAccounting
from coinfer_device.core.image_conversion import image_msg_to_frame
from coinfer_device.core.link_emulator import Bottleneck, LinkEmulator, schedule_from_params
from coinfer_device.core.pipeline import (RUNTIME_SETTABLE, DevicePipeline, PipelineConfig, checked_action,
                                          probe_candidates, timeout_check_period_s, warm_up)
from coinfer_device.core.sender import InlineSender, Sender, ThreadSender
from coinfer_device.ros import messages as m
from coinfer_device.ros import params as rp
from coinfer_device.ros.params import ParameterError
from coinfer_device.ros.slowdown_topic import SLOWDOWN_PARAMS, SlowdownTopic, slowdown_qos
from coinfer_device.ros.diagnostics import DIAGNOSTIC_PARAMS, Diagnostics, FrequencyStatus, level_of
from coinfer_device.ros.conventions import FRAME_COUNTS_MARKER
from coinfer_device.ros.runtime import LIFECYCLE_PARAMS, BurstLogger, ManagedNode, run_node

QOS = (rp.QosDefault('image', 'image_raw', 'best_effort', 1),
       rp.QosDefault('features', 'coinfer/features', 'reliable', 2),
       rp.QosDefault('decision', 'coinfer/decision', 'reliable', 1, 'transient_local'),
       rp.QosDefault('edge_result', 'coinfer/edge_result', 'reliable', 10),
       rp.QosDefault('result', 'coinfer/result', 'reliable', 10),
       rp.QosDefault('link', 'coinfer/link/*', 'best_effort', 1),
       rp.QosDefault('ground_truth', 'coinfer/ground_truth', 'reliable', 10),
       slowdown_qos('device'))


def _positive_schedule(value: list[float]) -> str | None:
    return None if value and all(v > 0 for v in value) else 'must be a non-empty list of bandwidths > 0'


PARAMS = [
    rp.Param('model_path', '', "Checkpoint file (.pt with its .json); '' = the default shipped model "
             "(fmnist_alexnet224.pt)"),
    rp.Param('torch_threads', 1, 'torch intra-op threads (0 = torch default)', lo=0, hi=256),
    rp.Param('deadline_ms', 100.0, 'Per-frame latency deadline for deadline_met (keep equal to the policy deadline)',
             lo=0.1, hi=1e6, dynamic=True, unit='ms'),
    rp.Param('decision_timeout_s', 2.0, 'A decision older than this (receipt time) is stale: fallback_action '
             'applies', lo=0.01, hi=3600.0, dynamic=True, unit='s'),
    rp.Param('fallback_action', [0, 2, 0], 'Local [exit, partition, bits] used without a fresh decision, while '
             'the edge is down and to re-run unanswered frames (default the earliest exit: the only one that meets '
             'a 100 ms deadline on a Pi-class robot with the 224 x 224 model)', check=rp.action_check),
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
    rp.Param('probe_actions', [2, 9, 8, 2, 8, 4, 2, 8, 8, 2, 8, 16, 2, 8, 32, 2, 4, 8, 2, 2, 8],
             'Remote actions probes may use: flat list of [exit, partition, bits] triples; the smallest serves as the '
             'small probe, the large probe is chosen by probe_target_ms (default, 224 x 224 model: 1 kB; 5, 9, 18, 33, '
             '37 and 47 kB; small model: 0.3 kB; 4 and 8 kB)', check=rp.triples_check),
    rp.Param('probe_small_bytes', 2048, 'Messages up to this size measure the RTT (keep equal to the link '
             "monitor's small_payload_bytes)", lo=0, unit='bytes'),
    rp.Param('probe_large_bytes', 4096, 'Messages from this size measure the bandwidth (keep equal to the link '
             "monitor's min_bandwidth_payload_bytes)", lo=1, unit='bytes'),
    rp.Param('probe_target_ms', 25.0, 'The large probe is the largest of probe_actions that serializes within '
             'this at the measured bandwidth (coinfer/link/bandwidth_mbps, or the newest large probe\'s own when '
             'lower), else the smallest large one; the largest while nothing is measured', lo=0.0, hi=60000.0,
             unit='ms'),
    rp.Param('publish_thread', False, 'Publish feature messages from a sender thread, so a slow link never '
             'blocks inference (false: publish on the inference thread, one thread hand-off less per frame; '
             'ignored with emulated_link.enabled, which has its own thread)'),
    rp.Param('emulated_link.enabled', False, 'Delay feature messages through the in-process link emulator'),
    rp.Param('emulated_link.bandwidth_schedule_mbps', [10.0], 'Emulated bandwidth steps', check=_positive_schedule,
             unit='Mbit/s'),
    rp.Param('emulated_link.step_s', 5.0, 'Duration of each bandwidth step', lo=0.001, hi=1e6, unit='s'),
    rp.Param('emulated_link.loop', True, 'Cycle the bandwidth schedule (else hold the last value)'),
    rp.Param('emulated_link.rtt_ms', 20.0, 'Emulated round-trip time added to every feature message', lo=0.0,
             hi=60000.0, unit='ms'),
    rp.Param('emulated_link.max_queue_ms', 2000.0, 'Tail-drop a feature message that would wait longer than '
             'this for the emulated link', lo=0.0, hi=1e7, unit='ms'),
    rp.Param('diagnostics.min_frame_rate_hz', 5.0, 'The image_raw rate check warns below this (x 0.9) and reports an '
             'error when no frame arrives', lo=0.0, hi=1000.0, unit='Hz'),
] + SLOWDOWN_PARAMS + rp.qos_params(QOS) + LIFECYCLE_PARAMS + DIAGNOSTIC_PARAMS


class DeviceNode(ManagedNode):
    """ROS adapter of :class:`~coinfer_device.core.pipeline.DevicePipeline` (see module docstring)."""

    def __init__(self) -> None:
        super().__init__('device_node')
        self.p = rp.declare(self, PARAMS)
        rp.install_set_callback(self, PARAMS, self._on_param)
        self.model: Any = None
        self.pipeline: DevicePipeline | None = None
        self.timeout_timer: Any = None
        self._taking_frames = False
        self._worker_started = False
        self._lost_reported = 0
        self.accounting = FrameAccounting()
        self.warn_decisions = BurstLogger(self.get_logger().warning)
        self.diagnostics = Diagnostics(self)
        self.diagnostics.add('pipeline', self._diagnostics)
        self.frame_rate = self.diagnostics.add_frequency(
            'image_raw rate', FrequencyStatus(self.p['diagnostics.min_frame_rate_hz']))

    # ------------------------------------------------------------------ lifecycle

    def configure_node(self) -> None:
        """Load the model, create the publishers, subscriptions, timer, sender and pipeline."""
        if self.p['torch_threads'] > 0:
            torch.set_num_threads(self.p['torch_threads'])
        loaded = load_checkpoint(self.p['model_path'] or None)
        self.model = loaded.model
        config = self._config()
        schedule = None
        if self.p['emulated_link.enabled']:
            schedule = schedule_from_params(self.p['emulated_link.bandwidth_schedule_mbps'],
                                            self.p['emulated_link.step_s'], self.p['emulated_link.loop'])
        warm_up(self.model)
        self.slowdown = SlowdownTopic(self, 'device', self.model)

        self.features_pub = self.own(rp.create_publisher(self, CompressedImage, 'coinfer/features', self.p,
                                                         'features'))
        self.result_pub = self.own(rp.create_publisher(self, JointState, 'coinfer/result', self.p, 'result'))
        for msg_type, topic, callback, key in (
                (Image, 'image_raw', self._on_image, 'image'),
                (JointState, 'coinfer/ground_truth', self._on_frame_announced, 'ground_truth'),
                (Int32MultiArray, 'coinfer/decision', self._on_decision, 'decision'),
                (JointState, 'coinfer/edge_result', self._on_edge_result, 'edge_result'),
                (Float32, 'coinfer/link/bandwidth_mbps', lambda msg: self.pipeline.set_link_bandwidth(msg.data),
                 'link'),
                (Float32, 'coinfer/link/rtt_ms', lambda msg: self.pipeline.set_link_rtt(msg.data), 'link')):
            self.own(rp.create_subscription(self, msg_type, topic, callback, self.p, key))
        self.timeout_timer = self.own(self.create_timer(timeout_check_period_s(self.p['edge_timeout_ms']),
                                                        lambda: self.pipeline.check_timeouts()))

        # The sender's thread starts last: nothing above may fail after it.
        sender: Sender
        if schedule is not None:
            bottleneck = Bottleneck(schedule, self.p['emulated_link.rtt_ms'], self.p['emulated_link.max_queue_ms'])
            sender = LinkEmulator(bottleneck, self.features_pub.publish,
                                  on_drop=lambda _msg: self.pipeline.counters.add('link_drops'))
        elif self.p['publish_thread']:
            sender = ThreadSender(self.features_pub.publish)
        else:
            sender = InlineSender(self.features_pub.publish)
        self.pipeline = DevicePipeline(
            self.model, loaded.preprocessing, loaded.class_names, config, sender=sender,
            publish_result=self._publish_result, make_features=partial(m.make_features_msg, fmt=FORMAT),
            log=self.get_logger(), clock_ns=time.monotonic_ns, sleep=time.sleep, convert=image_msg_to_frame,
            warn_rejected=BurstLogger(self.get_logger().warning).event)

    def activate_node(self) -> None:
        """Start taking frames (the inference thread starts on the first activation)."""
        if not self._worker_started:
            self.pipeline.start()
            self._worker_started = True
        self._taking_frames = True

    def deactivate_node(self) -> None:
        """Stop taking frames and log the frame counters (every frame's fate); the model and the pipeline stay."""
        self._taking_frames = False
        if self.pipeline is not None:
            self.accounting.settle(time.monotonic())
            counts = {**self.pipeline.counters.totals(), 'in_flight': self.pipeline.tracker.in_flight(),
                      **self.accounting.values()}
            self.get_logger().info(f'{FRAME_COUNTS_MARKER} {json.dumps(counts, sort_keys=True)}')

    def cleanup_node(self) -> None:
        """Stop the pipeline's threads and release the model, publishers, subscriptions and timer."""
        self._taking_frames = False
        if self.pipeline is not None:
            self.pipeline.close()
        self.pipeline, self.model, self._worker_started, self.timeout_timer = None, None, False, None
        self.destroy_owned()

    def _config(self) -> PipelineConfig:
        """Return the pipeline's settings; a bad action is a :class:`ParameterError` naming its parameter."""
        branch_points = self.model.spec.exit_branch_points
        name = 'fallback_action'
        try:
            fallback = checked_action(self.p[name], branch_points, local=True)
            name = 'probe_actions'
            candidates = probe_candidates(self.model, self.p[name], self.p['probe_small_bytes'],
                                          self.p['probe_large_bytes'], need_both=self.p['probe_interval_s'] > 0)
        except ValueError as exc:
            raise ParameterError(f'{self.get_fully_qualified_name()}: parameter {name!r} {exc}') from None
        return PipelineConfig(fallback, candidates, **{k: self.p[k] for k in (
            'deadline_ms', 'decision_timeout_s', 'compute_slowdown', 'edge_timeout_ms', 'edge_fallback_after',
            'probe_interval_s', 'probe_small_bytes', 'probe_large_bytes', 'probe_target_ms')})

    def ready_summary(self) -> str:
        """Return the one-line description logged with the ready marker."""
        link = 'emulated link' if self.p['emulated_link.enabled'] else 'direct link'
        slower = f', CPU emulated {self.p["compute_slowdown"]:g}x slower' if self.p['compute_slowdown'] > 1 else ''
        return (f'model {self.model.spec.exit_branch_points} exits, '
                f'fallback {self.pipeline.config.fallback_action.label()}, {link}, '
                f'deadline {self.p["deadline_ms"]:g} ms{slower}')

    def _on_param(self, name: str, value: Any) -> None:
        self.p[name] = value
        if name in RUNTIME_SETTABLE and self.pipeline is not None:
            self.pipeline.configure(name, value)
            if name == 'edge_timeout_ms' and self.timeout_timer is not None:
                self.timeout_timer.timer_period_ns = timeout_check_period_s(value) * 1e9

    # ------------------------------------------------------------------ callbacks (executor thread)

    def _on_image(self, msg: Image) -> None:
        self.accounting.image(m.stamp_ns(msg.header), time.monotonic())
        self.frame_rate.tick()
        if self._taking_frames:
            self.pipeline.submit(msg, msg.header)  # converted on the worker thread

    def _on_frame_announced(self, msg: JointState) -> None:
        seq = m.read_ground_truth_frame_seq(msg)
        if seq is not None:
            self.accounting.announce(m.stamp_ns(msg.header), seq, time.monotonic())

    def _on_decision(self, msg: Int32MultiArray) -> None:
        try:
            problem = self.pipeline.offer_decision(m.read_decision(msg))
        except rec.MessageError as exc:
            self.pipeline.counters.add('rejected_decisions')
            problem = str(exc)
        if problem:
            self.warn_decisions.event(f'rejected decision: {problem}')

    def _on_edge_result(self, msg: JointState) -> None:
        now_ns = time.monotonic_ns()
        try:
            answer = m.read_edge_result(msg)
        except rec.MessageError:
            answer = None
        self.pipeline.on_edge_result(answer, now_ns)

    def _publish_result(self, header: Header, result: rec.Result) -> None:
        self.result_pub.publish(m.make_result_msg(result, header))
        # With compute_slowdown k the robot's CPU is emulated k times slower: that is what the device feels.
        self.slowdown.add(result.device_compute_ms * self.p['compute_slowdown'], result.action)

    # ------------------------------------------------------------------ diagnostics and shutdown

    def _diagnostics(self) -> tuple[bytes, str, dict[str, Any]]:
        values = self.pipeline.diagnostic_values()
        if self.p['emulated_link.enabled']:
            values['emulated_bandwidth_mbps'] = self.pipeline.sender.current_mbps()
        self.accounting.settle(time.monotonic())
        values.update(self.accounting.values())
        lost = self.accounting.lost - self._lost_reported
        self._lost_reported = self.accounting.lost
        fresh, down = values['decision_fresh'], values['edge_down']
        level = level_of([(not fresh, DiagnosticStatus.WARN), (down, DiagnosticStatus.WARN),
                          (lost > 0, DiagnosticStatus.WARN)])
        message = ('edge down: answering locally' if down else 'no fresh decision: fallback action' if not fresh
                   else f'{lost} camera frames lost since the last report' if lost else 'ok')
        return level, message, values


def main(args: list[str] | None = None) -> int:
    """Console script ``device_node``."""
    return run_node(DeviceNode, args)


if __name__ == '__main__':
    sys.exit(main())
