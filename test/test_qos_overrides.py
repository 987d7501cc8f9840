# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The standard ``qos_overrides.<topic>.<publisher|subscription>.<policy>`` parameters change the real QoS.

``qos.<key>.*`` sets a node's default QoS of a topic; the standard overrides (what ``ros2 bag`` tooling and
users know) apply on top of it.  Checked on the graph: the QoS each endpoint announces over DDS.
"""

from __future__ import annotations

import os
import time

import pytest
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

from coinfer_edge.demo.harness import Graph, NodeProcess, executable, ros_env
from graph_support import Probe

PARAMS = '''
/**/qos_camera:
  ros__parameters:
    qos.image.durability: transient_local
    qos_overrides:
      /qos/image_raw:
        publisher:
          reliability: best_effort
/**/qos_link:
  ros__parameters:
    qos_overrides:
      /qos/coinfer/edge_result:
        subscription:
          reliability: best_effort
'''


@pytest.fixture(scope='module')
def graph(tmp_path_factory, ros_domain_id):
    tmp = tmp_path_factory.mktemp('qos-overrides')
    params = tmp / 'overrides.yaml'
    params.write_text(PARAMS)
    g = Graph(ros_env(ros_domain_id, os.environ['ROS_LOG_DIR']), tmp)
    g.add('camera', 'camera_node', name='qos_camera', namespace='qos', params_files=[params])
    g.add('link', 'link_monitor', name='qos_link', namespace='qos', params_files=[params])
    try:
        g.start()
        yield g
    finally:
        g.stop()


def _endpoint(lookup, topic: str, node: str):
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline:
        found = [i for i in lookup(topic) if i.node_name == node]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f'{node} has no endpoint on {topic}')


def test_publisher_and_subscription_overrides_apply_on_top_of_the_package_defaults(graph):
    probe = Probe('qos_probe')
    try:
        image = _endpoint(probe.node.get_publishers_info_by_topic, '/qos/image_raw', 'qos_camera')
        assert image.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT, 'qos_overrides: reliable by default'
        assert image.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL, 'qos.image.durability still applies'
        truth = _endpoint(probe.node.get_publishers_info_by_topic, '/qos/coinfer/ground_truth', 'qos_camera')
        assert truth.qos_profile.reliability == ReliabilityPolicy.RELIABLE, 'other topics keep their QoS'
        answers = _endpoint(probe.node.get_subscriptions_info_by_topic, '/qos/coinfer/edge_result', 'qos_link')
        assert answers.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    finally:
        probe.close()


def test_an_override_for_a_topic_the_node_does_not_have_is_an_error(tmp_path, ros_domain_id):
    params = tmp_path / 'typo.yaml'
    params.write_text('/**/cpu_monitor:\n  ros__parameters:\n    qos_overrides:\n      /coinfer/device/cpu_lod:\n'
                      '        publisher:\n          reliability: reliable\n')
    env = ros_env(ros_domain_id, os.environ['ROS_LOG_DIR'])
    proc = NodeProcess([executable('cpu_monitor'), '--ros-args', '--params-file', str(params)], env, label='typo')
    proc.start().proc.wait(60)
    proc.wait_output()
    errors = [line for line in proc.output().splitlines() if line.startswith('cpu_monitor: error:')]
    assert proc.proc.returncode == 2 and len(errors) == 1, proc.output()
    assert 'qos_overrides./coinfer/device/cpu_lod.publisher.reliability' in errors[0], errors
