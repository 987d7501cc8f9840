# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""cv_bridge (index wheel) round-trips Images with the pinned numpy/OpenCV."""

import numpy as np
import pytest
from cv_bridge import CvBridge


@pytest.mark.parametrize('encoding,shape,dtype', [
    ('mono8', (28, 28), np.uint8),
    ('bgr8', (48, 64, 3), np.uint8),
    ('rgb8', (48, 64, 3), np.uint8),
    ('mono16', (10, 12), np.uint16),
    ('32FC1', (5, 7), np.float32),
])
def test_image_round_trip(encoding, shape, dtype):
    bridge = CvBridge()
    rng = np.random.default_rng(0)
    img = (rng.random(shape) * 200).astype(dtype)
    msg = bridge.cv2_to_imgmsg(img, encoding=encoding)
    assert msg.height == shape[0] and msg.width == shape[1] and msg.encoding == encoding
    back = bridge.imgmsg_to_cv2(msg, desired_encoding='passthrough')
    np.testing.assert_array_equal(back, img)


def test_color_conversion_on_decode():
    bridge = CvBridge()
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 2] = 255  # red in BGR
    rgb = bridge.imgmsg_to_cv2(bridge.cv2_to_imgmsg(img, encoding='bgr8'), desired_encoding='rgb8')
    assert rgb[0, 0].tolist() == [255, 0, 0]
