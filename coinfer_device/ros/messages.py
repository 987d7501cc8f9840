# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Layouts of the coinfer topics on standard messages, packed and unpacked in one place.

Only standard message types cross the wire (docs/topics.md has the full reference):

* ``coinfer/result``, ``coinfer/edge_result``: ``sensor_msgs/JointState`` used as a stamped
  record of named scalars (``name[i]`` labels ``position[i]``), header = the frame's header;
* ``coinfer/ground_truth``: ``sensor_msgs/JointState``, ``name=['class_id', 'frame_seq']`` (``frame_seq``
  optional: the camera's frame number, for the device's frame accounting);
* ``coinfer/decision``: ``std_msgs/Int32MultiArray``, ``layout.dim[0].label='exit,partition,bits'``;
* ``coinfer/features``: ``sensor_msgs/CompressedImage``, ``format`` = codec format string,
  ``data`` = codec bytes.

The records themselves (fields, names/positions encoding, fallback codes) are in
:mod:`coinfer_device.core.records`; this module only packs them into message objects.  The
functions fill and read message objects by attribute, so this module imports no ROS package at
import time (message classes are imported only by the ``make_*`` helpers).
"""

from __future__ import annotations

from typing import Any

from coinfer_device.core.action import Action
from coinfer_device.core.records import (EdgeResult, MessageError, NS_PER_S, Result, edge_result_from_names_positions,
                                         edge_result_names_positions, named_int,
                                         result_from_names_positions, result_names_positions)

DECISION_LABEL = 'exit,partition,bits'
GROUND_TRUTH_FIELDS = ('class_id',)
GROUND_TRUTH_FRAME_SEQ = 'frame_seq'

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


def make_ground_truth_msg(label: int, header: Any, frame_seq: int | None = None) -> Any:
    """Return the ``coinfer/ground_truth`` JointState of one labelled frame (with the camera's frame number)."""
    from sensor_msgs.msg import JointState
    names, positions = list(GROUND_TRUTH_FIELDS), [float(label)]
    if frame_seq is not None:
        names.append(GROUND_TRUTH_FRAME_SEQ)
        positions.append(float(frame_seq))
    return fill_joint_state(JointState(), header, names, positions)


def read_ground_truth(msg: Any) -> int:
    """Return the class id of a ``coinfer/ground_truth`` message."""
    return named_int(msg.name, msg.position, 'class_id')


def read_ground_truth_frame_seq(msg: Any) -> int | None:
    """Return the camera's frame number of a ``coinfer/ground_truth`` message (``None`` when absent or invalid)."""
    if GROUND_TRUTH_FRAME_SEQ not in msg.name:
        return None
    try:
        return named_int(msg.name, msg.position, GROUND_TRUTH_FRAME_SEQ)
    except MessageError:
        return None


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
