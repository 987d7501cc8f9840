# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Link monitor: measures the device-edge link from round trips and publishes bandwidth and RTT.

Runs on the ROBOT, next to the device node: the edge echoes each feature message's
``device_stamp_ns`` (device monotonic clock) in ``coinfer/edge_result``, and this node
reads the same monotonic clock when the answer arrives, so the round trip is measured on
one clock (the two machines' clocks are never compared).  ``round_trip - edge_ms`` is a
transfer sample; :mod:`coinfer_device.core.link_estimator` turns samples into
``coinfer/link/bandwidth_mbps`` and ``coinfer/link/rtt_ms`` (std_msgs/Float32, sensor-data
QoS), published at ``rate_hz`` once the first sample has arrived.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32

from coinfer_device.ros import params as rp
from coinfer_device.ros.diagnostics import DIAGNOSTIC_PARAMS, Diagnostics, FrequencyStatus, RateMeter, level_of
from coinfer_device.ros.runtime import BurstLogger, run_node
from coinfer_device.core import records as rec
from coinfer_device.ros import messages as m
from coinfer_device.core.link_estimator import EstimatorConfig, LinkEstimator, LinkSample

QOS = (rp.QosDefault('edge_result', 'coinfer/edge_result', 'reliable', 10),
       rp.QosDefault('link', 'coinfer/link/*', 'best_effort', 1))
MAX_PLAUSIBLE_ROUND_TRIP_MS = 120_000.0

PARAMS = [
    rp.Param('rate_hz', 5.0, 'Publishing rate of the estimates', lo=0.1, hi=100.0, unit='Hz'),
    rp.Param('window_s', 3.0, 'Sliding window of samples', lo=0.1, hi=3600.0, unit='s'),
    rp.Param('ewma_alpha', 0.6, 'EWMA weight of the newest windowed estimate (1 = no smoothing)', lo=0.01, hi=1.0,
             dynamic=True),
    rp.Param('small_payload_bytes', 2048, 'Samples up to this size estimate the RTT', lo=0, unit='bytes'),
    rp.Param('min_bandwidth_payload_bytes', 4096, 'Samples from this size estimate the bandwidth', lo=1,
             unit='bytes'),
    rp.Param('min_serialization_ms', 0.5, 'Resolution floor: a serialization time (large minus small messages) '
             'below this, or below the spread of the small messages, only bounds the bandwidth from below',
             lo=0.0, hi=1000.0, unit='ms'),
    rp.Param('max_bandwidth_mbps', 1000.0, 'Upper bound of the bandwidth estimate', lo=0.001, hi=1e6,
             unit='Mbit/s'),
    rp.Param('recent_samples', 16, 'Per payload size, only the newest this many samples of the window are used',
             lo=1, hi=10000),
    rp.Param('quantile', 0.4, 'Quantile of the transfer times of each payload size (0.5 = median, lower = '
             'steadier under load); the spread between it and 1 - quantile is the noise level', lo=0.01, hi=0.5),
    rp.Param('rtt_quantile', 0.5, 'Quantile of the newest small messages\' transfer times published as the RTT: '
             'the round trip a frame typically sees', lo=0.01, hi=0.99),
    rp.Param('stale_after_s', 5.0, 'Diagnostics warn when the newest sample is older than this', lo=0.1,
             hi=3600.0, unit='s'),
] + rp.qos_params(QOS) + DIAGNOSTIC_PARAMS


class LinkMonitor(Node):
    """Publish link estimates from the edge's echoed device stamps."""

    def __init__(self) -> None:
        super().__init__('link_monitor')
        self.p = rp.declare(self, PARAMS)
        self.estimator = LinkEstimator(EstimatorConfig(
            window_s=self.p['window_s'], ewma_alpha=self.p['ewma_alpha'],
            small_payload_bytes=self.p['small_payload_bytes'],
            min_bandwidth_payload_bytes=self.p['min_bandwidth_payload_bytes'],
            min_serialization_ms=self.p['min_serialization_ms'], max_bandwidth_mbps=self.p['max_bandwidth_mbps'],
            quantile=self.p['quantile'], recent_samples=self.p['recent_samples'],
            rtt_quantile=self.p['rtt_quantile']))
        self.bw_pub = rp.create_publisher(self, Float32, 'coinfer/link/bandwidth_mbps', self.p, 'link')
        self.rtt_pub = rp.create_publisher(self, Float32, 'coinfer/link/rtt_ms', self.p, 'link')
        rp.create_subscription(self, JointState, 'coinfer/edge_result', self._on_edge_result, self.p, 'edge_result')
        self.samples = RateMeter()
        self.rejected = RateMeter()
        self.warn = BurstLogger(self.get_logger().warning, quiet_s=30.0)
        self.create_timer(1.0 / self.p['rate_hz'], self._publish)
        rp.install_set_callback(self, PARAMS, self._on_param)
        diagnostics = Diagnostics(self, self._diagnostics, task='link estimate')
        # The estimates go out at rate_hz once samples exist (no sample: no estimate, an error here).
        self.rate = diagnostics.add_frequency('coinfer/link rate',
                                              FrequencyStatus(self.p['rate_hz'], self.p['rate_hz']))

    def ready_summary(self) -> str:
        """Return the one-line description logged with the ready marker."""
        return f"estimating from {self.resolve_topic_name('coinfer/edge_result')}"

    def _on_param(self, name: str, value: Any) -> None:
        if name == 'ewma_alpha':
            self.estimator.config.ewma_alpha = value

    def _on_edge_result(self, msg: JointState) -> None:
        now_ns = time.monotonic_ns()
        try:
            er = m.read_edge_result(msg)
        except rec.MessageError as exc:
            self.rejected.add()
            self.warn.event(f'ignored malformed edge result: {exc}')
            return
        round_trip = (now_ns - er.device_stamp_ns) / 1e6
        if not 0.0 <= round_trip <= MAX_PLAUSIBLE_ROUND_TRIP_MS:
            self.rejected.add()
            self.warn.event(f'round trip {round_trip:.0f} ms is implausible: the link monitor must run on the '
                            f'device\'s machine (same monotonic clock)')
            return
        self.estimator.add(LinkSample(now_ns / 1e9, er.payload_bytes, max(round_trip - er.edge_ms, 0.0),
                                      sent_t=er.device_stamp_ns / 1e9))
        self.samples.add()

    def _publish(self) -> None:
        bw, rtt = self.estimator.update(time.monotonic())
        if bw is not None or rtt is not None:
            self.rate.tick()
        if bw is not None:
            self.bw_pub.publish(Float32(data=float(bw)))
        if rtt is not None:
            self.rtt_pub.publish(Float32(data=float(rtt)))

    def _diagnostics(self) -> tuple[bytes, str, dict[str, Any]]:
        last = self.estimator.last_sample_t
        age = float('inf') if last is None else time.monotonic() - last
        stale = age > self.p['stale_after_s']
        values = {'samples': self.samples.total, 'sample_rate_hz': self.samples.rate(),
                  'rejected': self.rejected.total, 'window_samples': len(self.estimator.samples),
                  'last_sample_age_s': age,
                  'bandwidth_mbps': self.estimator.bandwidth_mbps if self.estimator.bandwidth_mbps is not None
                  else 'none yet',
                  'bandwidth_resolved': self.estimator.resolved,
                  'rtt_ms': self.estimator.rtt_ms if self.estimator.rtt_ms is not None else 'none yet'}
        message = 'no recent samples (nothing sent to the edge?)' if stale else 'ok'
        return level_of([(stale, DiagnosticStatus.WARN)]), message, values


def main(args: list[str] | None = None) -> int:
    """Console script ``link_monitor``."""
    return run_node(LinkMonitor, args)


if __name__ == '__main__':
    sys.exit(main())
