# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""ROS graph: every node together, the device behind the in-process emulated link.

Checks the measurement loop: round trips on the device clock -> link monitor estimates
that follow the emulated bandwidth schedule -> policy decisions -> applied by the device;
that every node reports its diagnostics on /diagnostics, and that every camera frame is accounted for.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import statistics
import time

import numpy as np
import pytest
import torch

from coinfer_device.core.action import Action
from coinfer_device.core.profile import Profile
from coinfer_device.core import records as rec
from coinfer_edge.core.decision import RewardConfig, state_dim
from coinfer_edge.demo.harness import Graph, config_file, ros_env
from coinfer_edge.core.policy import save_policy
from graph_support import Probe, analyzer_paths, model_checkpoint, profile_file

SCHEDULE_MBPS = [2.0, 8.0]
STEP_S = 8.0
RTT_MS = 30.0
DEVICE = 'device_node: pipeline'
STATUSES = {'camera_node': ('source', 'image_raw rate'), 'device_node': ('pipeline', 'image_raw rate'),
            'cpu_monitor': ('cpu load', 'coinfer/device/cpu_load rate'),
            'link_monitor': ('link estimate', 'coinfer/link rate'), 'edge_node': ('features',),
            'edge_cpu_monitor': ('cpu load', 'coinfer/edge/cpu_load rate'),
            'policy_node': ('decisions', 'coinfer/decision rate')}


@pytest.fixture(scope='module')
def graph(tmp_path_factory, ros_domain_id):
    model = model_checkpoint()
    g = Graph(ros_env(ros_domain_id, os.environ['ROS_LOG_DIR']), tmp_path_factory.mktemp('full-graph-logs'))
    g.add('camera', 'camera_node', params_files=[config_file('camera.yaml')], params={'rate_hz': 20.0})
    g.add('device', 'device_node', params_files=[config_file('device.yaml')],
          # Probes (default sizes, the large one chosen from the measured bandwidth) every 0.1 s.
          params={'model_path': str(model), 'probe_interval_s': 0.1,
                  'emulated_link.enabled': True,
                  'emulated_link.bandwidth_schedule_mbps': SCHEDULE_MBPS, 'emulated_link.step_s': STEP_S,
                  'emulated_link.rtt_ms': RTT_MS})
    g.add('cpu_monitor', 'cpu_monitor', params_files=[config_file('device.yaml')])
    g.add('link_monitor', 'link_monitor', params_files=[config_file('link_monitor.yaml')],
          params={'window_s': 3.0, 'ewma_alpha': 0.5})
    g.add('edge', 'edge_node', params_files=[config_file('edge.yaml')],
          params={'model_path': str(model), 'annotated.enabled': True})
    g.add('edge_cpu_monitor', 'cpu_monitor', name='edge_cpu_monitor', params_files=[config_file('edge.yaml')])
    try:
        g.start()
        yield g
    finally:
        g.stop()


@pytest.fixture(scope='module')
def probe(graph):
    p = Probe()
    yield p
    p.close()


def _value_at(samples, t):
    before = [s.value for s in samples if s.t <= t]
    return before[-1] if before else None


def test_link_estimates_follow_the_emulated_schedule(graph, probe):
    bandwidth, rtt = probe.floats('coinfer/link/bandwidth_mbps'), probe.floats('coinfer/link/rtt_ms')
    switches = []
    last = None
    deadline = time.monotonic() + 3 * STEP_S + 30.0
    # Find two schedule switches (2 -> 8 and 8 -> 2 Mbit/s) from the device's diagnostics.
    while len(switches) < 2 and time.monotonic() < deadline:
        current = probe.diagnostic(DEVICE).get('emulated_bandwidth_mbps')
        if current is not None and last is not None and current != last:
            switches.append((time.monotonic(), float(current)))
        last = current if current is not None else last
        time.sleep(0.05)
    assert len(switches) == 2, f'no schedule switches seen; device diagnostics {probe.diagnostic(DEVICE)}'
    time.sleep(STEP_S - 2.0)
    samples = bandwidth.snapshot()
    for t_switch, mbps in switches:
        # Diagnostics arrive at 1 Hz: the switch happened up to ~1 s before it was seen.
        settled = _value_at(samples, t_switch + STEP_S - 3.0)
        before = _value_at(samples, t_switch - 1.5)
        other = SCHEDULE_MBPS[1 - SCHEDULE_MBPS.index(mbps)]
        print(f'emulated {other:g} -> {mbps:g} Mbit/s: estimate {before} -> {settled}')
        assert before is not None and settled is not None
        assert abs(before - other) / other < 0.3, f'{before} Mbit/s estimated while the link had {other}'
        assert abs(settled - mbps) / mbps < 0.3, f'{settled} Mbit/s estimated while the link had {mbps}'
    rtts = [s.value for s in rtt.snapshot()[-20:]]
    print(f'RTT estimates {min(rtts):.1f}..{max(rtts):.1f} ms (emulated {RTT_MS:g} ms)')
    # The estimate is the typical small-message round trip: the emulated RTT plus the software path.
    assert RTT_MS - 1.0 <= statistics.median(rtts) <= RTT_MS + 20.0


