# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The demo's monitor: an rclpy node in the demo process that records what the graph publishes.

It keeps every result, ground-truth label and decision with its receipt time, the link
estimates, both CPU loads, both measured compute slowdowns and the device's emulated bandwidth
(from its diagnostics), for the live status line and the final report (:mod:`coinfer_edge.demo.cli`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32, Int32MultiArray

from coinfer_device.core import records as rec
from coinfer_device.ros import messages as m
from coinfer_device.ros.background import BackgroundNode
from coinfer_device.ros.conventions import DIAGNOSTICS_TOPIC

# Telemetry series: key -> Float32 topic (the emulated bandwidth comes from the device's diagnostics).
TELEMETRY = {'bandwidth_mbps': 'coinfer/link/bandwidth_mbps', 'rtt_ms': 'coinfer/link/rtt_ms',
             'device_load': 'coinfer/device/cpu_load', 'edge_load': 'coinfer/edge/cpu_load',
             'device_slowdown': 'coinfer/device/compute_slowdown', 'edge_slowdown': 'coinfer/edge/compute_slowdown'}
EMULATED = 'emulated_mbps'

Snapshot = tuple[list[tuple[float, int, rec.Result]], dict[int, int], list[tuple[float, str]],
                 dict[str, list[tuple[float, float]]]]


class Monitor:
    """Record the graph's results, labels, decisions and telemetry (see module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: list[tuple[float, int, rec.Result]] = []
        self.truth: dict[int, int] = {}
        self.decisions: list[tuple[float, str]] = []
        self.series: dict[str, list[tuple[float, float]]] = {key: [] for key in (*TELEMETRY, EMULATED)}
        self.bad_messages = 0
        self._background = BackgroundNode('coinfer_demo_monitor')
        reliable = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        sensor = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        n = self._background.node
        n.create_subscription(JointState, 'coinfer/result', self._on_result, reliable)
        n.create_subscription(JointState, 'coinfer/ground_truth', self._on_truth, reliable)
        n.create_subscription(Int32MultiArray, 'coinfer/decision', self._on_decision, latched)
        for key, topic in TELEMETRY.items():
            n.create_subscription(Float32, topic, lambda msg, k=key: self._add(k, float(msg.data)), sensor)
        n.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diagnostics, reliable)

    def _add(self, key: str, value: float) -> None:
        with self.lock:
            self.series[key].append((time.monotonic(), value))

    def _on_result(self, msg: Any) -> None:
        try:
            result = m.read_result(msg)
        except rec.MessageError:
            self.bad_messages += 1
            return
        with self.lock:
            self.results.append((time.monotonic(), m.stamp_ns(msg.header), result))

    def _on_truth(self, msg: Any) -> None:
        try:
            label = m.read_ground_truth(msg)
        except rec.MessageError:
            self.bad_messages += 1
            return
        with self.lock:
            self.truth[m.stamp_ns(msg.header)] = label

    def _on_decision(self, msg: Any) -> None:
        try:
            action = m.read_decision(msg)
        except rec.MessageError:
            self.bad_messages += 1
            return
        with self.lock:
            self.decisions.append((time.monotonic(), action.label()))

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            if status.name.split(': ', 1)[0].rsplit('/', 1)[-1] != 'device_node':  # "<ns>/device_node: <task>"
                continue
            for kv in status.values:
                if kv.key == 'emulated_bandwidth_mbps':
                    try:
                        self._add(EMULATED, float(kv.value))
                    except ValueError:
                        pass

    def latest(self, key: str) -> float | None:
        """Return the newest value of a telemetry series."""
        with self.lock:
            items = self.series[key]
            return items[-1][1] if items else None

    def snapshot(self) -> Snapshot:
        """Return copies of everything recorded so far: results, truth, decisions, telemetry series."""
        with self.lock:
            return (list(self.results), dict(self.truth), list(self.decisions),
                    {k: list(v) for k, v in self.series.items()})

    def close(self) -> None:
        """Stop spinning and shut the node's context down."""
        self._background.close()
