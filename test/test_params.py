# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Node parameters: one clear error line for bad configuration, runtime changes validated, clean shutdown."""

from __future__ import annotations

import os
import signal
import time

import pytest
from rcl_interfaces.msg import ParameterType
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from coinfer_device.ros import params as rp
from coinfer_edge.demo.harness import NodeProcess, executable, ros_env
from graph_support import Probe, wait_future


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD_STARTS = {
    'yaml_syntax': ('camera_node', lambda d: ['--params-file', _write(d, 'a.yaml', '/**/camera_node: [\n')],
                    'invalid YAML'),
    'no_ros_parameters': ('camera_node', lambda d: ['--params-file', _write(d, 'b.yaml', '/**/camera_node:\n  x: 1\n')],
                          'no ros__parameters'),
    'missing_file': ('camera_node', lambda d: ['--params-file', str(d / 'missing.yaml')], 'missing.yaml'),
    'unknown_parameter': ('camera_node', lambda d: ['--params-file', _write(
        d, 'c.yaml', '/**/camera_node:\n  ros__parameters:\n    rate_hz: 5.0\n    rat_hz: 5.0\n')],
        "unknown parameter(s) rat_hz"),
    'int_for_double': ('camera_node', lambda d: ['-p', 'rate_hz:=5'], "'rate_hz' must be a double"),
    'out_of_range': ('link_monitor', lambda d: ['-p', 'ewma_alpha:=1.5'], "'ewma_alpha' must be <= 1"),
    'bad_choice': ('camera_node', lambda d: ['-p', 'source:=radar'], "'source' must be one of"),
    'bad_qos': ('cpu_monitor', lambda d: ['-p', 'qos.load.reliability:=sometimes'], "'qos.load.reliability'"),
    'non_local_fallback': ('device_node', lambda d: ['-p', 'fallback_action:=[2, 4, 8]'], 'must be a local action'),
    'bad_triple': ('device_node', lambda d: ['-p', 'probe_actions:=[2, 4]'], 'triples'),
    'no_large_probe': ('device_node', lambda d: ['-p', 'probe_actions:=[2, 9, 2]'], 'no action of at least'),
    'slowdown_below_1': ('device_node', lambda d: ['-p', 'compute_slowdown:=0.5'], "'compute_slowdown' must be >= 1"),
    'missing_model': ('edge_node', lambda d: ['-p', f'model_path:={d / "none.pt"}'], 'not found'),
    'bad_namespace': ('edge_node', lambda d: ['-p', 'robot_namespaces:=["r 1"]'], 'not a valid namespace'),
    'bad_policy_file': ('policy_node', lambda d: ['-p', f'policy_path:={d / "none.pt"}'], 'not found'),
    'missing_source': ('camera_node', lambda d: ['-p', 'source:=video', '-p', f'path:={d / "none.avi"}'],
                       'not found'),
}


@pytest.fixture(scope='module')
def bad_starts(tmp_path_factory, ros_domain_id):
    """Start every misconfigured node at once (they all fail fast) and collect their output."""
    tmp = tmp_path_factory.mktemp('bad-params')
    env = ros_env(ros_domain_id, os.environ['ROS_LOG_DIR'])
    procs = {}
    for case, (script, args, _) in BAD_STARTS.items():
        procs[case] = NodeProcess([executable(script), '--ros-args', *args(tmp)], env, tmp / f'{case}.log',
                                  case).start()
    for proc in procs.values():
        proc.proc.wait(120)
        proc.stop()
    return procs


@pytest.mark.parametrize('case', list(BAD_STARTS))
def test_bad_configuration_is_one_clear_line_and_exit_2(bad_starts, case):
    proc = bad_starts[case]
    script, _, expected = BAD_STARTS[case]
    lines = [line for line in proc.output().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f'{script}: error:')]
    assert proc.proc.returncode == 2, proc.output()
    assert len(errors) == 1 and expected in errors[0], proc.output()
    assert not any('Traceback' in line for line in lines), proc.output()
    assert not any('ready:' in line for line in lines)


