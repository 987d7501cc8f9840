# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Topic layouts on standard messages, image conversion and frame sources (no ROS graph)."""

import math
import subprocess
import sys

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sensor_msgs.msg import Image
from std_msgs.msg import Header, Int32MultiArray, MultiArrayDimension

from coinfer_device.core.codec import FORMAT
from coinfer_device.core.frame_source import ArraySource, SourceError, frames, open_source
from coinfer_device.core.image_conversion import ImageFormatError, image_msg_to_frame
from coinfer_device.core.action import Action
from coinfer_device.core import records as rec
from coinfer_device.ros import messages as m
from coinfer_edge.demo.harness import param_value, ros_args

PURE = ['coinfer_device.ros.messages', 'coinfer_edge.demo.harness']  # core/ and tools/: test_architecture.py


def test_pure_node_helpers_import_no_ros():
    code = (f'import sys\nfor mod in {PURE!r}:\n    __import__(mod)\n'
            "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'sensor_msgs', 'std_msgs')]\n"
            'assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], check=True)


def _result(**kw):
    base = dict(frame_seq=2 ** 40 + 3, class_id=7, confidence=0.93, exit=2, partition=4, bits=8,
                source=rec.SOURCE_EDGE, fallback=rec.FALLBACK_NONE, device_ms=1.5, transfer_ms=3.25, edge_ms=0.75,
                total_ms=6.0, round_trip_ms=4.0, payload_bytes=4160, deadline_ms=20.0, deadline_met=True,
                device_compute_ms=1.25, edge_compute_ms=0.5, class_name='Sneaker')
    base.update(kw)
    return rec.Result(**base)


def test_result_round_trip_through_joint_state():
    header = Header(frame_id='cam')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = m.make_result_msg(_result(), header)
    assert list(msg.name[:len(rec.RESULT_FIELDS)]) == list(rec.RESULT_FIELDS)
    assert msg.name[-1] == 'class_name:Sneaker' and msg.position[-1] == 7.0
    assert len(msg.velocity) == 0 and len(msg.effort) == 0
    assert m.read_result(msg) == _result()
    assert m.stamp_ns(msg.header) == 12 * 10 ** 9 + 345
    # docs/topics.md documents these indices (rqt_plot uses them): new fields only ever go after them
    assert msg.name.index('edge_ms') == 10 and msg.name.index('deadline_met') == 15
    assert msg.name.index('device_compute_ms') == 16 and msg.name.index('edge_compute_ms') == 17


def test_records_written_before_the_compute_fields_still_parse():
    names, positions = rec.result_names_positions(_result())
    old = [(n, p) for n, p in zip(names, positions) if not n.endswith('_compute_ms')]
    r = rec.result_from_names_positions([n for n, _ in old], [p for _, p in old])
    assert math.isnan(r.device_compute_ms) and math.isnan(r.edge_compute_ms)
    assert r == _result(device_compute_ms=r.device_compute_ms, edge_compute_ms=r.edge_compute_ms)
    er = rec.EdgeResult(frame_seq=5, class_id=1, confidence=0.5, exit=1, partition=2, bits=4, device_ms=0.5,
                        edge_ms=1.0, payload_bytes=100, device_stamp_ns=7, edge_compute_ms=0.75)
    names, positions = rec.edge_result_names_positions(er)
    assert rec.edge_result_from_names_positions(names, positions).edge_compute_ms == 0.75
    parsed = rec.edge_result_from_names_positions(names[:-1], positions[:-1])
    assert names[-1] == 'edge_compute_ms' and math.isnan(parsed.edge_compute_ms) and parsed.device_stamp_ns == 7


def test_every_fallback_code_has_words():
    codes = [rec.FALLBACK_NONE, rec.FALLBACK_NO_DECISION, rec.FALLBACK_EDGE_DOWN, rec.FALLBACK_EDGE_TIMEOUT]
    assert sorted(rec.FALLBACK_WORDS) == sorted(codes) and len(set(rec.FALLBACK_WORDS.values())) == len(codes)


def test_result_reader_ignores_unknown_fields_and_rejects_missing_ones():
    names, positions = rec.result_names_positions(_result())
    assert rec.result_from_names_positions(names + ['future_field'], positions + [1.0]) == _result()
    with pytest.raises(rec.MessageError):
        rec.result_from_names_positions(names[1:], positions[1:])
    with pytest.raises(rec.MessageError):
        rec.result_from_names_positions(names, positions[:-1])
    bad = list(positions)
    bad[names.index('class_id')] = 2.5
    with pytest.raises(rec.MessageError):
        rec.result_from_names_positions(names, bad)


@given(st.integers(0, 2 ** 63 - 1))
def test_edge_result_carries_the_device_stamp_exactly(stamp):
    er = rec.EdgeResult(frame_seq=5, class_id=1, confidence=0.5, exit=1, partition=2, bits=4, device_ms=0.5,
                        edge_ms=1.0, payload_bytes=100, device_stamp_ns=stamp, edge_compute_ms=0.25)
    names, positions = rec.edge_result_names_positions(er)
    assert rec.edge_result_from_names_positions(names, positions) == er


def test_decision_layout_and_validation():
    msg = m.make_decision_msg(Action(1, 2, 4))
    assert msg.layout.dim[0].label == 'exit,partition,bits' and list(msg.data) == [1, 2, 4]
    assert m.read_decision(msg) == Action(1, 2, 4)
    assert m.read_decision(Int32MultiArray(data=[2, 10, 0])) == Action(2, 10, 0)  # layout optional
    with pytest.raises(rec.MessageError):
        m.read_decision(Int32MultiArray(data=[1, 2]))
    wrong = Int32MultiArray(data=[1, 2, 3])
    wrong.layout.dim = [MultiArrayDimension(label='x,y,z', size=3, stride=3)]
    with pytest.raises(rec.MessageError):
        m.read_decision(wrong)


def test_ground_truth_and_features_layout():
    header = Header(frame_id='cam')
    gt = m.make_ground_truth_msg(3, header)
    assert list(gt.name) == ['class_id'] and m.read_ground_truth(gt) == 3
    data = bytes(range(256)) * 4
    f = m.make_features_msg(data, header, FORMAT)
    assert f.format == FORMAT and bytes(f.data) == data and f.header.frame_id == 'cam'


# --------------------------------------------------------------------------- images


def _image(arr, encoding, pad=0, bigendian=False):
    arr = np.ascontiguousarray(arr)
    if bigendian:
        arr = arr.astype(arr.dtype.newbyteorder('>'))
    rows = arr.reshape(arr.shape[0], -1).view(np.uint8)
    padded = np.zeros((rows.shape[0], rows.shape[1] + pad), np.uint8)
    padded[:, :rows.shape[1]] = rows
    msg = Image(height=arr.shape[0], width=arr.shape[1], encoding=encoding, is_bigendian=int(bigendian),
                step=padded.shape[1])
    msg.data = padded.tobytes()
    return msg


def test_images_with_padding_endianness_and_colour_orders():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (5, 7), np.uint8)
    bgr = rng.integers(0, 256, (5, 7, 3), np.uint8)
    np.testing.assert_array_equal(image_msg_to_frame(_image(gray, 'mono8', pad=3)), gray)
    np.testing.assert_array_equal(image_msg_to_frame(_image(bgr, 'bgr8', pad=1)), bgr)
    np.testing.assert_array_equal(image_msg_to_frame(_image(bgr[..., ::-1], 'rgb8')), bgr)
    bgra = np.concatenate([bgr, np.full((5, 7, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_msg_to_frame(_image(bgra, 'bgra8')), bgr)
    wide = gray.astype(np.uint16) << 8
    np.testing.assert_array_equal(image_msg_to_frame(_image(wide, 'mono16', bigendian=True)), gray)
    yuv = cv2.cvtColor(bgr[:4, :6], cv2.COLOR_BGR2YUV_YUY2) if hasattr(cv2, 'COLOR_BGR2YUV_YUY2') else None
    if yuv is not None:
        assert image_msg_to_frame(_image(yuv, 'yuv422_yuy2')).shape == (4, 6, 3)


def test_bad_images_are_rejected_with_a_reason():
    with pytest.raises(ImageFormatError, match='unsupported encoding'):
        image_msg_to_frame(_image(np.zeros((2, 2), np.uint8), 'jpeg'))
    msg = _image(np.zeros((4, 4), np.uint8), 'mono8')
    msg.height = 40
    with pytest.raises(ImageFormatError, match='does not fit'):
        image_msg_to_frame(msg)


# --------------------------------------------------------------------------- frame sources


def test_array_source_orders_loops_and_ends():
    images = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2)
    src = ArraySource(images, np.array([0, 1, 2, 3]), loop=False, start_index=2)
    assert [label for _, label in frames(src)] == [2, 3, 0, 1]
    looping = ArraySource(images, None, loop=True)
    assert [looping.read()[1] for _ in range(6)] == [None] * 6
    shuffled = ArraySource(images, np.arange(4), loop=False, shuffle=True, seed=3)
    assert sorted(label for _, label in frames(shuffled)) == [0, 1, 2, 3]


def test_folder_and_video_sources(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f'{i}.png'), np.full((6, 8), i * 50, np.uint8))
    src = open_source('folder', str(tmp_path), loop=False)
    assert [int(f.mean()) for f, label in frames(src)] == [0, 50, 100]
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    cv2.imwrite(str(tmp_path / 'a' / 'x.png'), np.zeros((6, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'b' / 'y.png'), np.zeros((6, 8, 3), np.uint8))
    labelled = open_source('folder', str(tmp_path), loop=False)
    assert [label for _, label in frames(labelled)] == [0, 1]
    with pytest.raises(SourceError):
        open_source('video', str(tmp_path / 'missing.avi'))
    with pytest.raises(SourceError):
        open_source('radar')


def test_fashion_mnist_source_has_labels():
    src = open_source('fashion-mnist', loop=False)
    frame, label = src.read()
    assert frame.shape == (28, 28) and frame.dtype == np.uint8 and 0 <= label < 10


# --------------------------------------------------------------------------- command lines


def test_parameter_values_format_as_yaml():
    assert param_value(True) == 'true' and param_value(5) == '5' and param_value(5.0) == '5.0'
    assert param_value(1e-3) == '0.001' and param_value('') == '""' and param_value('a b') == 'a b'
    assert param_value('true') == '"true"' and param_value(['', '/r1']) == '["", "/r1"]'
    assert param_value([2, 10, 0]) == '[2, 10, 0]' and param_value([1.0, 2.5]) == '[1.0, 2.5]'
    args = ros_args(name='n', namespace='r1', params_files=['a.yaml'], params={'x': 1.0}, remaps={'a': 'b'})
    assert args == ['--ros-args', '-r', '__node:=n', '-r', '__ns:=/r1', '--params-file', 'a.yaml', '-p', 'x:=1.0',
                    '-r', 'a:=b']
