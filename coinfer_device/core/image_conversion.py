# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""``sensor_msgs/Image`` from any camera driver to the uint8 gray/BGR frame the model reads.

cv_bridge's ``imgmsg_to_cv2`` ignores row padding (``step``) and fails on big-endian data
with numpy 2, so the device reads images here: rows are cut to ``width`` using ``step``,
multi-byte pixels honour ``is_bigendian``, and every common encoding (mono, RGB/BGR with
or without alpha, 16-bit, float, YUV 4:2:2, Bayer) becomes uint8 gray or BGR.
Works on any object with the Image fields; no ROS import.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

# encoding -> (dtype, channels, OpenCV conversion to BGR or None, channel order note)
_LAYOUTS: dict[str, tuple[str, int]] = {
    'mono8': ('u1', 1), '8UC1': ('u1', 1), 'mono16': ('u2', 1), '16UC1': ('u2', 1),
    'bgr8': ('u1', 3), 'rgb8': ('u1', 3), '8UC3': ('u1', 3), 'bgra8': ('u1', 4), 'rgba8': ('u1', 4),
    '8UC4': ('u1', 4), 'bgr16': ('u2', 3), 'rgb16': ('u2', 3), 'bgra16': ('u2', 4), 'rgba16': ('u2', 4),
    '32FC1': ('f4', 1), '64FC1': ('f8', 1), 'yuv422': ('u1', 2), 'uyvy': ('u1', 2),
    'yuv422_yuy2': ('u1', 2), 'yuyv': ('u1', 2),
    'bayer_rggb8': ('u1', 1), 'bayer_bggr8': ('u1', 1), 'bayer_gbrg8': ('u1', 1), 'bayer_grbg8': ('u1', 1),
}
_TO_BGR = {
    'rgb8': cv2.COLOR_RGB2BGR, 'rgb16': cv2.COLOR_RGB2BGR, 'bgra8': cv2.COLOR_BGRA2BGR,
    'bgra16': cv2.COLOR_BGRA2BGR, '8UC4': cv2.COLOR_BGRA2BGR, 'rgba8': cv2.COLOR_RGBA2BGR,
    'rgba16': cv2.COLOR_RGBA2BGR, 'yuv422': cv2.COLOR_YUV2BGR_UYVY, 'uyvy': cv2.COLOR_YUV2BGR_UYVY,
    'yuv422_yuy2': cv2.COLOR_YUV2BGR_YUY2, 'yuyv': cv2.COLOR_YUV2BGR_YUY2,
    # ROS names the top-left 2x2 pattern; OpenCV names the second row's, hence the swap.
    'bayer_rggb8': cv2.COLOR_BayerBG2BGR, 'bayer_bggr8': cv2.COLOR_BayerRG2BGR,
    'bayer_gbrg8': cv2.COLOR_BayerGR2BGR, 'bayer_grbg8': cv2.COLOR_BayerGB2BGR,
}
SUPPORTED_ENCODINGS = tuple(sorted(_LAYOUTS))
_EVEN_WIDTH = frozenset(('yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv'))


class ImageFormatError(ValueError):
    """The image message cannot be read (unknown encoding, inconsistent size)."""


def image_msg_to_frame(msg: Any) -> np.ndarray:
    """Return the image as uint8 ``H x W`` gray or ``H x W x 3`` BGR."""
    encoding = str(msg.encoding)
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageFormatError(f'unsupported encoding {encoding!r} (supported: {", ".join(SUPPORTED_ENCODINGS)})')
    code, channels = layout
    dtype = np.dtype(code).newbyteorder('>' if msg.is_bigendian else '<')
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = w * channels * dtype.itemsize
    raw = np.frombuffer(msg.data, np.uint8)
    # The claimed geometry must account for the data exactly (the last row may omit its padding), so
    # a forged height, width or step can never make the device read or allocate past what arrived.
    if h <= 0 or w <= 0 or step < row_bytes or raw.size not in (step * h, step * (h - 1) + row_bytes):
        raise ImageFormatError(f'{encoding} image {w}x{h} step {step} does not fit {raw.size} data bytes')
    if encoding in _EVEN_WIDTH and w % 2:
        raise ImageFormatError(f'{encoding} image needs an even width (two pixels share chroma), got {w}')
    rows = np.lib.stride_tricks.as_strided(raw, shape=(h, row_bytes), strides=(step, 1), writeable=False)
    pixels = np.ascontiguousarray(rows).view(dtype).reshape(h, w, channels).astype(dtype.newbyteorder('='))
    frame = pixels[..., 0] if channels == 1 else pixels
    frame = _to_uint8(frame)
    conversion = _TO_BGR.get(encoding)
    if conversion is not None:
        try:
            frame = cv2.cvtColor(frame, conversion)
        except cv2.error as exc:  # e.g. a Bayer image too small to demosaic
            raise ImageFormatError(f'{encoding} image {w}x{h}: {str(exc).strip().splitlines()[-1]}') from exc
    return frame


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return (frame >> 8).astype(np.uint8)
    # Float images (depth, intensity) are scaled by their own range.
    f = np.nan_to_num(frame.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(f.min()), float(f.max())
    if hi <= lo:
        return np.zeros(f.shape, np.uint8)
    return ((f - lo) * (255.0 / (hi - lo))).astype(np.uint8)