def _next_switch(probe, timeout):
    """Wait for the device's emulated bandwidth to change; return (time seen, new Mbit/s) or None."""
    last = probe.diagnostic(DEVICE).get('emulated_bandwidth_mbps')
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = probe.diagnostic(DEVICE).get('emulated_bandwidth_mbps')
        if current is not None and last is not None and current != last:
            return time.monotonic(), float(current)
        last = current if current is not None else last
        time.sleep(0.05)
    return None


def test_bandwidth_stays_measured_while_the_policy_sends_small_frames(graph, probe):
    """Small remote frames (1088 B) measure only the RTT: the device adds large probes, one result per frame."""
    small = Action(0, 0, 8)
    results, bandwidth = probe.results(), probe.floats('coinfer/link/bandwidth_mbps')
    probe.set_decision(small)
    try:
        assert results.wait(lambda items: sum(r.value.action == small and r.value.source == rec.SOURCE_EDGE
                                              for r in items) >= 20, 20.0), graph['device'].tail()
        sent_before = int(probe.wait_diagnostic(DEVICE, lambda v: 'probes_sent' in v, 5.0)['probes_sent'])
        start = len(results)
        switch = _next_switch(probe, 2 * STEP_S + 5.0)
        assert switch is not None, 'no schedule switch seen'
        t_switch, mbps = switch
        time.sleep(STEP_S - 2.0)
        remote = [r for r in results.snapshot(start) if r.t > t_switch]
        assert remote and all(r.value.action == small and r.value.source == rec.SOURCE_EDGE for r in remote[5:]), \
            'the policy decision must keep applying'
        settled = _value_at(bandwidth.snapshot(), t_switch + STEP_S - 3.0)
        print(f'small remote frames, link switched to {mbps:g} Mbit/s: estimate {settled}')
        assert settled is not None and abs(settled - mbps) / mbps < 0.3, f'{settled} Mbit/s for {mbps} Mbit/s'
        sent_after = int(probe.diagnostic(DEVICE)['probes_sent'])
        assert sent_after - sent_before >= 10, 'large probes must go out while only small frames are sent'
        seqs = [r.value.frame_seq for r in results.snapshot(start)]
        assert len(seqs) == len(set(seqs)), 'a probe answer must never produce a second result'
    finally:
        probe.set_decision(None)


def test_policy_closes_the_loop_and_every_node_reports(graph, probe):
    results = probe.results()
    annotated = probe.images('coinfer/annotated')
    decisions = probe.decisions()   # before the policy starts: every decision it publishes is seen
    policy = graph.add('policy', 'policy_node', params_files=[config_file('policy.yaml')],
                       params={'policy': 'rule', 'profile_path': str(profile_file())})
    policy.start().wait_ready(60.0)
    assert decisions.wait(lambda items: len(items) >= 5, 20.0), policy.tail()
    start = len(results)
    assert results.wait(lambda items: sum(r.value.fallback == rec.FALLBACK_NONE for r in items) >= 10, 20.0, start)
    chosen = {d.value for d in decisions.snapshot()}
    applied = {r.value.action for r in results.snapshot(start) if r.value.fallback == rec.FALLBACK_NONE}
    assert applied <= chosen, f'device applied {applied}, policy published {chosen}'
    inputs = ('bandwidth_mbps', 'rtt_ms', 'device_slowdown', 'edge_slowdown', 'recent_latency_ms')
    values = probe.wait_diagnostic('policy_node: decisions',
                                   lambda v: all(v.get(k, 'none yet') != 'none yet' for k in inputs), 15.0)
    for key in inputs:
        assert values.get(key, 'none yet') != 'none yet', f'policy never received {key}: {values}'
    # the measured compute slowdowns (device and edge against the per-frame profile), not CPU-load shares
    assert 0.2 < float(values['device_slowdown']) < 50.0 and 0.2 < float(values['edge_slowdown']) < 50.0
    assert float(values['decision_latency_mean_ms']) > 0.0
    assert annotated.wait(lambda items: len(items) >= 1, 10.0), 'annotated images enabled but none received'
    assert annotated.snapshot()[0].value == (128, 128, 'bgr8')
    for node, tasks in STATUSES.items():
        for task in tasks:
            name = f'{node}: {task}'
            status = probe.status(name)
            assert status is not None and status.values, f'no status {name!r} on /diagnostics'
            assert status.hardware_id == socket.gethostname(), f'{name}: hardware_id {status.hardware_id!r}'
            assert len(analyzer_paths(name)) == 1, f'{name}: analyzers {analyzer_paths(name)}'
    ours = {name for name in probe.statuses if name.split(': ')[0] in STATUSES}
    assert ours == {f'{n}: {t}' for n, tasks in STATUSES.items() for t in tasks}, ours
    for name in ('device_node: image_raw rate', 'camera_node: image_raw rate'):  # the camera runs at 20 Hz
        rate = probe.wait_diagnostic(name, lambda v: 15.0 < float(v['Actual frequency (Hz)']) < 25.0, 10.0)
        assert 15.0 < float(rate['Actual frequency (Hz)']) < 25.0, (name, rate)


