# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""A node's measured compute slowdown on ``coinfer/<side>/compute_slowdown`` (std_msgs/Float32).

The device and the edge node feed every frame's measured model compute into a
:class:`~coinfer_device.core.slowdown_meter.SlowdownMeter` together with what the machine profile
says the same work takes; a timer publishes the median ratio of the last ``slowdown.window_s``
seconds at ``slowdown.rate_hz`` (nothing until a frame was measured).  It is CPU contention as
the pipeline feels it, for the policy and for recorded bags (docs/topics.md).  When the profile
does not describe the node's model (other branch points or blocks), the node says so once and
publishes nothing.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from std_msgs.msg import Float32

from coinfer_device.core.action import Action
from coinfer_device.core.model import MultiExitAlexNet
from coinfer_device.core.paths import profile_for
from coinfer_device.core.profile import Profile
from coinfer_device.core.slowdown_meter import SlowdownMeter
from coinfer_device.ros import params as rp

SLOWDOWN_PARAMS = [
    rp.Param('profile_path', '', "Machine profile JSON the measured model compute is compared with "
             "(coinfer/<side>/compute_slowdown); '' = the shipped profile of the shipped model_path (of the default "
             "model when model_path is not a shipped one)"),
    rp.Param('slowdown.window_s', 2.0, 'coinfer/<side>/compute_slowdown is the median of measured / profiled model '
             'compute over the frames of this window', lo=0.1, hi=3600.0, unit='s'),
    rp.Param('slowdown.rate_hz', 2.0, 'Publish rate of coinfer/<side>/compute_slowdown', lo=0.1, hi=100.0, unit='Hz'),
]


def slowdown_qos(side: str) -> rp.QosDefault:
    """Return the default QoS of ``coinfer/<side>/compute_slowdown`` (telemetry: best effort, keep-last 1)."""
    return rp.QosDefault('slowdown', f'coinfer/{side}/compute_slowdown', 'best_effort', 1)


def profile_describes(profile: Profile, model: MultiExitAlexNet) -> bool:
    """Return whether ``profile`` was measured on a model with ``model``'s blocks, exits and feature shapes."""
    shapes = profile.model.get('feature_shapes')
    return (list(profile.branch_points) == list(model.spec.exit_branch_points)
            and len(profile.block_ms) == model.num_blocks
            and (shapes is None or shapes == [list(model.feature_shape(p)) for p in range(model.num_blocks + 1)]))


class SlowdownTopic:
    """Measure and publish one node's compute slowdown (created in the node's configure step)."""

    def __init__(self, node: Any, side: str, model: MultiExitAlexNet, prefixes: Sequence[str] = ('',)) -> None:
        p = node.p
        profile = Profile.load(p['profile_path'] or profile_for(p['model_path']))
        self._expected: Callable[[Action], float] | None = None
        if profile_describes(profile, model):
            self._expected = profile.device_model_ms if side == 'device' else profile.edge_model_ms
        else:
            node.get_logger().warning(
                f'profile {p["profile_path"] or "(shipped)"} describes another model (branch points '
                f'{profile.branch_points}, {len(profile.block_ms)} blocks, other feature shapes): '
                f'coinfer/{side}/compute_slowdown is not '
                f'published; pass this model\'s profile as profile_path')
        self.meter = SlowdownMeter(p['slowdown.window_s'])
        self._pubs = [node.own(rp.create_publisher(node, Float32, f'{prefix}coinfer/{side}/compute_slowdown', p,
                                                   'slowdown')) for prefix in prefixes]
        node.own(node.create_timer(1.0 / p['slowdown.rate_hz'], self.publish))

    def add(self, measured_ms: float, action: Action) -> None:
        """Add one frame's measured model compute for ``action``."""
        if self._expected is not None:
            self.meter.add(measured_ms, self._expected(action), time.monotonic())

    def publish(self) -> None:
        """Publish the current slowdown, if any frame was measured in the window."""
        value = self.meter.value(time.monotonic())
        if value is not None:
            msg = Float32(data=float(value))
            for pub in self._pubs:
                pub.publish(msg)
