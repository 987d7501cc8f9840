# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""A synthetic coinfer recording written with the package's bag writer (no ROS graph), with its expected facts.

Timeline (seconds after the start): results at 10 Hz from 0.03 s, labelled, every third one
misclassified; link telemetry at 5 Hz from 1.0 s; CPU loads at 2 Hz from 0.5 s; decisions at 5 Hz
from 1.55 s alternating every 2 s between :data:`REMOTE` and :data:`LOCAL`.  Before the first
decision the device answers with :data:`LOCAL` as ``fallback`` 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.typesys import Stores, get_typestore

from coinfer_device.core import bags
from coinfer_device.core.action import Action
from coinfer_device.core.profile import Profile
from coinfer_device.core.records import NS_PER_S, Result, result_names_positions

REMOTE = Action(2, 4, 8)
LOCAL = Action(2, 10, 0)
# the robot: 1 ms per frame outside the model, the model 6x slower than the shipped profile; edge 2x
DEVICE_OVERHEAD_MS, DEVICE_SCALE, EDGE_SCALE = 1.0, 6.0, 2.0
_PROFILE = Profile.load()
DEVICE_MS = {a: DEVICE_OVERHEAD_MS + DEVICE_SCALE * _PROFILE.device_compute_ms(a) for a in (REMOTE, LOCAL)}
EDGE_MS = {REMOTE: EDGE_SCALE * _PROFILE.edge_compute_ms(REMOTE), LOCAL: 0.0}
TRANSFER_MS = {REMOTE: 20.0, LOCAL: 0.0}
FRAMEWORK_MS = 1.0
DEADLINE_MS = 20.0
T0_NS = 1_700_000_000 * NS_PER_S
TS = get_typestore(Stores.ROS2_JAZZY)


def _t(s: float) -> int:
    return T0_NS + int(round(s * NS_PER_S))


def _header(t_ns: int):
    return TS.types['std_msgs/msg/Header'](
        stamp=TS.types['builtin_interfaces/msg/Time'](sec=t_ns // NS_PER_S, nanosec=t_ns % NS_PER_S), frame_id='camera')


def _joint_state(t_ns: int, names: list[str], positions: list[float]) -> bytes:
    msg = TS.types[bags.JOINT_STATE](header=_header(t_ns), name=names, position=np.array(positions, float),
                                     velocity=np.array([], float), effort=np.array([], float))
    return bytes(TS.serialize_cdr(msg, bags.JOINT_STATE))


def _float(value: float) -> bytes:
    return bytes(TS.serialize_cdr(TS.types[bags.FLOAT32](data=value), bags.FLOAT32))


def _decision(action: Action) -> bytes:
    t = TS.types
    layout = t['std_msgs/msg/MultiArrayLayout'](
        dim=[t['std_msgs/msg/MultiArrayDimension'](label='exit,partition,bits', size=3, stride=3)], data_offset=0)
    msg = t['std_msgs/msg/Int32MultiArray'](layout=layout, data=np.array(action.to_list(), np.int32))
    return bytes(TS.serialize_cdr(msg, 'std_msgs/msg/Int32MultiArray'))


def bandwidth_at(s: float) -> float:
    """Return the recorded bandwidth (Mbit/s) at ``s`` seconds: 8 before 10.1 s (between two samples), then 2."""
    return 8.0 if s < 10.1 else 2.0


def decided_action(k: int) -> Action:
    """Return decision ``k`` (every 0.2 s from 1.55 s; 10 decisions = 2 s per action)."""
    return REMOTE if (k // 10) % 2 == 0 else LOCAL


@dataclass
class Expected:
    """What the synthetic bag holds."""

    results: int = 0
    decisions: int = 0
    telemetry: int = 0
    loads: int = 0
    labelled: int = 0
    correct: int = 0
    first_link_s: float = 1.0
    last_telemetry_s: float = 0.0
    total_ms: dict = field(default_factory=dict)


def write_synthetic_bag(path: Path, duration_s: float = 20.0, namespace: str = '/', storage: str = 'mcap',
                        split_s: float = 0.0, device_slowdown: float | None = None) -> Expected:
    """Write the recording described in the module docstring; return what it holds.

    ``device_slowdown``: also a measured device compute slowdown of this value every 0.5 s.
    """
    exp = Expected()
    w = bags.BagWriter(path, storage, split_s=split_s)
    for t in bags.recorded_topics():
        w.add_topic(bags.full_topic(namespace, t.name), t.msgtype)
    events: list[tuple[float, str, bytes]] = []
    decision_times = np.arange(1.55, duration_s, 0.2)
    for k, s in enumerate(decision_times):
        events.append((s, bags.DECISION, _decision(decided_action(k))))
    exp.decisions = len(decision_times)
    for i, s in enumerate(np.arange(0.03, duration_s, 0.1)):
        k = int(np.searchsorted(decision_times, s)) - 1
        action = decided_action(k) if k >= 0 else LOCAL
        total = DEVICE_MS[action] + TRANSFER_MS[action] + EDGE_MS[action] + FRAMEWORK_MS
        label = i % 10
        predicted = label if i % 3 else (label + 1) % 10
        r = Result(frame_seq=i, class_id=predicted, confidence=0.9, exit=action.exit, partition=action.partition,
                   bits=action.bits, source=int(action == REMOTE), fallback=0 if k >= 0 else 1,
                   device_ms=DEVICE_MS[action], transfer_ms=TRANSFER_MS[action], edge_ms=EDGE_MS[action],
                   total_ms=total, round_trip_ms=TRANSFER_MS[action] + EDGE_MS[action],
                   payload_bytes=4160 if action == REMOTE else 0, deadline_ms=DEADLINE_MS,
                   deadline_met=total <= DEADLINE_MS, device_compute_ms=DEVICE_MS[action] / 2,
                   edge_compute_ms=EDGE_MS[action] / 2)
        stamp = _t(s - 0.02)
        events.append((s, bags.RESULT, _joint_state(stamp, *result_names_positions(r))))
        events.append((s - 0.01, bags.GROUND_TRUTH, _joint_state(stamp, ['class_id'], [float(label)])))
        exp.results += 1
        exp.labelled += 1
        exp.correct += predicted == label
        exp.total_ms[i] = total
    for s in np.arange(1.0, duration_s, 0.2):
        events.append((s, bags.BANDWIDTH, _float(bandwidth_at(s))))
        events.append((s + 0.01, bags.RTT, _float(5.0)))
        exp.telemetry += 1
        exp.last_telemetry_s = max(exp.last_telemetry_s, s + 0.01)
    for s in np.arange(0.5, duration_s, 0.5):
        events.append((s, bags.DEVICE_LOAD, _float(0.25)))
        events.append((s + 0.02, bags.EDGE_LOAD, _float(0.5)))
        if device_slowdown is not None:
            events.append((s + 0.03, bags.DEVICE_SLOWDOWN, _float(device_slowdown)))
        exp.loads += 1
        exp.last_telemetry_s = max(exp.last_telemetry_s, s + 0.02)
    for s, topic, data in sorted(events, key=lambda e: e[0]):
        w.write(bags.full_topic(namespace, topic), _t(s), data)
    w.close()
    return exp