def test_every_camera_frame_is_accounted_for(graph, probe):
    """The device accounts for each frame the camera published: received, lost, or missed before it listened."""
    device = probe.wait_diagnostic(DEVICE, lambda v: int(v.get('camera_frames', 0)) > 100, 20.0)
    camera = probe.diagnostic('camera_node: source')
    frames, published = int(device['camera_frames']), int(camera['frames_published'])
    parts = [int(device[k]) for k in ('camera_frames_received', 'camera_frames_lost', 'camera_frames_missed_at_start')]
    print(f'camera published {published}; device settled {frames}: received, lost, missed at start = {parts}')
    assert sum(parts) == frames
    # The device settles a frame 2 s after its announcement and the two statuses are up to 1 s apart (20 Hz).
    assert published - 80 <= frames <= published + 20, (published, device)
    assert int(device['camera_frames_lost']) <= 0.02 * frames, device


def test_device_and_edge_publish_their_measured_compute_slowdown(graph, probe):
    """Measured model compute / the profile's, as the nodes feel it (one frame per period: cold caches, > 1)."""
    slowdowns = {side: probe.floats(f'coinfer/{side}/compute_slowdown') for side in ('device', 'edge')}
    for side, samples in slowdowns.items():
        assert samples.wait(lambda items: len(items) >= 3, 20.0), f'no coinfer/{side}/compute_slowdown'
        values = [s.value for s in samples.snapshot()]
        # The profile is the shipped model's on this machine kind: plausible values, not the CPU load's 0..1.
        assert all(0.2 < v < 50.0 for v in values), (side, values)


def test_sacd_policy_file_drives_decisions(graph, probe, tmp_path):
    """A policy file (random weights, real format and loader) makes policy_node publish valid actions."""
    profile = Profile.load(profile_file())
    actions = profile.actions()
    gen = torch.Generator().manual_seed(0)
    weights = {'layers.0.weight': torch.randn(32, state_dim(len(actions)), generator=gen),
               'layers.0.bias': torch.zeros(32),
               'layers.1.weight': torch.randn(len(actions), 32, generator=gen),
               'layers.1.bias': torch.zeros(len(actions))}
    policy_path = tmp_path / 'random_policy.safetensors'
    save_policy(policy_path, weights, profile, RewardConfig(), np.ones(len(actions), bool))
    decisions = probe.decisions('/sacd/coinfer/decision')
    node = graph.add('sacd_policy', 'policy_node', namespace='/sacd', params_files=[config_file('policy.yaml')],
                     params={'policy': 'sacd', 'policy_path': str(policy_path), 'profile_path': str(profile_file()),
                             'wait_for_link': False})
    node.start().wait_ready(60.0)
    assert decisions.wait(lambda items: len(items) >= 3, 20.0), node.tail()
    assert {d.value for d in decisions.snapshot()} <= set(actions)
    assert 'policy sacd' in node.output()


def test_the_shield_blocks_an_action_whose_results_miss_the_deadline(graph, probe):
    """Late results of the policy's action on coinfer/result make policy_node choose another action for a while."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Header
    from coinfer_device.ros import messages as m

    decisions = probe.decisions('/shield/coinfer/decision')
    results = probe.publisher(JointState, '/shield/coinfer/result')
    node = graph.add('shield_policy', 'policy_node', namespace='/shield', params_files=[config_file('policy.yaml')],
                     params={'policy': 'rule', 'profile_path': str(profile_file()), 'wait_for_link': False,
                             'shield.hold_s': 30.0})
    node.start().wait_ready(60.0)
    assert decisions.wait(lambda items: len(items) >= 2, 20.0), node.tail()
    assert probe.wait_for_subscribers(results), 'policy_node does not subscribe to /shield/coinfer/result'
    chosen = decisions.snapshot()[-1].value          # no link measured, nothing changes: the same action each time
    late = rec.Result(frame_seq=0, class_id=0, confidence=1.0, exit=chosen.exit, partition=chosen.partition,
                      bits=chosen.bits, source=0, fallback=rec.FALLBACK_NONE, device_ms=250.0, transfer_ms=0.0,
                      edge_ms=0.0, total_ms=250.0, round_trip_ms=0.0, payload_bytes=0, deadline_ms=100.0,
                      deadline_met=False, device_compute_ms=240.0, edge_compute_ms=0.0)
    start = len(decisions)
    for seq in range(1, 9):
        results.publish(m.make_result_msg(dataclasses.replace(late, frame_seq=seq), Header()))
        time.sleep(0.05)
    assert decisions.wait(lambda items: any(d.value != chosen for d in items), 10.0, start), node.tail()
    after = [d.value for d in decisions.snapshot(start)]
    assert after[-1] != chosen, f'{chosen.label()} still chosen after 8 late results: {after}'
    values = probe.wait_diagnostic('shield/policy_node: decisions', lambda v: v.get('shield_blocks') == '1', 10.0)
    assert values.get('shield_blocked') == chosen.label(), values
    assert 'blocked for 30 s' in node.output()
