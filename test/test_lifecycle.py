# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Lifecycle nodes over real DDS: the transitions, what flows in each state, and diagnostics in a namespace.

device_node, edge_node and policy_node start with ``autostart: false`` in namespace /lc and are driven by a
test client through their ``~/change_state`` services, as ``ros2 lifecycle set`` or a launch file would.
"""

from __future__ import annotations

import os
import time

import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from coinfer_device.core import records as rec
from coinfer_device.core.action import Action
from coinfer_device.ros.conventions import READY_MARKER
from coinfer_edge.demo.harness import Graph, config_file, ros_env
from graph_support import Probe, model_checkpoint, profile_file, wait_future, without_rclpy_exit_noise

NS = '/lc'
LIFECYCLE = ('device_node', 'edge_node', 'policy_node')


@pytest.fixture(scope='module')
def graph(tmp_path_factory, ros_domain_id):
    model = model_checkpoint()
    g = Graph(ros_env(ros_domain_id, os.environ['ROS_LOG_DIR']), tmp_path_factory.mktemp('lifecycle-logs'))
    g.add('camera', 'camera_node', namespace=NS, params_files=[config_file('camera.yaml')], params={'rate_hz': 10.0})
    g.add('device', 'device_node', namespace=NS, params_files=[config_file('device.yaml')],
          params={'model_path': str(model), 'autostart': False, 'decision_timeout_s': 60.0})
    g.add('edge', 'edge_node', namespace=NS, params_files=[config_file('edge.yaml')],
          params={'model_path': str(model), 'autostart': False})
    g.add('policy', 'policy_node', namespace=NS, params_files=[config_file('policy.yaml')],
          params={'policy': 'rule', 'profile_path': str(profile_file()), 'wait_for_link': False, 'rate_hz': 10.0,
                  'autostart': False})
    try:
        g.start(['camera'])
        for label in ('device', 'edge', 'policy'):
            g[label].start()
        for label in ('device', 'edge', 'policy'):
            g[label].wait_state('unconfigured', 90.0)
        yield g
    finally:
        codes = g.stop()
        assert all(code == 0 for code in codes.values()), codes


@pytest.fixture(scope='module')
def probe(graph):
    p = Probe('lifecycle_probe')
    yield p
    p.close()


def _change(probe: Probe, node: str, transition: int) -> bool:
    client = probe.node.create_client(ChangeState, f'{NS}/{node}/change_state')
    try:
        assert client.wait_for_service(20.0), f'{node}: no change_state service'
        return wait_future(client.call_async(ChangeState.Request(transition=Transition(id=transition))), 60.0).success
    finally:
        probe.node.destroy_client(client)


def _state(probe: Probe, node: str) -> str:
    client = probe.node.create_client(GetState, f'{NS}/{node}/get_state')
    try:
        assert client.wait_for_service(20.0)
        return wait_future(client.call_async(GetState.Request())).current_state.label
    finally:
        probe.node.destroy_client(client)


def _all(probe: Probe, transition: int, nodes=LIFECYCLE) -> None:
    for node in nodes:
        assert _change(probe, node, transition), f'{node}: transition {transition} failed'


def _quiet_for(collector, seconds: float, settle: float = 0.5) -> int:
    """Return how many items arrive during ``seconds`` after a ``settle`` time for messages already on the way."""
    time.sleep(settle)
    start = len(collector)
    time.sleep(seconds)
    return len(collector) - start


def test_nothing_works_before_configure_and_activate(graph, probe):
    results, decisions = probe.results(f'{NS}/coinfer/result'), probe.decisions(f'{NS}/coinfer/decision')
    assert {_state(probe, n) for n in LIFECYCLE} == {'unconfigured'}
    assert _quiet_for(results, 1.5) == 0 and len(decisions) == 0
    status = probe.wait_diagnostic('lc/device_node: pipeline', lambda v: True, 5.0)
    assert probe.status('lc/device_node: pipeline').message == 'lifecycle state unconfigured: not working', status
    _all(probe, Transition.TRANSITION_CONFIGURE)
    assert {_state(probe, n) for n in LIFECYCLE} == {'inactive'}
    assert _quiet_for(results, 1.5) == 0 and len(decisions) == 0, 'configured but inactive: nothing flows'
    assert not any(READY_MARKER in graph[label].output() for label in ('device', 'edge', 'policy')), \
        'the ready line comes with the active state'


def test_activate_starts_the_flow_and_diagnostics_name_the_robot(graph, probe):
    results, decisions = probe.results(f'{NS}/coinfer/result'), probe.decisions(f'{NS}/coinfer/decision')
    _all(probe, Transition.TRANSITION_ACTIVATE)
    assert {_state(probe, n) for n in LIFECYCLE} == {'active'}
    assert decisions.wait(lambda items: len(items) >= 3, 20.0), graph['policy'].tail()
    assert results.wait(lambda items: sum(r.value.fallback == rec.FALLBACK_NONE for r in items) >= 10, 30.0), \
        graph['device'].tail()
    for label in ('device', 'edge', 'policy'):
        assert READY_MARKER in graph[label].output()
    values = probe.wait_diagnostic('lc/device_node: pipeline', lambda v: int(v.get('processed', 0)) > 0, 10.0)
    status = probe.status('lc/device_node: pipeline')
    assert int(values['processed']) > 0 and status.hardware_id == 'lc', (status, values)
    # The rate check's window (5 s) first still holds the inactive seconds.
    rate = probe.wait_diagnostic('lc/device_node: image_raw rate',
                                 lambda v: 7.0 < float(v.get('Actual frequency (Hz)', 0)) < 13.0, 15.0)
    assert 7.0 < float(rate['Actual frequency (Hz)']) < 13.0, rate
    assert probe.status('lc/device_node: image_raw rate').message == 'Desired frequency met'


def test_deactivate_stops_the_flow_without_unloading_and_activate_resumes(graph, probe):
    results, decisions = probe.results(f'{NS}/coinfer/result'), probe.decisions(f'{NS}/coinfer/decision')
    assert results.wait(lambda items: len(items) >= 5, 20.0)
    _all(probe, Transition.TRANSITION_DEACTIVATE, ('device_node', 'policy_node'))
    assert _state(probe, 'device_node') == 'inactive'
    assert _quiet_for(results, 2.0) == 0, 'an inactive device publishes no result'
    assert _quiet_for(decisions, 1.0) == 0, 'an inactive policy publishes no decision'
    started = time.monotonic()
    _all(probe, Transition.TRANSITION_ACTIVATE, ('device_node', 'policy_node'))
    assert time.monotonic() - started < 5.0, 'activation does not reload anything'
    start = len(results)
    assert results.wait(lambda items: len(items) >= 10, 20.0, start), 'results resume after re-activation'
    assert decisions.wait(lambda items: len(items) >= 3, 20.0, len(decisions))


def test_cleanup_unloads_and_configure_loads_again(graph, probe):
    results = probe.results(f'{NS}/coinfer/result')
    _all(probe, Transition.TRANSITION_DEACTIVATE)
    _all(probe, Transition.TRANSITION_CLEANUP)
    assert {_state(probe, n) for n in LIFECYCLE} == {'unconfigured'}
    deadline = time.monotonic() + 10.0
    while probe.node.count_publishers(f'{NS}/coinfer/result') and time.monotonic() < deadline:
        time.sleep(0.1)
    assert probe.node.count_publishers(f'{NS}/coinfer/result') == 0, 'cleanup destroys the publishers'
    _all(probe, Transition.TRANSITION_CONFIGURE)
    _all(probe, Transition.TRANSITION_ACTIVATE)
    # The probe's decision alone must reach the device: the rule policy's own decisions, at a rate and phase
    # locked to the camera's, could otherwise be the newest at every frame.
    _all(probe, Transition.TRANSITION_DEACTIVATE, ('policy_node',))
    probe.set_decision(Action(2, 4, 8), f'{NS}/coinfer/decision')
    try:
        assert results.wait(lambda items: sum(r.value.source == rec.SOURCE_EDGE for r in items) >= 5, 30.0), \
            graph['device'].tail()
    finally:
        probe.set_decision(None, f'{NS}/coinfer/decision')
        _all(probe, Transition.TRANSITION_ACTIVATE, ('policy_node',))
    for label in ('device', 'edge', 'policy'):
        assert 'Traceback' not in without_rclpy_exit_noise(graph[label].output()), graph[label].tail()


def test_shutdown_from_active_finalizes(graph, probe):
    assert _change(probe, 'policy_node', Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert _state(probe, 'policy_node') == 'finalized'
    assert graph['policy'].alive(), 'a finalized node stays until its process is stopped'
