# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Edge node (workstation side): decode feature messages, finish the network, answer the device.

Serves every robot namespace in ``robot_namespaces``: subscribes ``<ns>/coinfer/features``
and publishes ``<ns>/coinfer/edge_result`` (class, confidence, the echoed device stamp and
the edge compute time; the device turns it into the frame's ``coinfer/result``).  With
``annotated.enabled`` it also publishes ``<ns>/coinfer/annotated``, a small false-colour
image of the received features with the label, for rqt_image_view.  Malformed messages
are rejected, counted in diagnostics and logged at most once per burst; the node goes on.
Nothing is decoded before its header has been checked against ``max_feature_values`` and this
model (action, shape): a message claiming a huge tensor costs a header parse, not an allocation.

A lifecycle node (:class:`~coinfer_device.ros.runtime.ManagedNode`): *configure* loads the
model and creates the publishers and subscriptions; *activate* starts answering; while
*inactive* incoming feature messages are counted (``ignored_inactive``) and dropped.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from cv_bridge import CvBridge
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.exceptions import InvalidTopicNameException
from sensor_msgs.msg import CompressedImage, Image, JointState

from coinfer_device.ros import params as rp
from coinfer_device.core.checkpoint import load_checkpoint
from coinfer_device.core.codec import (MAX_ELEMENTS, CodecError, FeatureHeader, decode_features, parse_format,
                                       peek_header)
from coinfer_device.core.action import Action, check_action
from coinfer_device.core.model import classify
from coinfer_device.ros.params import ParameterError
from coinfer_device.ros.slowdown_topic import SLOWDOWN_PARAMS, SlowdownTopic, slowdown_qos
from coinfer_device.ros.diagnostics import DIAGNOSTIC_PARAMS, Diagnostics, RateMeter, level_of
from coinfer_device.ros.runtime import LIFECYCLE_PARAMS, BurstLogger, ManagedNode, run_node
from coinfer_device.core import records as rec
from coinfer_device.ros import messages as m

QOS = (rp.QosDefault('features', 'coinfer/features', 'reliable', 2),
       rp.QosDefault('edge_result', 'coinfer/edge_result', 'reliable', 10),
       rp.QosDefault('annotated', 'coinfer/annotated', 'best_effort', 1),
       slowdown_qos('edge'))


def _namespaces_check(value: list[str]) -> str | None:
    if not value:
        return "must list at least one namespace ('' = the node's own)"
    if len(set(v.rstrip('/') for v in value)) != len(value):
        return f'has duplicates: {value}'
    return None


PARAMS = [
    rp.Param('model_path', '', "Checkpoint file (.pt with its .json); '' = the default shipped model "
             "(fmnist_alexnet224.pt). "
             'Must be the model the devices run'),
    rp.Param('torch_threads', 1, 'torch intra-op threads (0 = torch default)', lo=0, hi=256),
    rp.Param('robot_namespaces', [''], "Robot namespaces served: '' = this node's namespace, 'r1' relative to it, "
             "'/r1' absolute", check=_namespaces_check),
    rp.Param('annotated.enabled', False, 'Publish <ns>/coinfer/annotated (feature thumbnail + label)'),
    rp.Param('annotated.size', 128, 'Side of the annotated image', lo=32, hi=2048, unit='px'),
    rp.Param('max_feature_values', 1_048_576, 'Feature messages whose header claims more values are rejected '
             'before decoding (decoded size = 4 bytes per value; counted as oversized)', lo=1, hi=MAX_ELEMENTS),
] + SLOWDOWN_PARAMS + rp.qos_params(QOS) + LIFECYCLE_PARAMS + DIAGNOSTIC_PARAMS


class MalformedFeatures(ValueError):
    """A feature message decodes but does not fit the model."""


class OversizedFeatures(MalformedFeatures):
    """A feature message claims more values than ``max_feature_values``."""


@dataclass
class Robot:
    """Publishers and counters of one served namespace."""

    prefix: str
    result_pub: Any
    annotated_pub: Any = None
    received: RateMeter = field(default_factory=RateMeter)
    answered: RateMeter = field(default_factory=RateMeter)
    rejected: RateMeter = field(default_factory=RateMeter)
    oversized: RateMeter = field(default_factory=RateMeter)
    ignored_inactive: RateMeter = field(default_factory=RateMeter)
    last_error: str = ''
    edge_ms_sum: float = 0.0


def topic_prefix(namespace: str) -> str:
    """Return the topic prefix of a robot namespace ('' = own namespace)."""
    ns = namespace.rstrip('/')
    if namespace.startswith('/') and not ns:
        return '/'
    return f'{ns}/' if ns else ''


class EdgeNode(ManagedNode):
    """Finish the network for feature messages of one or more robots."""

    def __init__(self) -> None:
        super().__init__('edge_node')
        self.p = rp.declare(self, PARAMS)
        rp.install_set_callback(self, PARAMS)
        self.model: Any = None
        self.robots: list[Robot] = []
        self._answering = False
        self._rejected_reported = 0
        self.bridge = CvBridge()
        self.warn = BurstLogger(self.get_logger().warning)
        Diagnostics(self, self._diagnostics, task='features')

    def configure_node(self) -> None:
        """Load the model and create the publishers and subscriptions of every served namespace."""
        if self.p['torch_threads'] > 0:
            torch.set_num_threads(self.p['torch_threads'])
        loaded = load_checkpoint(self.p['model_path'] or None)
        self.model, self.class_names = loaded.model, loaded.class_names
        self.branch_points = list(self.model.spec.exit_branch_points)
        self.shapes = {p: tuple(self.model.feature_shape(p)) for p in range(self.model.num_blocks)}
        self._warm_up()
        for ns in self.p['robot_namespaces']:
            prefix = topic_prefix(ns)
            try:
                robot = Robot(prefix, self.own(rp.create_publisher(self, JointState, prefix + 'coinfer/edge_result',
                                                                   self.p, 'edge_result')))
                if self.p['annotated.enabled']:
                    robot.annotated_pub = self.own(rp.create_publisher(self, Image, prefix + 'coinfer/annotated',
                                                                       self.p, 'annotated'))
                self.own(rp.create_subscription(self, CompressedImage, prefix + 'coinfer/features',
                                                lambda msg, r=robot: self._on_features(msg, r), self.p, 'features'))
            except InvalidTopicNameException as exc:
                raise ParameterError(f'{self.get_fully_qualified_name()}: parameter robot_namespaces entry {ns!r} '
                                     f'is not a valid namespace: {str(exc).splitlines()[0]}') from exc
            self.robots.append(robot)
        self.slowdown = SlowdownTopic(self, 'edge', self.model, [r.prefix for r in self.robots])

    def activate_node(self) -> None:
        """Start answering feature messages."""
        self._answering = True

    def deactivate_node(self) -> None:
        """Stop answering (messages are counted and dropped); the model stays loaded."""
        self._answering = False

    def cleanup_node(self) -> None:
        """Release the model, publishers and subscriptions."""
        self._answering = False
        self.destroy_owned()
        self.robots, self.model = [], None

    def _warm_up(self) -> None:
        with torch.inference_mode():
            for p, shape in self.shapes.items():
                self.model.tail(torch.zeros((1,) + shape), p, len(self.branch_points) - 1)

    def ready_summary(self) -> str:
        """Return the one-line description logged with the ready marker."""
        topics = ', '.join(self.resolve_topic_name(r.prefix + 'coinfer/features') for r in self.robots)
        return f'serving {topics}'

    # ------------------------------------------------------------------ processing

    def _on_features(self, msg: CompressedImage, robot: Robot) -> None:
        t0 = time.perf_counter()
        if not self._answering:
            robot.ignored_inactive.add()
            return
        robot.received.add()
        try:
            header, logits, compute_ms = self._infer(msg)
        except (CodecError, MalformedFeatures) as exc:
            robot.rejected.add()
            if isinstance(exc, OversizedFeatures):
                robot.oversized.add()
            robot.last_error = str(exc)
            self.warn.event(f'rejected feature message on {self.resolve_topic_name(robot.prefix + "coinfer/features")}'
                            f': {exc}')
            return
        cls, conf = classify(logits)
        edge_ms = (time.perf_counter() - t0) * 1e3
        result = rec.EdgeResult(frame_seq=header.frame_seq, class_id=cls, confidence=conf,
                                exit=header.exit_point, partition=header.partition_point, bits=header.bits,
                                device_ms=float(header.device_compute_ms), edge_ms=edge_ms,
                                payload_bytes=len(msg.data), device_stamp_ns=header.device_stamp_ns,
                                edge_compute_ms=compute_ms)
        robot.result_pub.publish(m.make_edge_result_msg(result, msg.header))
        self.slowdown.add(compute_ms, Action(header.exit_point, header.partition_point, header.bits))
        robot.answered.add()
        robot.edge_ms_sum += edge_ms
        if robot.annotated_pub is not None:
            robot.annotated_pub.publish(self._annotate(msg, header, cls, conf))

    def _infer(self, msg: CompressedImage) -> tuple[FeatureHeader, torch.Tensor, float]:
        """Check, decode and finish one message; return its header, the logits and the tail's compute time in ms.

        The header is checked (size bound, action, shape) before anything is decoded.
        """
        parse_format(msg.format)
        header = peek_header(msg.data)
        if header.num_elements > self.p['max_feature_values']:
            raise OversizedFeatures(f'frame {header.frame_seq}: shape {header.shape} claims {header.num_elements} '
                                    f'values, more than max_feature_values {self.p["max_feature_values"]}')
        action = Action(header.exit_point, header.partition_point, header.bits)
        problem = check_action(action, self.branch_points)
        if problem is None and header.partition_point >= self.branch_points[header.exit_point]:
            problem = 'a local action has nothing for the edge to do'
        if problem:
            raise MalformedFeatures(f'frame {header.frame_seq}: {problem}')
        expected = self.shapes[header.partition_point]
        if tuple(header.shape[1:]) != expected or header.shape[0] != 1:
            raise MalformedFeatures(f'frame {header.frame_seq}: feature shape {header.shape} does not fit partition '
                                    f'{header.partition_point} of this model (1, {expected}); same model on both '
                                    f'sides?')
        header, feature = decode_features(msg.data)
        start = time.perf_counter()
        with torch.inference_mode():
            logits = self.model.tail(feature, header.partition_point, header.exit_point)
        return header, logits, (time.perf_counter() - start) * 1e3

    def _annotate(self, msg: CompressedImage, header: FeatureHeader, cls: int, conf: float) -> Image:
        size = self.p['annotated.size']
        _, feature = decode_features(msg.data)
        f = feature[0].numpy()
        plane = np.abs(f).mean(axis=0) if f.ndim == 3 else _square(f.reshape(-1))
        lo, hi = float(plane.min()), float(plane.max())
        gray = np.zeros(plane.shape, np.uint8) if hi <= lo else ((plane - lo) * (255.0 / (hi - lo))).astype(np.uint8)
        img = cv2.applyColorMap(cv2.resize(gray, (size, size), interpolation=cv2.INTER_NEAREST), cv2.COLORMAP_VIRIDIS)
        name = rec.class_name(self.class_names, cls) or str(cls)
        action = Action(header.exit_point, header.partition_point, header.bits).label()
        for i, text in enumerate((f'{name} {conf:.2f}', action)):
            org = (3, 14 + 14 * i)
            cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        out = self.bridge.cv2_to_imgmsg(img, encoding='bgr8')
        out.header = msg.header
        return out

    # ------------------------------------------------------------------ diagnostics

    def _diagnostics(self) -> tuple[bytes, str, dict[str, Any]]:
        values: dict[str, Any] = {}
        rejected = 0
        for r in self.robots:
            key = self.resolve_topic_name(r.prefix + 'coinfer/features')
            answered = r.answered.total
            values[f'{key} received'] = r.received.total
            values[f'{key} answered'] = answered
            values[f'{key} rejected'] = r.rejected.total
            values[f'{key} oversized'] = r.oversized.total
            values[f'{key} ignored_inactive'] = r.ignored_inactive.total
            values[f'{key} rate_hz'] = r.answered.rate()
            values[f'{key} mean_edge_ms'] = r.edge_ms_sum / answered if answered else 0.0
            if r.last_error:
                values[f'{key} last_error'] = r.last_error
            rejected += r.rejected.total
        values['rejected_total'] = rejected
        recent = rejected - self._rejected_reported
        self._rejected_reported = rejected
        level = level_of([(recent > 0, DiagnosticStatus.WARN)])
        return level, f'{recent} malformed feature messages rejected since the last report' if recent else 'ok', values


def _square(v: np.ndarray) -> np.ndarray:
    side = int(np.ceil(np.sqrt(v.size)))
    out = np.zeros(side * side, v.dtype)
    out[:v.size] = np.abs(v)
    return out.reshape(side, side)


def main(args: list[str] | None = None) -> int:
    """Console script ``edge_node``."""
    return run_node(EdgeNode, args)


if __name__ == '__main__':
    sys.exit(main())
