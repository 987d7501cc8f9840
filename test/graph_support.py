# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Helpers of the ROS graph tests: a probe node in the test process and shipped-asset lookup.

The probe is a real rclpy node (a :class:`~coinfer_device.ros.background.BackgroundNode`: own
context, own executor thread) that records what the nodes under test publish and publishes
decisions or raw feature messages into the graph.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float32, Int32MultiArray

from coinfer_device.core.paths import shipped
from coinfer_device.core.action import Action
from coinfer_device.ros import messages as m
from coinfer_device.ros.background import BackgroundNode
from coinfer_device.ros.conventions import DIAGNOSTICS_TOPIC
from conftest import require_file

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
DECISION_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SENSOR = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)


# The graph tests run the small shipped model (cheap on a 2-core CI machine); the default shipped model is the
# 224 x 224 AlexNet, checked by its own tests.
TEST_MODEL = 'small'


def model_checkpoint() -> Path:
    """Return the checkpoint the graph tests run (``COINFER_TEST_MODEL`` or the small shipped one)."""
    return require_file(Path(os.environ.get('COINFER_TEST_MODEL') or shipped(TEST_MODEL).checkpoint),
                        'model checkpoint')


def profile_file() -> Path:
    """Return the profile the policy tests use (``COINFER_TEST_PROFILE`` or the small shipped model's)."""
    return require_file(Path(os.environ.get('COINFER_TEST_PROFILE') or shipped(TEST_MODEL).profile),
                        'machine profile')


def policy_file() -> Path:
    """Return the SAC-d policy trained on :func:`profile_file` (the small shipped model's)."""
    from coinfer_edge.core.policy import default_policy_path
    return require_file(default_policy_path(TEST_MODEL), 'SAC-d policy')


# rclpy 9 (Jazzy) at interpreter exit: the garbage collector finalizes a Task whose __init__ never ran to the end
# (an executor shutting down mid-schedule) and its Future.__del__ prints this; nothing of ours is involved.
_RCLPY_TASK_DEL = re.compile(
    r"Exception ignored in: <function Future\.__del__ at 0x[0-9a-f]+>\nTraceback \(most recent call last\):\n"
    r"(?:  .*\n)+?AttributeError: 'Task' object has no attribute '_exception'\n?")


def without_rclpy_exit_noise(output: str) -> str:
    """Return a node's output without rclpy's known finalizer message at interpreter exit (see above)."""
    return _RCLPY_TASK_DEL.sub('', output)


@dataclass
class Received:
    """One received record: receipt time (monotonic s), header stamp (ns), frame_id, parsed payload."""

    t: float
    stamp: int
    frame_id: str
    value: Any