def test_descriptors_carry_type_range_and_description():
    spec = rp.Param('rate_hz', 5.0, 'Rate', lo=0.5, hi=50.0, unit='Hz')
    d = rp.descriptor(spec)
    assert d.type == ParameterType.PARAMETER_DOUBLE and 'Rate' in d.description and '[Hz]' in d.description
    assert d.floating_point_range[0].from_value == 0.5 and d.floating_point_range[0].to_value == 50.0
    assert d.read_only and 'startup only' in d.additional_constraints
    assert rp.descriptor(rp.Param('n', 1, 'N', lo=0)).integer_range[0].from_value == 0
    assert rp.validate_value(rp.Param('a', [1.0], 'A', lo=0.0), [1.0, -2.0]) == 'must be >= 0, got -2.0'
    assert rp.validate_value(rp.Param('s', ['x'], 'S'), ['x', 3]).startswith('must be a string array')


@pytest.fixture(scope='module')
def camera(tmp_path_factory, ros_domain_id):
    env = ros_env(ros_domain_id, os.environ['ROS_LOG_DIR'])
    proc = NodeProcess.node('camera_node', env, tmp_path_factory.mktemp('camera-log'), name='param_camera',
                            params={'rate_hz': 2.0})
    proc.start().wait_ready(60.0)
    yield proc
    proc.stop()


def test_runtime_changes_are_validated_with_a_reason(camera):
    probe = Probe('param_probe')
    try:
        client = AsyncParameterClient(probe.node, 'param_camera')
        assert client.wait_for_services(15.0)
        ok = wait_future(client.set_parameters([Parameter('rate_hz', value=4.0)])).results[0]
        assert ok.successful, ok.reason
        assert wait_future(client.get_parameters(['rate_hz'])).values[0].double_value == 4.0
        for param, words in ((Parameter('rate_hz', value=5000.0), 'rate_hz'),
                             (Parameter('rate_hz', value=3), 'type'),
                             (Parameter('source', value='video'), 'source')):
            result = wait_future(client.set_parameters([param])).results[0]
            assert not result.successful and words in result.reason, result.reason
        described = wait_future(client.describe_parameters(['rate_hz', 'source'])).descriptors
        assert described[0].floating_point_range[0].to_value == 1000.0 and not described[0].read_only
        assert described[1].read_only and 'fashion-mnist' in described[1].additional_constraints
    finally:
        probe.close()
    assert camera.alive()


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signals_end_nodes_cleanly(tmp_path, ros_domain_id, sig):
    env = ros_env(ros_domain_id, os.environ['ROS_LOG_DIR'])
    proc = NodeProcess.node('cpu_monitor', env, tmp_path, name=f'sig_{int(sig)}').start().wait_ready(60.0)
    proc.signal(sig)
    assert proc.proc.wait(15) == 0, proc.output()
    proc.stop()
    assert 'Traceback' not in proc.output()


# Every node stopped while it is still starting (Python start-up, imports of torch/rclpy, model
# load): the console scripts must end quietly with status 0 at any of these moments.
STARTUP_STOPS = [(script, sig, delay)
                 for script in ('camera_node', 'device_node', 'cpu_monitor', 'edge_node', 'link_monitor', 'policy_node')
                 for sig, delay in ((signal.SIGINT, 0.3), (signal.SIGTERM, 0.3))]
STARTUP_STOPS += [('device_node', sig, delay) for sig in (signal.SIGINT, signal.SIGTERM) for delay in (0.1, 0.8, 1.5)]


@pytest.fixture(scope='module')
def startup_stops(tmp_path_factory, ros_domain_id):
    tmp = tmp_path_factory.mktemp('startup-stops')
    env = ros_env(ros_domain_id, os.environ['ROS_LOG_DIR'])
    procs = []
    for i, (script, sig, delay) in enumerate(STARTUP_STOPS):
        params = {'policy': 'rule'} if script == 'policy_node' else {}
        procs.append(NodeProcess.node(script, env, tmp, label=f'stop{i}', name=f'stop{i}', params=params))
    started = time.monotonic()
    for proc in procs:
        proc.start()
    for (_, sig, delay), proc in sorted(zip(STARTUP_STOPS, procs), key=lambda item: item[0][2]):
        time.sleep(max(started + delay - time.monotonic(), 0.0))
        proc.signal(sig)
    for proc in procs:
        proc.proc.wait(60)
        proc.stop()
    return procs


@pytest.mark.parametrize('case', range(len(STARTUP_STOPS)),
                         ids=[f'{s}-{sig.name}-{d}s' for s, sig, d in STARTUP_STOPS])
def test_a_stop_during_startup_is_quiet_with_status_0(startup_stops, case):
    proc = startup_stops[case]
    assert 'Traceback' not in proc.output() and 'KeyboardInterrupt' not in proc.output(), proc.output()
    assert proc.proc.returncode == 0, proc.output()
