# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Image messages with forged geometry: rejected with a reason, never a large allocation or an OpenCV error."""

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinfer_device.core.image_conversion import SUPPORTED_ENCODINGS, ImageFormatError, image_msg_to_frame


def _msg(data: bytes, width: int, height: int, step: int, encoding: str = 'mono8', bigendian: int = 0):
    return SimpleNamespace(data=data, width=width, height=height, step=step, encoding=encoding,
                           is_bigendian=bigendian)


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    except ImageFormatError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize('step', [2 ** 28, 2 ** 30, 2 ** 32 - 1])
def test_a_forged_row_step_never_allocates_what_it_claims(step):
    # One row may omit its padding, so a 1x1 image says nothing false: it is read without touching the step.
    one_row = _msg(b'\x07', width=1, height=1, step=step)
    assert image_msg_to_frame(one_row).tolist() == [[7]]
    assert _peak_bytes(lambda: image_msg_to_frame(one_row)) < 64 * 1024
    two_rows = _msg(b'\x07\x08', width=1, height=2, step=step)
    with pytest.raises(ImageFormatError, match='does not fit 2 data bytes'):
        image_msg_to_frame(two_rows)
    assert _peak_bytes(lambda: image_msg_to_frame(two_rows)) < 64 * 1024


def test_forged_height_and_width_are_rejected():
    data = bytes(range(16))
    with pytest.raises(ImageFormatError, match='does not fit'):
        image_msg_to_frame(_msg(data, width=4, height=2 ** 20, step=4))
    with pytest.raises(ImageFormatError, match='does not fit'):
        image_msg_to_frame(_msg(data, width=2 ** 20, height=4, step=4))
    with pytest.raises(ImageFormatError, match='does not fit'):
        image_msg_to_frame(_msg(data + b'extra', width=4, height=4, step=4))


def test_the_last_row_may_omit_its_padding():
    rows = np.arange(3 * 5, dtype=np.uint8).reshape(3, 5)
    padded = np.zeros((3, 8), np.uint8)
    padded[:, :5] = rows
    data = padded.tobytes()[:-3]
    np.testing.assert_array_equal(image_msg_to_frame(_msg(data, width=5, height=3, step=8)), rows)


@pytest.mark.parametrize('encoding', ['yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv'])
def test_odd_width_yuv422_is_a_counted_format_error_not_an_opencv_exception(encoding):
    with pytest.raises(ImageFormatError, match='even width'):
        image_msg_to_frame(_msg(bytes(3 * 2 * 2), width=3, height=2, step=6, encoding=encoding))


def test_an_opencv_conversion_error_becomes_a_format_error(monkeypatch):
    import cv2

    def fail(*args):
        raise cv2.error('OpenCV(4) error: (-215:Assertion failed) scn == 2 in function cvtColor')
    monkeypatch.setattr(cv2, 'cvtColor', fail)
    with pytest.raises(ImageFormatError, match='rgb8 image 2x1: .*scn == 2'):
        image_msg_to_frame(_msg(bytes(6), width=2, height=1, step=6, encoding='rgb8'))


@settings(max_examples=300, deadline=None)
@given(encoding=st.sampled_from(SUPPORTED_ENCODINGS), size=st.integers(0, 300),
       width=st.integers(0, 40), height=st.integers(0, 40), step=st.integers(0, 2 ** 32 - 1),
       bigendian=st.integers(0, 1))
def test_any_claimed_geometry_gives_a_frame_or_a_format_error(encoding, size, width, height, step, bigendian):
    msg = _msg(bytes(size), width, height, step, encoding, bigendian)
    try:
        frame = image_msg_to_frame(msg)
    except ImageFormatError:
        return
    assert frame.dtype == np.uint8 and frame.shape[:2] == (height, width)
    assert frame.ndim == 2 or frame.shape[2] == 3
