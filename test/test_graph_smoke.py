# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Smoke test of the ROS installation: two real rclpy processes pass a sensor_msgs/CompressedImage."""

from __future__ import annotations

import os
import sys
import textwrap

from coinfer_edge.demo.harness import NodeProcess, ros_env

TALKER = textwrap.dedent('''
    import hashlib, rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage
    rclpy.init()
    node = Node('smoke_talker')
    pub = node.create_publisher(CompressedImage, 'smoke', QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE))
    payload = bytes(range(256)) * 800  # 200 KB: fragmented by DDS
    msg = CompressedImage(format='coinfer/smoke')
    msg.data = payload
    node.create_timer(0.1, lambda: pub.publish(msg))
    print('ready: talker sha', hashlib.sha256(payload).hexdigest(), flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
''')

LISTENER = textwrap.dedent('''
    import hashlib, rclpy, sys
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage
    rclpy.init()
    node = Node('smoke_listener')
    got = []
    node.create_subscription(CompressedImage, 'smoke', got.append,
                             QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE))
    print('ready: listener', flush=True)
    while not got:
        rclpy.spin_once(node, timeout_sec=0.1)
    m = got[0]
    print('received', m.format, len(m.data), hashlib.sha256(bytes(m.data)).hexdigest(), flush=True)
''')


def test_two_processes_pass_a_compressed_image(tmp_path, ros_domain_id):
    env = ros_env(ros_domain_id, os.environ['ROS_LOG_DIR'])
    talker = NodeProcess([sys.executable, '-c', TALKER], env, tmp_path / 'talker.log', 'talker').start()
    listener = NodeProcess([sys.executable, '-c', LISTENER], env, tmp_path / 'listener.log', 'listener').start()
    try:
        sha = talker.wait_for(r'ready: talker sha (\w+)', 60.0)
        assert sha, talker.tail()
        received = listener.wait_for(r'received (\S+) (\d+) (\w+)', 60.0)
        assert received, listener.tail()
        assert received.group(1) == 'coinfer/smoke'
        assert int(received.group(2)) == 256 * 800
        assert received.group(3) == sha.group(1)
        assert listener.proc.wait(10) == 0
    finally:
        listener.stop()
        talker.stop()
    assert talker.proc.returncode == 0, talker.tail()
