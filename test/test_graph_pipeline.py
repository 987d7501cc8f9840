# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""ROS graph: camera -> device -> edge as real processes over Fast DDS (loopback only).

One graph serves the whole module; the tests run in file order and each leaves the graph
running with a decision published by the probe.
"""

from __future__ import annotations

import math
import os
import threading
import time
import zlib

import psutil
import pytest
import torch
from std_msgs.msg import Header

from coinfer_device.core import codec
from coinfer_device.core.codec import FORMAT, encode_features, encoded_size, peek_header
from coinfer_device.core.data import FASHION_MNIST_CLASSES
from coinfer_device.core.action import Action
from coinfer_device.core import records as rec
from coinfer_device.ros import messages as m
from coinfer_edge.demo.harness import Graph, config_file, ros_env
from graph_support import Probe, accuracy, model_checkpoint, profile_file

REMOTE = Action(2, 4, 8)
FALLBACK = Action(2, 10, 0)
EDGE_TIMEOUT_MS = 500.0
DECISION_TIMEOUT_S = 1.5
PROBE_INTERVAL_S = 0.3


@pytest.fixture(scope='module')
def graph(tmp_path_factory, ros_domain_id):
    model = model_checkpoint()
    env = ros_env(ros_domain_id, os.environ['ROS_LOG_DIR'])
    g = Graph(env, tmp_path_factory.mktemp('pipeline-logs'))
    g.add('camera', 'camera_node', params_files=[config_file('camera.yaml')], params={'rate_hz': 15.0})
    g.add('device', 'device_node', params_files=[config_file('device.yaml')],
          params={'model_path': str(model), 'edge_timeout_ms': EDGE_TIMEOUT_MS,
                  'decision_timeout_s': DECISION_TIMEOUT_S, 'probe_interval_s': PROBE_INTERVAL_S,
                  'fallback_action': FALLBACK.to_list()})
    g.add('edge', 'edge_node', params_files=[config_file('edge.yaml')], params={'model_path': str(model)})
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


@pytest.fixture(scope='module')
def streams(probe):
    return {'results': probe.results(), 'truth': probe.ground_truth()}


def _wait_action(results, action, count, timeout, source=None):
    start = len(results)
    ok = results.wait(lambda items: sum(r.value.action == action and (source is None or r.value.source == source)
                                        for r in items) >= count, timeout, start)
    return ok, start


def test_edge_results_have_documented_fields_and_accuracy(graph, probe, streams):
    results, truth = streams['results'], streams['truth']
    probe.set_decision(REMOTE)
    ok, start = _wait_action(results, REMOTE, 120, timeout=60.0, source=rec.SOURCE_EDGE)
    assert ok, f'no edge results for {REMOTE.label()}; device log:\n{graph["device"].tail()}'
    edge = [r for r in results.snapshot(start) if r.value.action == REMOTE and r.value.source == rec.SOURCE_EDGE]
    payload = encoded_size((1, 64, 8, 8), 8)
    for r in edge:
        v = r.value
        assert r.frame_id == 'camera'
        assert 0.0 < v.confidence <= 1.0
        assert 0 <= v.class_id < 10 and v.class_name == FASHION_MNIST_CLASSES[v.class_id]
        assert v.fallback == rec.FALLBACK_NONE
        assert v.payload_bytes == payload
        assert v.device_ms > 0 and v.edge_ms > 0
        assert v.round_trip_ms >= v.edge_ms and v.transfer_ms == pytest.approx(v.round_trip_ms - v.edge_ms, abs=1e-6)
        assert v.total_ms >= v.device_ms + v.round_trip_ms - 1e-6
        assert v.deadline_met == (v.total_ms <= v.deadline_ms)
    seqs = [r.value.frame_seq for r in edge]
    assert len(set(seqs)) == len(seqs), 'one result per frame'
    acc, n = accuracy(edge, truth.snapshot())
    assert n >= 100, 'results must join ground truth by header stamp'
    print(f'edge-path accuracy {acc:.3f} over {n} frames')
    assert acc > 0.7, f'accuracy {acc:.3f} over {n} frames'


def test_new_decision_applies_to_the_next_frames(graph, probe, streams):
    results = streams['results']
    steps = ((Action(0, 1, 4), rec.SOURCE_EDGE), (Action(1, 4, 0), rec.SOURCE_DEVICE), (REMOTE, rec.SOURCE_EDGE))
    for action, source in steps:
        t_set = time.monotonic()
        probe.set_decision(action)
        ok, start = _wait_action(results, action, 1, timeout=15.0)
        assert ok, f'{action.label()} never applied'
        first = next(i for i, r in enumerate(results.snapshot(start)) if r.value.action == action)
        # Frames already in flight may finish under the old decision; after that, only the new one.
        assert results.wait(lambda items: len(items) >= 20, 15.0, start + first)
        after = results.snapshot(start + first)
        later = [r for r in after if r.t > after[0].t + 0.5]
        assert later and all(r.value.action == action and r.value.source == source for r in later), \
            f'{action.label()}: {[r.value.action.label() for r in after]}'
        assert results.snapshot(start + first)[0].t - t_set < 5.0


def test_malformed_features_are_rejected_counted_and_traffic_continues(graph, probe, streams):
    results = streams['results']
    probe.set_decision(REMOTE)
    assert _wait_action(results, REMOTE, 5, 15.0, rec.SOURCE_EDGE)[0]
    pub = probe.features_publisher()
    assert probe.wait_for_subscribers(pub, 1), 'edge did not match the probe publisher'
    good = encode_features(torch.zeros(1, 64, 8, 8), bits=8, exit_point=2, partition_point=4, frame_seq=7)
    bad_partition = encode_features(torch.zeros(1, 64, 8, 8), bits=8, exit_point=0, partition_point=4, frame_seq=8)
    wrong_shape = encode_features(torch.zeros(1, 3, 5, 5), bits=8, exit_point=2, partition_point=4, frame_seq=9)
    corrupted = bytearray(good)
    corrupted[-1] ^= 0xFF
    garbage = [(b'not a feature message', FORMAT), (good[:20], FORMAT), (bytes(corrupted), FORMAT),
               (good, 'jpeg'), (bad_partition, FORMAT), (wrong_shape, FORMAT)]
    before = int(probe.wait_diagnostic('edge_node: features', lambda v: True, 5.0).get('rejected_total', 0))
    start = len(results)
    for data, fmt in garbage:  # paced: the edge keeps only the newest 2 feature messages (keep-last 2)
        pub.publish(m.make_features_msg(data, Header(frame_id='garbage'), fmt))
        time.sleep(0.2)
    values = probe.wait_diagnostic(
        'edge_node: features', lambda v: int(v.get('rejected_total', 0)) >= before + len(garbage), 15.0)
    assert int(values.get('rejected_total', 0)) == before + len(garbage), values
    assert graph['edge'].alive()
    t_sent = time.monotonic()
    assert results.wait(lambda items: sum(r.value.source == rec.SOURCE_EDGE and r.t > t_sent for r in items) >= 10,
                        15.0, start), 'edge results must continue after malformed input'
    warnings = [line for line in graph['edge'].output().splitlines() if 'rejected feature message' in line]
    assert 1 <= len(warnings) <= 2, 'one warning per burst, not one per message'


def huge_valid_message(frame_seq: int) -> bytes:
    """Return a valid 1-bit message claiming 2**26 values: 8 MiB on the wire, 256 MiB decoded (no tensor built)."""
    shape = (1, 64, 1024, 1024)
    payload = bytes(codec.payload_size(math.prod(shape), 1))
    head = codec._HEADER_V1[4].pack(codec.MAGIC, codec.CODEC_VERSION, 1, 2, 4, 4, 0, codec.header_size(4),
                                    len(payload), frame_seq, 0, 0.0, 0.0, 0.0, *shape)
    return b''.join((head, codec._CRC.pack(zlib.crc32(payload, zlib.crc32(head))), payload))


def test_oversized_features_are_rejected_before_decoding(graph, probe, streams):
    """max_feature_values bounds the decoded size; such messages cost a header parse, not a 256 MiB tensor."""
    results = streams['results']
    probe.set_decision(REMOTE)
    assert _wait_action(results, REMOTE, 5, 15.0, rec.SOURCE_EDGE)[0]
    pub = probe.features_publisher()
    assert probe.wait_for_subscribers(pub, 1), 'edge did not match the probe publisher'
    huge = huge_valid_message(frame_seq=11)
    assert peek_header(huge).num_elements == 2 ** 26 and len(huge) > 8 * 2 ** 20
    name = 'edge_node: features'
    before = probe.wait_diagnostic(name, lambda v: True, 5.0)
    edge = psutil.Process(graph['edge'].pid)
    base_rss, peak = edge.memory_info().rss, [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], edge.memory_info().rss)
            time.sleep(0.005)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    count = 10
    try:
        for _ in range(count):  # paced: the features queue keeps the newest 2
            pub.publish(m.make_features_msg(huge, Header(frame_id='huge'), FORMAT))
            time.sleep(0.3)
        values = probe.wait_diagnostic(name, lambda v: int(v['/coinfer/features oversized']) >= int(
            before['/coinfer/features oversized']) + count, 20.0)
    finally:
        done.set()
        sampler.join(5)
    oversized = int(values['/coinfer/features oversized']) - int(before['/coinfer/features oversized'])
    growth_mb = (peak[0] - base_rss) / 2 ** 20
    print(f'{oversized} oversized messages rejected; edge RSS peak +{growth_mb:.0f} MB')
    assert oversized == count, values
    assert int(values['rejected_total']) - int(before['rejected_total']) == count
    assert 'max_feature_values' in values['/coinfer/features last_error']
    assert growth_mb < 128, 'a decoded message alone would be 256 MiB'
    t_sent = time.monotonic()
    assert results.wait(lambda items: sum(r.value.source == rec.SOURCE_EDGE and r.t > t_sent for r in items) >= 10,
                        15.0), 'edge results continue'


def test_edge_crash_every_frame_answered_and_recovery_within_2s(graph, probe, streams):
    results = streams['results']
    probe.set_decision(REMOTE)
    assert _wait_action(results, REMOTE, 10, 15.0, rec.SOURCE_EDGE)[0]
    start = len(results)
    graph['edge'].kill()
    t_kill = time.monotonic()
    # Frames in flight time out and are re-run locally; then the device answers locally and probes.
    assert results.wait(lambda items: sum(r.value.fallback == rec.FALLBACK_EDGE_DOWN for r in items) >= 15, 30.0, start)
    during = results.snapshot(start)
    assert any(r.value.fallback == rec.FALLBACK_EDGE_TIMEOUT for r in during), 'in-flight frames must be re-run'
    assert all(r.value.source == rec.SOURCE_DEVICE for r in during if r.t > t_kill + 0.2)
    assert all(r.value.action == FALLBACK for r in during if r.value.fallback != rec.FALLBACK_NONE)
    graph['edge'].restart().wait_ready(60.0)
    t_ready = time.monotonic()
    assert results.wait(lambda items: any(r.value.source == rec.SOURCE_EDGE and r.t > t_ready for r in items), 30.0,
                        start), 'edge answers never came back'
    first_edge = next(r for r in results.snapshot(start) if r.value.source == rec.SOURCE_EDGE and r.t > t_ready)
    recovery = first_edge.t - t_ready
    print(f'edge results back {recovery:.3f} s after the restarted edge was ready')
    assert recovery < 2.0, f'edge results came back {recovery:.2f} s after the edge was ready'
    assert results.wait(lambda items: len(items) >= 15, 15.0, len(results))
    seqs = [r.value.frame_seq for r in results.snapshot(start)]
    assert len(seqs) == len(set(seqs)), 'no frame may get two results'
    # Every frame the device took (frame_seq counts them) got its result; the newest few may still be in flight.
    missing = sorted(set(range(min(seqs), max(seqs) - 5)) - set(seqs))
    assert not missing, f'frames without a result around the crash: {missing[:20]}'


def test_policy_crash_device_falls_back_after_timeout(graph, probe, streams, tmp_path):
    results = streams['results']
    probe.set_decision(None)
    policy = graph.add('policy', 'policy_node', params_files=[config_file('policy.yaml')],
                       params={'policy': 'rule', 'profile_path': str(profile_file()), 'wait_for_link': False,
                               'rate_hz': 10.0})
    policy.start().wait_ready(60.0)
    decisions = probe.decisions()
    assert decisions.wait(lambda items: len(items) >= 3, 20.0), policy.tail()
    chosen = decisions.snapshot()[-1].value
    start = len(results)
    assert results.wait(lambda items: sum(r.value.fallback == rec.FALLBACK_NONE and r.value.action == chosen
                                          for r in items) >= 5, 20.0, start), 'policy decision never applied'
    policy.kill()
    t_kill = time.monotonic()
    start = len(results)
    assert results.wait(lambda items: any(r.value.fallback == rec.FALLBACK_NO_DECISION for r in items), 20.0, start)
    first = next(r for r in results.snapshot(start) if r.value.fallback == rec.FALLBACK_NO_DECISION)
    assert first.value.action == FALLBACK
    waited = first.t - t_kill
    print(f'device fell back {waited:.3f} s after the policy died (decision_timeout_s {DECISION_TIMEOUT_S})')
    assert DECISION_TIMEOUT_S - 0.5 <= waited <= DECISION_TIMEOUT_S + 3.0, f'fell back after {waited:.2f} s'
    values = probe.wait_diagnostic('device_node: pipeline', lambda v: v.get('decision_fresh') == 'False', 5.0)
    assert values.get('decision_fresh') == 'False' and values.get('decision') == FALLBACK.label()
