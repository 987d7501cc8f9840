# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Layouts of the coinfer topics on standard messages, packed and unpacked in one place.

Only standard message types cross the wire (docs/topics.md has the full reference):

* ``coinfer/result``, ``coinfer/edge_result``: ``sensor_msgs/JointState`` used as a stamped
  record of named scalars (``name[i]`` labels ``position[i]``), header = the frame's header;
* ``coinfer/ground_truth``: ``sensor_msgs/JointState``, ``name=['class_id']``;
* ``coinfer/decision``: ``std_msgs/Int32MultiArray``, ``layout.dim[0].label='exit,partition,bits'``;
* ``coinfer/features``: ``sensor_msgs/CompressedImage``, ``format`` = codec format string,
  ``data`` = codec bytes.

The functions fill and read message objects by attribute, so this module imports no
ROS package at import time (message classes are imported only by the ``make_*`` helpers).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable

from coinfer_device.core.profile import Action

CLASS_NAME_PREFIX = 'class_name:'
DECISION_LABEL = 'exit,partition,bits'
GROUND_TRUTH_FIELDS = ('class_id',)
NS_PER_S = 1_000_000_000

SOURCE_DEVICE = 0
SOURCE_EDGE = 1
FALLBACK_NONE = 0          # the policy's fresh decision was applied
FALLBACK_NO_DECISION = 1   # no decision yet, or the newest one is older than decision_timeout_s
FALLBACK_EDGE_DOWN = 2     # the edge stopped answering: answered locally, edge is probed
FALLBACK_EDGE_TIMEOUT = 3  # sent to the edge, no answer within edge_timeout_ms: re-run locally


class MessageError(ValueError):
    """A message does not have the documented layout."""


@dataclass
class Result:
    """One frame's classification with its latency breakdown (``coinfer/result``).

    Times are milliseconds on the robot's clock; ``transfer_ms`` and ``round_trip_ms``
    are 0 for frames answered on the device.
    """

    frame_seq: int
    class_id: int
    confidence: float
    exit: int
    partition: int
    bits: int
    source: int
    fallback: int
    device_ms: float
    transfer_ms: float
    edge_ms: float
    total_ms: float
    round_trip_ms: float
    payload_bytes: int
    deadline_ms: float
    deadline_met: bool
    class_name: str = ''

    @property
    def action(self) -> Action:
        """Return the ``(exit, partition, bits)`` that produced the result."""
        return Action(self.exit, self.partition, self.bits)


RESULT_FIELDS = tuple(f.name for f in fields(Result) if f.name != 'class_name')


@dataclass
class EdgeResult:
    """What the edge sends back for one feature message (``coinfer/edge_result``).

    ``device_stamp_ns`` is the device's monotonic send time echoed from the codec header;
    on the wire it is split into exact float64 fields ``device_stamp_s`` (whole seconds)
    and ``device_stamp_ns`` (nanoseconds within the second).
    """

    frame_seq: int
    class_id: int
    confidence: float
    exit: int
    partition: int
    bits: int
    device_ms: float
    edge_ms: float
    payload_bytes: int
    device_stamp_ns: int


EDGE_RESULT_FIELDS = ('frame_seq', 'class_id', 'confidence', 'exit', 'partition', 'bits', 'device_ms',
                      'edge_ms', 'payload_bytes', 'device_stamp_s', 'device_stamp_ns')
_INT_FIELDS = {'frame_seq', 'class_id', 'exit', 'partition', 'bits', 'source', 'fallback', 'payload_bytes'}


# --------------------------------------------------------------------------- records


def result_names_positions(r: Result) -> tuple[list[str], list[float]]:
    """Return the ``name`` and ``position`` arrays of a result record."""
    values = asdict(r)
    names = list(RESULT_FIELDS)
    positions = [float(values[n]) for n in names]
    names.append(CLASS_NAME_PREFIX + r.class_name)
    positions.append(float(r.class_id))
    return names, positions


def _named(names: Iterable[str], positions: Iterable[float], required: Iterable[str]) -> dict[str, float]:
    names, positions = list(names), list(positions)
    if len(names) != len(positions):
        raise MessageError(f'{len(names)} names but {len(positions)} positions')
    d = dict(zip(names, positions))
    missing = [n for n in required if n not in d]
    if missing:
        raise MessageError(f'missing fields {missing}')
    return d


def _int(d: dict[str, float], name: str) -> int:
    v = d[name]
    if not math.isfinite(v) or v != int(v):
        raise MessageError(f'field {name} must be an integer, got {v!r}')
    return int(v)


def result_from_names_positions(names: Iterable[str], positions: Iterable[float]) -> Result:
    """Parse a result record; unknown extra names are ignored (newer writers may add fields)."""
    names = list(names)
    d = _named(names, positions, RESULT_FIELDS)
    kwargs: dict[str, Any] = {}
    for n in RESULT_FIELDS:
        kwargs[n] = _int(d, n) if n in _INT_FIELDS else float(d[n])
    kwargs['deadline_met'] = bool(d['deadline_met'])
    kwargs['class_name'] = next((n[len(CLASS_NAME_PREFIX):] for n in names if n.startswith(CLASS_NAME_PREFIX)), '')
    return Result(**kwargs)