class Collector:
    """Thread-safe list of :class:`Received` with waiting."""

    def __init__(self) -> None:
        self.items: list[Received] = []
        self._cv = threading.Condition()

    def add(self, item: Received) -> None:
        """Append one item."""
        with self._cv:
            self.items.append(item)
            self._cv.notify_all()

    def snapshot(self, start: int = 0) -> list[Received]:
        """Return a copy of the items from index ``start``."""
        with self._cv:
            return list(self.items[start:])

    def __len__(self) -> int:
        """Return the number of items."""
        with self._cv:
            return len(self.items)

    def wait(self, predicate: Callable[[list[Received]], bool], timeout: float, start: int = 0) -> bool:
        """Wait until ``predicate(items[start:])`` holds; return whether it did."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not predicate(self.items[start:]):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(min(remaining, 0.2))
            return True


class Probe:
    """An rclpy node in the test process (see module docstring)."""

    def __init__(self, name: str = 'test_probe') -> None:
        self._background = BackgroundNode(name)
        self.node = self._background.node
        self._lock = threading.Lock()
        self._decisions: dict[str, tuple[Any, Action | None]] = {}
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.statuses: dict[str, DiagnosticStatus] = {}
        self.node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diag, RELIABLE)
        self.node.create_timer(0.2, self._republish)

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self._background.close()

    # ------------------------------------------------------------------ recording

    def results(self, topic: str = 'coinfer/result') -> Collector:
        """Record ``coinfer/result`` records."""
        return self._record(JointState, topic, m.read_result, RELIABLE)

    def edge_results(self, topic: str = 'coinfer/edge_result') -> Collector:
        """Record ``coinfer/edge_result`` records."""
        return self._record(JointState, topic, m.read_edge_result, RELIABLE)

    def ground_truth(self, topic: str = 'coinfer/ground_truth') -> Collector:
        """Record ground-truth labels."""
        return self._record(JointState, topic, m.read_ground_truth, RELIABLE)

    def decisions(self, topic: str = 'coinfer/decision') -> Collector:
        """Record published decisions; being transient-local, the latest one arrives on subscribing."""
        return self._record(Int32MultiArray, topic, m.read_decision, DECISION_QOS, stamped=False)

    def images(self, topic: str) -> Collector:
        """Record ``(width, height, encoding)`` of a sensor_msgs/Image topic (sensor-data QoS)."""
        return self._record(Image, topic, lambda msg: (msg.width, msg.height, msg.encoding), SENSOR)

    def floats(self, topic: str) -> Collector:
        """Record a std_msgs/Float32 topic (sensor-data QoS)."""
        return self._record(Float32, topic, lambda msg: float(msg.data), SENSOR, stamped=False)

    def _record(self, msg_type: Any, topic: str, parse: Callable[[Any], Any], qos: QoSProfile,
                stamped: bool = True) -> Collector:
        collector = Collector()

        def callback(msg: Any) -> None:
            stamp = m.stamp_ns(msg.header) if stamped else 0
            frame_id = msg.header.frame_id if stamped else ''
            collector.add(Received(time.monotonic(), stamp, frame_id, parse(msg)))

        self.node.create_subscription(msg_type, topic, callback, qos)
        return collector

    def _on_diag(self, msg: DiagnosticArray) -> None:
        with self._lock:
            for status in msg.status:
                self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}
                self.statuses[status.name] = status

    def status(self, name: str) -> DiagnosticStatus | None:
        """Return the latest ``DiagnosticStatus`` named ``name`` (level, message, hardware_id, values)."""
        with self._lock:
            return self.statuses.get(name)

    def diagnostic(self, name: str) -> dict[str, str]:
        """Return the latest diagnostic values of status ``name`` (empty if none yet)."""
        with self._lock:
            return dict(self.diagnostics.get(name, {}))

    def wait_diagnostic(self, name: str, predicate: Callable[[dict[str, str]], bool], timeout: float) -> dict:
        """Wait until the status ``name`` satisfies ``predicate``; return its latest values."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            values = self.diagnostic(name)
            if values and predicate(values):
                return values
            time.sleep(0.1)
        return self.diagnostic(name)

    # ------------------------------------------------------------------ publishing

    def set_decision(self, action: Action | None, topic: str = 'coinfer/decision') -> None:
        """Publish ``action`` on ``topic`` every 0.2 s from now on (``None`` stops publishing)."""
        with self._lock:
            if action is None:  # also drop the transient-local sample a late subscriber would get
                if topic in self._decisions:
                    self.node.destroy_publisher(self._decisions.pop(topic)[0])
                return
            if topic not in self._decisions:
                self._decisions[topic] = (self.node.create_publisher(Int32MultiArray, topic, DECISION_QOS), None)
            pub = self._decisions[topic][0]
            self._decisions[topic] = (pub, action)
        pub.publish(m.make_decision_msg(action))

    def _republish(self) -> None:
        with self._lock:
            items = list(self._decisions.values())
        for pub, action in items:
            if action is not None:
                pub.publish(m.make_decision_msg(action))

    def publisher(self, msg_type: Any, topic: str, qos: QoSProfile = RELIABLE) -> Any:
        """Create a publisher on the probe node."""
        return self.node.create_publisher(msg_type, topic, qos)

    def features_publisher(self, topic: str = 'coinfer/features') -> Any:
        """Create a publisher of raw ``sensor_msgs/CompressedImage`` feature messages."""
        return self.publisher(CompressedImage, topic, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))

    def wait_for_subscribers(self, publisher: Any, count: int = 1, timeout: float = 15.0) -> bool:
        """Wait until ``publisher`` has matched ``count`` subscriptions."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if publisher.get_subscription_count() >= count:
                return True
            time.sleep(0.05)
        return False


AGGREGATOR_YAML = Path(__file__).resolve().parents[1] / 'config' / 'diagnostics_aggregator.yaml'


def analyzer_paths(status_name: str, path: Path = AGGREGATOR_YAML) -> list[str]:
    """Return the aggregated paths (``coinfer/Robot/Device``) of every GenericAnalyzer that takes a status name.

    Matching as diagnostic_aggregator's GenericAnalyzer does it: ``name`` (equal), ``startswith``,
    ``contains`` and ``regex`` (whole name).
    """
    params = yaml.safe_load(path.read_text())['analyzers']['ros__parameters']

    def walk(section: dict, prefix: str) -> list[str]:
        found = []
        for key, item in section.items():
            if not isinstance(item, dict) or 'type' not in item:
                continue
            where = f'{prefix}/{item["path"]}'
            if item['type'] == 'diagnostic_aggregator/AnalyzerGroup':
                found += walk(item['analyzers'], where)
            elif item['type'] == 'diagnostic_aggregator/GenericAnalyzer' and (
                    status_name in item.get('name', []) or any(status_name.startswith(v) for v in item.get(
                        'startswith', [])) or any(v in status_name for v in item.get('contains', []))
                    or any(re.fullmatch(v, status_name) for v in item.get('regex', []))):
                found.append(where)
        return found
    return walk(params, params['path'])


def wait_future(future: Any, timeout: float = 10.0) -> Any:
    """Wait for an rclpy future completed by the probe's executor; return its result."""
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert future.done(), 'service did not answer'
    return future.result()


def accuracy(results: list[Received], truth: list[Received]) -> tuple[float, int]:
    """Return (accuracy, matched count) of results joined with ground truth by header stamp."""
    labels = {g.stamp: g.value for g in truth}
    matched = [r for r in results if r.stamp in labels]
    if not matched:
        return 0.0, 0
    return sum(labels[r.stamp] == r.value.class_id for r in matched) / len(matched), len(matched)
