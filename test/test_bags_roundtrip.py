# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""A bag recorded from a short real multi-process run round-trips into traces, transitions, a policy and a profile.

The graph is the demo's (edge, CPU monitors, shipped SAC-d policy, link monitor, device with an
emulated 8 -> 2 Mbit/s link and a 4x slower emulated CPU, camera) plus two ``coinfer-record``
processes: one is stopped with SIGINT (a complete bag), the other is killed with SIGKILL at the same
moment (a crash).  A probe node in the test process records the same topics independently.
"""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
import torch

from coinfer_device.core import bags
from coinfer_device.core.action import Action
from coinfer_device.core.profile import Profile
from coinfer_device.core.recording import load_recording
from coinfer_device.tools import profiler
from coinfer_edge.core.recorded import trace_of, transitions_of
from coinfer_edge.core.decision import LatencySettings, RewardConfig
from coinfer_edge.demo.harness import Graph, config_file, ros_env
from coinfer_edge.tools import bag_extract, train_policy
from graph_support import Probe, model_checkpoint, policy_file, profile_file

RECORD_S = 12.0
SCHEDULE_MBPS = [8.0, 2.0]
RTT_MS = 20.0
SLOWDOWN = 4.0


@pytest.fixture(scope='module')
def run(tmp_path_factory, ros_domain_id):
    model = model_checkpoint()
    root = tmp_path_factory.mktemp('bags')
    g = Graph(ros_env(ros_domain_id, os.environ['ROS_LOG_DIR']), tmp_path_factory.mktemp('bag-graph-logs'))
    g.add('recorder', 'coinfer-record', params={'output': str(root / 'run'), 'flush_interval_s': 0.5})
    g.add('killed', 'coinfer-record', name='recorder_killed',
          params={'output': str(root / 'killed'), 'flush_interval_s': 0.5})
    g.add('edge', 'edge_node', params_files=[config_file('edge.yaml')], params={'model_path': str(model)})
    g.add('edge_cpu_monitor', 'cpu_monitor', name='edge_cpu_monitor', params_files=[config_file('edge.yaml')])
    g.add('policy', 'policy_node', params_files=[config_file('policy.yaml')],
          params={'profile_path': str(profile_file()), 'policy_path': str(policy_file())})
    g.add('link_monitor', 'link_monitor', params_files=[config_file('link_monitor.yaml')])
    g.add('cpu_monitor', 'cpu_monitor', params_files=[config_file('device.yaml')])
    g.add('device', 'device_node', params_files=[config_file('device.yaml')], params={
        'model_path': str(model), 'compute_slowdown': SLOWDOWN, 'emulated_link.enabled': True,
        'emulated_link.bandwidth_schedule_mbps': SCHEDULE_MBPS, 'emulated_link.step_s': RECORD_S / 2,
        'emulated_link.rtt_ms': RTT_MS})
    g.add('camera', 'camera_node', params_files=[config_file('camera.yaml')], params={'rate_hz': 10.0})
    probe = Probe()
    results, bandwidth = probe.results(), probe.floats('coinfer/link/bandwidth_mbps')
    try:
        g.start(['recorder', 'killed', 'edge', 'edge_cpu_monitor', 'policy', 'link_monitor'])
        g.start(['cpu_monitor', 'device', 'camera'])
        assert results.wait(lambda items: any(r.value.fallback == 0 for r in items), 60.0), \
            f'no policy decision applied; policy log:\n{g["policy"].tail()}'
        time.sleep(RECORD_S)
        g['killed'].signal(signal.SIGKILL)
        status = g['recorder'].stop()
        assert status == 0, g['recorder'].tail()
        assert 'wrote' in g['recorder'].output()
        yield {'bag': root / 'run', 'killed': root / 'killed', 'results': results.snapshot(),
               'bandwidth': [b.value for b in bandwidth.snapshot()]}
    finally:
        g.stop()
        probe.close()


def test_the_bag_holds_what_was_published(run):
    rec = load_recording(run['bag'])
    assert rec.info.closed and list(rec.streams) == ['/']
    s = rec.streams['/']
    seqs = [r.frame_seq for _, r in s.results]
    assert len(seqs) >= RECORD_S * 10 * 0.5 and seqs == list(range(seqs[0], seqs[-1] + 1))   # every frame, in order
    probed = {r.value.frame_seq: r.value for r in run['results']}
    common = [r for _, r in s.results if r.frame_seq in probed]
    assert len(common) >= 0.9 * len(seqs)
    assert all(r == probed[r.frame_seq] for r in common)                  # field by field, bit for bit
    # Volatile topics: what a publisher sent before the recorder matched it is not in the bag, and the
    # camera and the edge match at different moments.  From the first recorded label on, every result has its own.
    labelled_from = min(s.ground_truth)
    after = [i for i, stamp in enumerate(s.result_stamps) if stamp >= labelled_from]
    assert len(after) >= 0.9 * len(seqs) and all(s.label_of(i) is not None for i in after)
    assert len(s.decisions) >= RECORD_S * 5 * 0.5
    recorded = [v for _, v in s.scalars[bags.BANDWIDTH]]
    assert len(set(recorded) & set(run['bandwidth'])) >= 0.5 * len(set(recorded))
    assert 0.5 <= np.median(recorded) <= 20.0                             # Mbit/s of an 8 -> 2 Mbit/s link
    assert all(0.0 <= v <= 1.0 for _, v in s.scalars[bags.DEVICE_LOAD] + s.scalars[bags.EDGE_LOAD])
    assert all(v >= RTT_MS * 0.5 for _, v in s.scalars[bags.RTT])        # ms, at least the emulated RTT


def test_extraction_gives_traces_and_transitions_with_the_right_counts_and_units(run, tmp_path, capsys):
    rec = load_recording(run['bag'])
    s = rec.streams['/']
    assert bag_extract.main([str(run['bag']), '--out', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f'{len(s.results)} results' in out and f'{len(s.decisions)} decisions' in out
    trace = trace_of(rec, '/', 0.1)
    start = max(s.scalars[bags.BANDWIDTH][0][0], s.scalars[bags.RTT][0][0])
    end = max(s.scalars[k][-1][0] for k in (bags.BANDWIDTH, bags.RTT, bags.DEVICE_LOAD, bags.EDGE_LOAD))
    assert len(trace) == (end - start) // 100_000_000 + 1
    assert set(trace.bandwidth_mbps) <= {v for _, v in s.scalars[bags.BANDWIDTH]}
    log = transitions_of(rec, '/', Profile.load(profile_file()), RewardConfig())
    ts = log.transitions
    assert len(ts) + sum(log.skipped.values()) == len(s.decisions) - 1 and len(ts) >= 10
    totals = [r.total_ms for _, r in s.results]
    assert all(min(totals) <= t.latency_ms <= max(totals) and t.frames >= 1 for t in ts)   # ms of real frames
    assert sum(t.frames for t in ts) <= len(s.results)
    assert all(t.deadline_ms == s.results[0][1].deadline_ms for t in ts)
    assert len((tmp_path / 'transitions.csv').read_text().splitlines()) == len(ts) + 1


def test_a_short_training_run_consumes_the_recording(run, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / 'p.safetensors'
    assert train_policy.main(['--traces-from', str(run['bag']), '--replay-from', str(run['bag']), '--steps', '300',
                              '--set', 'sac.learning_starts=100', '--set', 'sac.batch_size=32',
                              '--set', 'train.eval_every=300', '--set', 'env.episode_steps=20',
                              '--set', 'traces.validation.count=1', '--set', 'traces.validation.duration_s=5',
                              '--profile', str(profile_file()), '--out', str(out), '--no-progress']) == 0
    doc = json.loads(out.with_suffix('.json').read_text())
    meta = doc['training']
    rec = load_recording(run['bag'])
    ts = transitions_of(rec, '/', Profile.load(profile_file()), RewardConfig()).transitions
    # the trace replays the recorded contention: the measured compute slowdowns over the nominal ones
    nominal = LatencySettings.from_dict(doc['latency_model'])
    assert meta['train_traces'][0]['steps'] == len(trace_of(rec, '/', 0.1, nominal))
    assert meta['replay_seeded']['transitions'] == len(ts)


def test_profile_refresh_takes_the_robots_slower_timings(run, tmp_path):
    base = Profile.load(profile_file())
    out = tmp_path / 'robot.json'
    assert profiler.main(['--from-bag', str(run['bag']), '--base', str(profile_file()), '--out', str(out)]) == 0
    new = Profile.load(out)
    scale = new.settings['refresh']['device_scale']
    # The device ran SLOWDOWN x its per-frame compute (which the base profile holds): the refreshed profile, with
    # its fitted per-frame intercept, predicts at least that for the full network on the device.  (The split into
    # slope and intercept is noisy over a few seconds of frames; the prediction is not.)
    final = Action(len(base.branch_points) - 1, base.branch_points[-1], 0)
    predicted = new.device_compute_ms(final) + new.settings['latency']['device_overhead_ms']
    assert predicted >= SLOWDOWN * 0.75 * base.device_compute_ms(final), (predicted, new.settings['refresh'])
    assert new.block_ms == pytest.approx([v * scale for v in base.block_ms], rel=1e-3, abs=1e-5)
    assert new.accuracy == base.accuracy and new.payload_bytes == base.payload_bytes
    assert new.settings['latency']['device_slowdown'] == 1.0


def test_a_killed_recorder_leaves_a_readable_bag(run, tmp_path):
    clean = [r.frame_seq for _, r in load_recording(run['bag']).streams['/'].results]
    rec = load_recording(run['killed'])
    assert not rec.info.closed and 'was not closed' in rec.info.notes[0]
    killed = [r.frame_seq for _, r in rec.streams['/'].results]
    assert killed == list(range(killed[0], killed[-1] + 1)) and len(set(killed) - set(clean)) <= 2
    assert len(killed) >= len([f for f in clean if f >= killed[0]]) - 20   # at most ~1 s (2 flushes) lost
    assert bag_extract.main([str(run['killed']), '--out', str(tmp_path)]) == 0