def edge_result_names_positions(r: EdgeResult) -> tuple[list[str], list[float]]:
    """Return the ``name`` and ``position`` arrays of an edge result."""
    stamp_s, stamp_ns = divmod(int(r.device_stamp_ns), NS_PER_S)
    values = dict(asdict(r), device_stamp_s=stamp_s, device_stamp_ns=stamp_ns)
    return list(EDGE_RESULT_FIELDS), [float(values[n]) for n in EDGE_RESULT_FIELDS]


def edge_result_from_names_positions(names: Iterable[str], positions: Iterable[float]) -> EdgeResult:
    """Parse an edge result; the split stamp is joined back into exact nanoseconds."""
    d = _named(names, positions, EDGE_RESULT_FIELDS)
    stamp = _int(d, 'device_stamp_s') * NS_PER_S + _int(d, 'device_stamp_ns')
    return EdgeResult(frame_seq=_int(d, 'frame_seq'), class_id=_int(d, 'class_id'),
                      confidence=float(d['confidence']), exit=_int(d, 'exit'),
                      partition=_int(d, 'partition'), bits=_int(d, 'bits'), device_ms=float(d['device_ms']),
                      edge_ms=float(d['edge_ms']), payload_bytes=_int(d, 'payload_bytes'), device_stamp_ns=stamp)


# --------------------------------------------------------------------------- message objects


def fill_joint_state(msg: Any, header: Any, names: list[str], positions: list[float]) -> Any:
    """Fill a ``sensor_msgs/JointState`` as a named-scalar record; velocity/effort stay empty."""
    msg.header = header
    msg.name = names
    msg.position = positions
    return msg


def read_result(msg: Any) -> Result:
    """Parse a ``coinfer/result`` JointState."""
    return result_from_names_positions(msg.name, msg.position)


def read_edge_result(msg: Any) -> EdgeResult:
    """Parse a ``coinfer/edge_result`` JointState."""
    return edge_result_from_names_positions(msg.name, msg.position)


def make_result_msg(result: Result, header: Any) -> Any:
    """Return a ``sensor_msgs/JointState`` carrying ``result``."""
    from sensor_msgs.msg import JointState
    return fill_joint_state(JointState(), header, *result_names_positions(result))


def make_edge_result_msg(result: EdgeResult, header: Any) -> Any:
    """Return a ``sensor_msgs/JointState`` carrying an edge result."""
    from sensor_msgs.msg import JointState
    return fill_joint_state(JointState(), header, *edge_result_names_positions(result))


def make_ground_truth_msg(label: int, header: Any) -> Any:
    """Return the ``coinfer/ground_truth`` JointState of one labelled frame."""
    from sensor_msgs.msg import JointState
    return fill_joint_state(JointState(), header, list(GROUND_TRUTH_FIELDS), [float(label)])


def read_ground_truth(msg: Any) -> int:
    """Return the class id of a ``coinfer/ground_truth`` message."""
    d = _named(msg.name, msg.position, GROUND_TRUTH_FIELDS)
    return _int(d, 'class_id')


def make_decision_msg(action: Action) -> Any:
    """Return the ``std_msgs/Int32MultiArray`` of a decision ``[exit, partition, bits]``."""
    from std_msgs.msg import Int32MultiArray, MultiArrayDimension
    msg = Int32MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=DECISION_LABEL, size=3, stride=3)]
    msg.data = [int(action.exit), int(action.partition), int(action.bits)]
    return msg


def read_decision(msg: Any) -> Action:
    """Parse a decision; a layout, when present, must be the documented one."""
    data = list(msg.data)
    if len(data) != 3:
        raise MessageError(f'decision must have 3 values [exit, partition, bits], got {data}')
    dims = list(msg.layout.dim)
    if dims and (dims[0].label != DECISION_LABEL or dims[0].size != 3):
        raise MessageError(f'decision layout must be one dim labelled {DECISION_LABEL!r} of size 3, '
                           f'got {dims[0].label!r} of size {dims[0].size}')
    return Action(int(data[0]), int(data[1]), int(data[2]))


def make_features_msg(data: bytes, header: Any, fmt: str) -> Any:
    """Return a ``sensor_msgs/CompressedImage`` carrying codec bytes.

    ``data`` must be ``bytes`` (or ``bytearray``/``array.array``): rclpy copies those in
    microseconds, while a numpy array or memoryview is converted element by element
    (about 2000x slower for 256 KB, see docs/topics.md).
    """
    from sensor_msgs.msg import CompressedImage
    msg = CompressedImage()
    msg.header = header
    msg.format = fmt
    msg.data = data
    return msg


def stamp_ns(header: Any) -> int:
    """Return a header stamp as integer nanoseconds (the key that joins results and ground truth)."""
    return int(header.stamp.sec) * NS_PER_S + int(header.stamp.nanosec)
