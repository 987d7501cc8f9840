# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""ROS graph: two robots in two namespaces share one edge node without cross-talk."""

from __future__ import annotations

import os
import statistics

import pytest

from coinfer_device.core.action import Action
from coinfer_device.core import records as rec
from coinfer_edge.demo.harness import Graph, config_file, ros_env
from graph_support import Probe, accuracy, model_checkpoint, without_rclpy_exit_noise

ROBOTS = {'/r1': (Action(2, 4, 8), 0), '/r2': (Action(1, 2, 4), 5000)}
SLOWDOWN = {'/r1': 1.0, '/r2': 6.0}  # r2 emulates a Raspberry Pi 4 class CPU


@pytest.fixture(scope='module')
def graph(tmp_path_factory, ros_domain_id):
    model = model_checkpoint()
    g = Graph(ros_env(ros_domain_id, os.environ['ROS_LOG_DIR']), tmp_path_factory.mktemp('multi-robot-logs'))
    for ns, (_, start_index) in ROBOTS.items():
        robot = ns.strip('/')
        g.add(f'{robot}_camera', 'camera_node', namespace=ns, params_files=[config_file('camera.yaml')],
              params={'rate_hz': 10.0, 'start_index': start_index, 'frame_id': f'{robot}_camera'})
        g.add(f'{robot}_device', 'device_node', namespace=ns, params_files=[config_file('device.yaml')],
              params={'model_path': str(model), 'compute_slowdown': SLOWDOWN[ns]})
    g.add('edge', 'edge_node', params_files=[config_file('edge.yaml')],
          params={'model_path': str(model), 'robot_namespaces': list(ROBOTS)})
    try:
        g.start()
        yield g
    finally:
        codes = g.stop()
    # Every node, models and threads included, ends cleanly on SIGINT.
    assert all(code == 0 for code in codes.values()), codes
    for label, proc in g.nodes.items():
        assert 'Traceback' not in without_rclpy_exit_noise(proc.output()), f'{label}:\n{proc.tail()}'


def test_two_namespaces_share_one_edge_without_cross_talk(graph):
    probe = Probe()
    try:
        streams = {ns: (probe.results(f'{ns}/coinfer/result'), probe.ground_truth(f'{ns}/coinfer/ground_truth'))
                   for ns in ROBOTS}
        for ns, (action, _) in ROBOTS.items():
            probe.set_decision(action, f'{ns}/coinfer/decision')
        for ns, (action, _) in ROBOTS.items():
            results, _ = streams[ns]

            def enough(items, a=action):
                return sum(r.value.action == a and r.value.source == rec.SOURCE_EDGE for r in items) >= 80
            assert results.wait(enough, 60.0), \
                f'{ns}: too few edge results; log:\n{graph[ns.strip("/") + "_device"].tail()}'
        for ns, (action, _) in ROBOTS.items():
            results, truth = streams[ns]
            robot = ns.strip('/')
            answered = [r for r in results.snapshot() if r.value.source == rec.SOURCE_EDGE]
            assert {r.frame_id for r in results.snapshot()} == {f'{robot}_camera'}, 'results of another robot'
            assert {r.value.action for r in answered} == {action}, 'decisions crossed namespaces'
            seqs = [r.value.frame_seq for r in results.snapshot()]
            assert len(seqs) == len(set(seqs))
            acc, n = accuracy(answered, truth.snapshot())
            print(f'{ns}: {n} edge-answered frames, accuracy {acc:.3f}')
            assert n >= 50 and acc > 0.7, f'{ns}: accuracy {acc:.3f} over {n} frames'
        values = probe.wait_diagnostic(
            'edge_node: features', lambda v: all(int(v.get(f'{ns}/coinfer/features answered', 0)) > 0 for ns in ROBOTS),
            10.0)
        for ns in ROBOTS:
            assert int(values[f'{ns}/coinfer/features answered']) > 0
            assert int(values[f'{ns}/coinfer/features rejected']) == 0
    finally:
        probe.close()


def test_compute_slowdown_emulates_a_slower_device_cpu(graph):
    """The same local action on both robots: r2 (compute_slowdown 6) reports about 6x the compute in device_ms."""
    full = Action(2, 10, 0)
    probe = Probe('slowdown_probe')
    try:
        streams = {ns: probe.results(f'{ns}/coinfer/result') for ns in ROBOTS}
        for ns in ROBOTS:
            probe.set_decision(full, f'{ns}/coinfer/decision')
        medians = {}
        for ns, results in streams.items():
            def enough(items):
                return sum(r.value.action == full and r.value.fallback == rec.FALLBACK_NONE for r in items) >= 40
            assert results.wait(enough, 30.0), f'{ns}: the local decision never applied'
            local = [r.value for r in results.snapshot() if r.value.action == full and r.value.fallback == 0]
            assert all(v.total_ms >= v.device_ms for v in local)
            medians[ns] = statistics.median(v.device_ms for v in local[5:])
        print(f'median device_ms of {full.label()}: ' + ', '.join(
            f'{ns} {medians[ns]:.2f} ms (compute_slowdown {SLOWDOWN[ns]:g})' for ns in ROBOTS))
        # Only the network's compute is scaled (image conversion is not), so the ratio is a bit below 6.
        assert medians['/r2'] >= 3.0 * medians['/r1'], medians
    finally:
        probe.close()


def test_only_rclpys_exit_finalizer_message_is_ignored():
    """The teardown check drops rclpy's known finalizer message at exit, and nothing else."""
    noise = ('Exception ignored in: <function Future.__del__ at 0x7f647c1e58a0>\nTraceback (most recent call last):\n'
             '  File "/x/rclpy/task.py", line 56, in __del__\n    if self._exception is not None:\n'
             "AttributeError: 'Task' object has no attribute '_exception'\n")
    assert without_rclpy_exit_noise(f'[INFO] ready\n{noise}[INFO] done\n') == '[INFO] ready\n[INFO] done\n'
    real = 'Traceback (most recent call last):\n  File "/x/device_node.py", line 3, in run\nValueError: boom\n'
    assert 'Traceback' in without_rclpy_exit_noise(noise + real)
