# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Camera / replay node: publishes ``image_raw`` (and ``coinfer/ground_truth`` when labels are known).

Replays the Fashion-MNIST test set by default; also CIFAR-10, an image folder, a video
file or a V4L2 camera through OpenCV (``source`` parameter).  Images go out through
cv_bridge; any other camera driver publishing ``sensor_msgs/Image`` can replace this node.
The ground-truth record of each frame also carries the camera's frame number (``frame_seq``,
0, 1, 2, ... for every published image), from which the device counts frames lost on the way
(:mod:`coinfer_device.core.frame_accounting`).
"""

from __future__ import annotations

import sys
from typing import Any

from cv_bridge import CvBridge
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from coinfer_device.ros import params as rp
from coinfer_device.core.frame_source import SOURCES, SourceError, open_source
from coinfer_device.ros.diagnostics import DIAGNOSTIC_PARAMS, Diagnostics, FrequencyStatus, RateMeter
from coinfer_device.ros.runtime import StartupError, run_node
from coinfer_device.ros.messages import make_ground_truth_msg

QOS = (rp.QosDefault('image', 'image_raw', 'reliable', 2),
       rp.QosDefault('ground_truth', 'coinfer/ground_truth', 'reliable', 10))

PARAMS = [
    rp.Param('source', 'fashion-mnist', 'Frame source kind', choices=SOURCES),
    rp.Param('path', '', "Data set folder, image folder, video file or camera device path; '' = the "
             'default for the source (Fashion-MNIST: /usr/share/datasets/fashion-mnist)'),
    rp.Param('split', 'test', 'Data set split to replay', choices=('train', 'test')),
    rp.Param('camera_index', 0, 'V4L2 camera index when source is camera and path is empty', lo=0, hi=255),
    rp.Param('rate_hz', 10.0, 'Publishing rate', lo=0.01, hi=1000.0, dynamic=True, unit='Hz'),
    rp.Param('loop', True, 'Start again at the end of a data set or video'),
    rp.Param('max_frames', 0, 'Stop after this many frames (0 = no limit)', lo=0),
    rp.Param('start_index', 0, 'First data set / folder image to publish', lo=0),
    rp.Param('shuffle', False, 'Replay data set images in a seeded random order'),
    rp.Param('seed', 0, 'Seed of the shuffled order', lo=0),
    rp.Param('frame_id', 'camera', 'header.frame_id of published images'),
    rp.Param('publish_ground_truth', True, 'Publish coinfer/ground_truth (label and frame number) for labelled '
             'sources'),
] + rp.qos_params(QOS) + DIAGNOSTIC_PARAMS


class CameraNode(Node):
    """Publish frames from a :mod:`coinfer_device.core.frame_source` at a fixed rate."""

    def __init__(self) -> None:
        super().__init__('camera_node')
        self.p = rp.declare(self, PARAMS)
        try:
            self.source = open_source(self.p['source'], self.p['path'], split=self.p['split'],
                                      camera_index=self.p['camera_index'], loop=self.p['loop'],
                                      start_index=self.p['start_index'], shuffle=self.p['shuffle'],
                                      seed=self.p['seed'])
        except SourceError as exc:
            raise StartupError(str(exc)) from exc
        self.bridge = CvBridge()
        self.image_pub = rp.create_publisher(self, Image, 'image_raw', self.p, 'image')
        self.gt_pub = rp.create_publisher(self, JointState, 'coinfer/ground_truth', self.p, 'ground_truth')
        self.published = RateMeter()
        self.unheard = 0
        self.finished = False
        self.timer = self.create_timer(1.0 / self.p['rate_hz'], self._tick)
        rp.install_set_callback(self, PARAMS, self._on_param)
        diagnostics = Diagnostics(self, self._diagnostics, task='source')
        self.rate = diagnostics.add_frequency('image_raw rate', FrequencyStatus(self.p['rate_hz'], self.p['rate_hz']))

    def ready_summary(self) -> str:
        """Return the one-line description logged with the ready marker."""
        return f"publishing {self.p['source']} {self.source.name!r} at {self.p['rate_hz']:g} Hz on image_raw"

    def _on_param(self, name: str, value: Any) -> None:
        if name == 'rate_hz':
            self.p[name] = value
            self.timer.cancel()
            self.destroy_timer(self.timer)
            self.timer = self.create_timer(1.0 / value, self._tick)
            self.rate.min_hz = self.rate.max_hz = value

    def _tick(self) -> None:
        if self.finished:
            return
        limit = self.p['max_frames']
        item = self.source.read() if not (limit and self.published.total >= limit) else None
        if item is None:
            self.finished = True
            self.get_logger().info(f'source finished after {self.published.total} frames')
            return
        frame, label = item
        encoding = 'mono8' if frame.ndim == 2 else 'bgr8'
        msg = self.bridge.cv2_to_imgmsg(frame, encoding=encoding)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.p['frame_id']
        if self.image_pub.get_subscription_count() == 0:
            self.unheard += 1
        self.image_pub.publish(msg)
        if label is not None and self.p['publish_ground_truth']:
            self.gt_pub.publish(make_ground_truth_msg(label, msg.header, frame_seq=self.published.total))
        self.published.add()
        self.rate.tick()

    def _diagnostics(self) -> tuple[bytes, str, dict[str, Any]]:
        level = DiagnosticStatus.WARN if self.finished else DiagnosticStatus.OK
        message = 'source finished' if self.finished else 'publishing'
        return level, message, {'frames_published': self.published.total, 'rate_hz': self.published.rate(),
                                'frames_without_subscriber': self.unheard, 'source': self.p['source'],
                                'finished': self.finished}

    def close(self) -> None:
        """Release the frame source."""
        self.source.close()


def main(args: list[str] | None = None) -> int:
    """Console script ``camera_node``."""
    return run_node(CameraNode, args)


if __name__ == '__main__':
    sys.exit(main())
