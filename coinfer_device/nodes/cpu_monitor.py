# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""CPU monitor: publishes the machine's CPU load in 0..1 (std_msgs/Float32, sensor-data QoS).

The same executable serves both sides: on the robot it publishes
``coinfer/device/cpu_load`` (default), on the workstation the launch file names it
``edge_cpu_monitor`` and sets ``topic: coinfer/edge/cpu_load``.  The load is psutil's
system-wide utilisation averaged over each publishing period.
"""

from __future__ import annotations

import sys
from typing import Any

import psutil
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from std_msgs.msg import Float32

from coinfer_device.ros import params as rp
from coinfer_device.ros.diagnostics import DIAGNOSTIC_PARAMS, Diagnostics, FrequencyStatus, RateMeter
from coinfer_device.ros.runtime import run_node

QOS = (rp.QosDefault('load', '<topic>', 'best_effort', 1),)

PARAMS = [
    rp.Param('topic', 'coinfer/device/cpu_load', 'Topic to publish the load on (relative = in the node namespace)'),
    rp.Param('rate_hz', 2.0, 'Publishing rate; the load is averaged over each period', lo=0.1, hi=100.0, unit='Hz'),
    rp.Param('high_load_warn', 0.9, 'Diagnostics warn above this load', lo=0.0, hi=1.0),
] + rp.qos_params(QOS) + DIAGNOSTIC_PARAMS


class CpuMonitor(Node):
    """Publish psutil CPU utilisation as a fraction."""

    def __init__(self) -> None:
        super().__init__('cpu_monitor')
        self.p = rp.declare(self, PARAMS)
        self.pub = rp.create_publisher(self, Float32, self.p['topic'], self.p, 'load')
        self.load = 0.0
        self.published = RateMeter()
        psutil.cpu_percent(interval=None)  # the first call only starts the measurement window
        self.create_timer(1.0 / self.p['rate_hz'], self._tick)
        rp.install_set_callback(self, PARAMS)
        diagnostics = Diagnostics(self, self._diagnostics, task='cpu load')
        self.rate = diagnostics.add_frequency(f"{self.p['topic']} rate",
                                              FrequencyStatus(self.p['rate_hz'], self.p['rate_hz']))

    def ready_summary(self) -> str:
        """Return the one-line description logged with the ready marker."""
        return f"publishing CPU load on {self.resolve_topic_name(self.p['topic'])} at {self.p['rate_hz']:g} Hz"

    def _tick(self) -> None:
        self.load = min(max(psutil.cpu_percent(interval=None) / 100.0, 0.0), 1.0)
        self.pub.publish(Float32(data=float(self.load)))
        self.published.add()
        self.rate.tick()

    def _diagnostics(self) -> tuple[bytes, str, dict[str, Any]]:
        high = self.load > self.p['high_load_warn']
        return (DiagnosticStatus.WARN if high else DiagnosticStatus.OK, 'high CPU load' if high else 'ok',
                {'cpu_load': self.load, 'cpus': psutil.cpu_count(), 'published': self.published.total})


def main(args: list[str] | None = None) -> int:
    """Console script ``cpu_monitor``."""
    return run_node(CpuMonitor, args)


if __name__ == '__main__':
    sys.exit(main())
