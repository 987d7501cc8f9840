# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Diagnostics the diagnostic_updater way: the frequency check, and the aggregator analyzers of config/.

The statuses themselves are checked on running graphs: names, hardware_id and values in the root namespace
(test_graph_full.py) and in a robot namespace (test_lifecycle.py).
"""

from __future__ import annotations

import math

import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from coinfer_device.ros.diagnostics import FrequencyStatus
from graph_support import analyzer_paths

ROBOT = {'camera_node': 'Camera', 'device_node': 'Device', 'cpu_monitor': 'CPU', 'link_monitor': 'Link'}
WORKSTATION = {'edge_node': 'Edge', 'edge_cpu_monitor': 'CPU', 'policy_node': 'Policy'}


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _window(freq: FrequencyStatus, clock: Clock, events_per_s: float, seconds: int) -> tuple:
    result = None
    for _ in range(seconds):
        clock.t += 1.0
        freq.tick(int(events_per_s))
        result = freq.status()
    return result


def test_frequency_status_judges_the_windowed_rate_like_diagnostic_updater():
    clock = Clock()
    freq = FrequencyStatus(10.0, 10.0, tolerance=0.1, window=5, clock=clock)
    level, message, values = _window(freq, clock, 0, 1)
    assert (level, message) == (DiagnosticStatus.ERROR, 'No events recorded.')
    level, message, values = _window(freq, clock, 10, 6)
    assert (level, message) == (DiagnosticStatus.OK, 'Desired frequency met')
    assert float(values['Actual frequency (Hz)']) == pytest.approx(10.0)
    assert values['Target frequency (Hz)'] == 10.0 and values['Events since startup'] == 60
    assert values['Minimum acceptable frequency (Hz)'] == pytest.approx(9.0)
    assert values['Maximum acceptable frequency (Hz)'] == pytest.approx(11.0)
    level, message, _ = _window(freq, clock, 8, 5)
    assert (level, message) == (DiagnosticStatus.WARN, 'Frequency too low.')
    level, message, _ = _window(freq, clock, 13, 5)
    assert (level, message) == (DiagnosticStatus.WARN, 'Frequency too high.')
    level, _, values = _window(freq, clock, 10, 2)  # the window still holds three too-fast seconds
    assert level == DiagnosticStatus.WARN and values['Events in window'] == 59


def test_frequency_status_without_upper_bound_only_warns_when_too_slow():
    clock = Clock()
    freq = FrequencyStatus(5.0, math.inf, clock=clock)
    level, _, values = _window(freq, clock, 100, 5)
    assert level == DiagnosticStatus.OK and 'Maximum acceptable frequency (Hz)' not in values
    assert 'Target frequency (Hz)' not in values
    assert _window(freq, clock, 4, 5)[0] == DiagnosticStatus.WARN


@pytest.mark.parametrize('namespace', ['', 'robot1/', 'fleet/robot2/'])
def test_every_status_lands_in_one_analyzer_of_its_side(namespace):
    for nodes, group in ((ROBOT, 'Robot'), (WORKSTATION, 'Workstation')):
        for node, path in nodes.items():
            name = f'{namespace}{node}: some task'
            assert analyzer_paths(name) == [f'coinfer/{group}/{path}'], name


def test_other_statuses_are_left_alone():
    for name in ('motor_driver: temperature', 'my_cpu_monitor: load', 'device_node_extra: x', 'edge_node'):
        assert analyzer_paths(name) == [], name
