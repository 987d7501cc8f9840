# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Bags without a ROS graph: writer and reader, crash salvage, decoding, extraction, profile refresh, field update."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from bag_support import (DEADLINE_MS, DEVICE_MS, DEVICE_OVERHEAD_MS, DEVICE_SCALE, EDGE_MS, EDGE_SCALE, FRAMEWORK_MS,
                         LOCAL, REMOTE, T0_NS, TS, _float, decided_action, write_synthetic_bag)
from coinfer_device.core import bags
from coinfer_device.core.action_stats import action_stats
from coinfer_device.core.paths import config_file
from coinfer_device.core.profile import Profile, ProfileError
from coinfer_device.core.profile_refresh import refresh_profile
from coinfer_device.core.records import NS_PER_S
from coinfer_device.core.recording import load_recording
from coinfer_device.nodes import recorder
from coinfer_device.tools import profiler
from coinfer_edge.core.decision import LatencySettings, RewardConfig, build_state, cpu_factor
from coinfer_edge.core.policy import TrainedPolicy, default_policy_path, save_policy
from coinfer_edge.core.recorded import (ExtractError, read_transitions, replay_arrays, trace_of, transitions_of,
                                        write_transitions)
from coinfer_edge.core.sac import ReplayBuffer
from coinfer_edge.core.traces import load_trace
from coinfer_edge.tools import bag_extract, train_policy, update_policy
from coinfer_edge.tools.bag_inputs import seed_replay

torch.set_num_threads(1)
RTT = '/coinfer/link/rtt_ms'


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp('synthetic') / 'run_a'
    return path, write_synthetic_bag(path)


def _float_bag(path: Path, storage: str, n: int, close: bool = True, **split) -> bags.BagWriter:
    w = bags.BagWriter(path, storage, **split)
    w.add_topic(RTT, bags.FLOAT32)
    for i in range(n):
        w.write(RTT, T0_NS + i * 10_000_000, _float(float(i)))
    if close:
        w.close()
    return w


def _values(messages) -> list[float]:
    return [bags.deserialize(m.data, m.msgtype).data for m in messages]


# --------------------------------------------------------------------------- writer and reader


@pytest.mark.parametrize('storage', sorted(bags.STORAGES))
def test_split_bag_reads_back_whole_with_merged_metadata(tmp_path, storage):
    path = tmp_path / 'b'
    _float_bag(path, storage, 100, split_bytes=8 * 30)
    assert not (path / bags.WRITING_DIR).exists()
    meta = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    files = [f'b_{i}{bags.STORAGE_SUFFIX[storage]}' for i in range(4)]
    assert meta['relative_file_paths'] == files and sorted(p.name for p in path.iterdir()) == files + ['metadata.yaml']
    assert [f['message_count'] for f in meta['files']] == [30, 30, 30, 10]
    assert meta['message_count'] == 100 and meta['topics_with_message_count'][0]['message_count'] == 100
    assert meta['duration']['nanoseconds'] == 99 * 10_000_000
    assert meta['starting_time']['nanoseconds_since_epoch'] == T0_NS
    # the keys Jazzy's rosbag2 YAML decoder requires of a version 9 bag (research notes, ros-env section 6)
    assert meta['version'] == 9 and meta['storage_identifier'] == storage and 'ros_distro' in meta
    topic = meta['topics_with_message_count'][0]['topic_metadata']
    assert topic['type_description_hash'].startswith('RIHS01_') and topic['offered_qos_profiles'] == []
    info, messages = bags.read_bag(path)
    assert info.closed and info.files == files and info.topics == {RTT: (bags.FLOAT32, 100)}
    assert _values(messages) == [float(i) for i in range(100)]
    assert [m.t_ns for m in messages] == [T0_NS + i * 10_000_000 for i in range(100)]


def test_split_by_duration_and_an_empty_recording(tmp_path):
    _float_bag(tmp_path / 'd', 'mcap', 100, split_s=0.25)   # 10 ms apart: 25 messages per file
    assert [f['message_count'] for f in yaml.safe_load((tmp_path / 'd' / 'metadata.yaml').read_text())
            ['rosbag2_bagfile_information']['files']] == [25] * 4
    _float_bag(tmp_path / 'empty', 'mcap', 0)
    info, messages = bags.read_bag(tmp_path / 'empty')
    assert info.closed and messages == [] and info.topics == {RTT: (bags.FLOAT32, 0)}


def test_writer_never_overwrites(tmp_path):
    (tmp_path / 'x').mkdir()
    with pytest.raises(bags.BagError, match='exists already'):
        bags.BagWriter(tmp_path / 'x')
    with pytest.raises(bags.BagError, match='unknown storage'):
        bags.BagWriter(tmp_path / 'y', 'rosbag1')


@pytest.mark.parametrize('storage', sorted(bags.STORAGES))
def test_unclosed_recording_is_read_up_to_its_last_flush(tmp_path, storage):
    path = tmp_path / 'crash'
    w = _float_bag(path, storage, 40, close=False, split_bytes=8 * 25)   # file 0 closed at 25, file 1 open
    w.flush()
    for i in range(40, 50):                                               # written after the flush: lost
        w.write(RTT, T0_NS + i * 10_000_000, _float(float(i)))
    info, messages = bags.read_bag(path)
    assert not info.closed and 'was not closed' in info.notes[0]
    assert _values(messages) == [float(i) for i in range(40)]
    assert info.topics[RTT] == (bags.FLOAT32, 40)


def test_truncated_unclosed_mcap_keeps_complete_chunks(tmp_path):
    path = tmp_path / 'cut'
    w = _float_bag(path, 'mcap', 10, close=False)
    w.flush()
    mcap = next((path / bags.WRITING_DIR).rglob('*.mcap'))
    first = mcap.stat().st_size
    for i in range(10, 20):
        w.write(RTT, T0_NS + i * 10_000_000, _float(float(i)))
    w.flush()
    mcap.write_bytes(mcap.read_bytes()[:first + 40])   # the second chunk is cut short: only the first survives
    info, messages = bags.read_bag(path)
    assert _values(messages) == [float(i) for i in range(10)] and 'bytes after it ignored' in info.notes[0]


@pytest.mark.parametrize('damage, message', [
    (lambda p: shutil.rmtree(p), 'no such bag'),
    (lambda p: (p / 'metadata.yaml').unlink(), r'no metadata\.yaml'),
    (lambda p: (p / 'metadata.yaml').write_text('rosbag2_bagfile_information: [\n'), 'unreadable bag'),
    (lambda p: (p / 'b_0.mcap').write_bytes(b'not an mcap file at all' * 4), 'unreadable bag'),
    (lambda p: (p / 'b_0.mcap').unlink(), 'unreadable bag'),
])
def test_damaged_bags_give_one_named_error(tmp_path, damage, message):
    _float_bag(tmp_path / 'b', 'mcap', 10)
    damage(tmp_path / 'b')
    with pytest.raises(bags.BagError, match=message):
        bags.read_bag(tmp_path / 'b')


def test_rclpy_padding_is_accepted_and_garbage_is_not():
    data = _float(2.5)
    assert bags.deserialize(data + bytes(8), bags.FLOAT32).data == 2.5
    with pytest.raises(bags.BagError):
        bags.deserialize(data + bytes(16), bags.FLOAT32)
    with pytest.raises(bags.BagError):
        bags.deserialize(b'\x07\x07' + data[2:], bags.FLOAT32)


def test_topic_names_and_namespaces():
    assert bags.full_topic('/', bags.RESULT) == '/coinfer/result'
    assert bags.full_topic('robot1/', bags.RESULT) == '/robot1/coinfer/result'
    assert bags.split_topic('/a/b/coinfer/link/rtt_ms') == ('/a/b', bags.RTT)
    assert bags.split_topic('/coinfer/decision') == ('/', bags.DECISION)
    assert bags.split_topic('/rosout') is None and bags.split_topic('/x/coinfer/resultX') is None


def test_shipped_qos_override_file_matches_the_recorded_topics():
    assert yaml.safe_load(config_file('bag_qos_overrides.yaml').read_text()) == bags.qos_overrides(['/'])


def test_recorder_flags_become_parameters_and_the_ros2_command(tmp_path, capsys):
    flags, tail = recorder.parse_flags(['--out', 'b1', '--namespaces', '/r1', 'r2', '--split-size-mb', '5',
                                        '--features', '--ros-args', '-p', 'storage:=sqlite3'])
    assert tail == ['--ros-args', '-p', 'storage:=sqlite3']
    assert recorder.flag_overrides(flags) == ['-p', 'output:="b1"', '-p', 'namespaces:=["/r1", "r2"]',
                                              '-p', 'record_features:=true', '-p', 'split_size_mb:=5.0']
    qos = tmp_path / 'qos.yaml'
    flags, _ = recorder.parse_flags(['--ros2-command', '--out', 'b1', '--namespaces', '/r1', '--qos-file', str(qos)])
    assert recorder.print_ros2_command(flags) == 0
    line = capsys.readouterr().out.split()
    assert line[:3] == ['ros2', 'bag', 'record'] and '/r1/coinfer/result' in line and str(qos) in line
    assert '/r1/coinfer/features' not in line and set(yaml.safe_load(qos.read_text())) == {
        bags.full_topic('/r1', t.name) for t in bags.recorded_topics()}
    flags, _ = recorder.parse_flags(['--ros2-command', '--namespaces', '/r1'])
    assert recorder.print_ros2_command(flags) == 2


# --------------------------------------------------------------------------- decoding and extraction


def test_recording_decodes_every_stream(synthetic):
    path, exp = synthetic
    rec = load_recording(path)
    s = rec.streams['/']
    assert list(rec.streams) == ['/'] and rec.info.closed
    assert len(s.results) == exp.results and len(s.decisions) == exp.decisions
    assert len(s.scalars[bags.BANDWIDTH]) == exp.telemetry and len(s.scalars[bags.DEVICE_LOAD]) == exp.loads
    assert sum(s.label_of(i) is not None for i in range(len(s.results))) == exp.labelled
    assert [r.total_ms for _, r in s.results] == [exp.total_ms[i] for i in range(exp.results)]
    assert [a for _, a in s.decisions] == [decided_action(k) for k in range(exp.decisions)]


def test_namespaces_are_kept_apart_and_foreign_bags_refused(tmp_path):
    write_synthetic_bag(tmp_path / 'ns', duration_s=6.0, namespace='/robot1')
    rec = load_recording(tmp_path / 'ns')
    assert list(rec.streams) == ['/robot1']
    trace = trace_of(rec, '/robot1', 0.1)
    assert trace.name == 'ns/robot1'
    w = bags.BagWriter(tmp_path / 'foreign')
    w.add_topic('/rosout', bags.FLOAT32)
    w.write('/rosout', T0_NS, _float(1.0))
    w.close()
    with pytest.raises(bags.BagError, match='no coinfer topics'):
        load_recording(tmp_path / 'foreign')
    w = bags.BagWriter(tmp_path / 'wrongtype')
    w.add_topic('/coinfer/result', bags.FLOAT32)
    w.write('/coinfer/result', T0_NS, _float(1.0))
    w.close()
    with pytest.raises(bags.BagError, match='has type std_msgs/msg/Float32'):
        load_recording(tmp_path / 'wrongtype')


def test_malformed_records_are_counted_not_fatal(tmp_path):
    w = bags.BagWriter(tmp_path / 'm')
    w.add_topic('/coinfer/result', bags.JOINT_STATE)
    msg = TS.types[bags.JOINT_STATE](header=TS.types['std_msgs/msg/Header'](
        stamp=TS.types['builtin_interfaces/msg/Time'](sec=1, nanosec=0), frame_id=''), name=['frame_seq'],
        position=np.array([1.0]), velocity=np.array([], float), effort=np.array([], float))
    w.write('/coinfer/result', T0_NS, bytes(TS.serialize_cdr(msg, bags.JOINT_STATE)))
    w.close()
    assert load_recording(tmp_path / 'm').streams['/'].malformed == {bags.RESULT: 1}


def test_trace_holds_the_measured_values_on_the_grid(synthetic):
    path, exp = synthetic
    trace = trace_of(load_recording(path), '/', 0.1)
    first = 1.01  # bandwidth from 1.0 s, RTT from 1.01 s: the policy could decide from then
    assert len(trace) == int(round((exp.last_telemetry_s - first) / 0.1 + 1e-9)) + 1
    switch = int(np.argmax(trace.bandwidth_mbps == 2.0))   # 8 Mbit/s, then 2 from the sample at 10.2 s
    assert set(trace.bandwidth_mbps[:switch]) == {8.0} and set(trace.bandwidth_mbps[switch:]) == {2.0}
    assert 10.2 <= first + switch * 0.1 < 10.3
    assert np.all(trace.rtt_ms == 5.0) and np.all(trace.device_load == 0.25) and np.all(trace.edge_load == 0.5)


def test_trace_replays_the_measured_contention_where_it_was_recorded(tmp_path):
    write_synthetic_bag(tmp_path / 'c', duration_s=6.0, device_slowdown=12.0)
    rec = load_recording(tmp_path / 'c')
    loads = trace_of(rec, '/', 0.1)   # without the nominal slowdowns: the CPU-load topics
    assert np.all(loads.device_load == 0.25) and np.all(loads.edge_load == 0.5)
    measured = trace_of(rec, '/', 0.1, LatencySettings(device_slowdown=6.0))
    # 12 / 6 = contention 2, the load 0.5 that the simulator turns back into 2; the edge has no measurement
    assert np.allclose(measured.device_load, 0.5) and np.all(measured.edge_load == 0.5)
    assert np.allclose(cpu_factor(measured.device_load), 2.0)


def test_transitions_are_the_logged_decisions(synthetic):
    path, exp = synthetic
    rec = load_recording(path)
    profile, reward = Profile.load(), RewardConfig()
    log = transitions_of(rec, '/', profile, reward)
    ts = log.transitions
    assert len(ts) == exp.decisions - 1 and not log.skipped
    for k, t in enumerate(ts):
        action = decided_action(k)
        total = DEVICE_MS[action] + EDGE_MS[action] + (20.0 if action == REMOTE else 0.0) + 1.0
        assert t.action == action and t.frames == 2 and t.latency_ms == pytest.approx(total)
        assert t.prev_action == (decided_action(k - 1) if k else None)
        assert t.miss_fraction == (1.0 if total > DEADLINE_MS else 0.0) and t.deadline_ms == DEADLINE_MS
        assert t.reward == pytest.approx(float(reward.reward(profile.accuracy_of(action), total, DEADLINE_MS)))
        decided_at = rec.streams['/'].decisions[k][0]
        newest = [v for u, v in rec.streams['/'].scalars[bags.BANDWIDTH] if u <= decided_at][-1]
        assert t.bandwidth_mbps == newest and t.rtt_ms == 5.0 and t.device_load == 0.25
        assert t.time_s == pytest.approx((decided_at - rec.start_ns) / NS_PER_S)
        assert t.labelled_frames == 2 and t.accuracy in (0.0, 0.5, 1.0)
        assert math.isnan(t.device_slowdown)  # not published in this recording
        if k + 1 < len(ts):
            assert t.next_recent_latency_ms == pytest.approx(ts[k + 1].recent_latency_ms)
    # the first decision follows a local fallback frame; later ones the previous decision's frames
    assert ts[0].recent_latency_ms == DEVICE_MS[LOCAL] + 1.0
    correct = sum(t.accuracy * t.labelled_frames for t in ts)
    assert 0.6 < correct / sum(t.labelled_frames for t in ts) < 0.72   # every third frame is wrong


def test_transitions_round_trip_and_become_replay_states(synthetic, tmp_path):
    path, _ = synthetic
    profile, reward = Profile.load(), RewardConfig()
    ts = transitions_of(load_recording(path), '/', profile, reward).transitions
    write_transitions(ts, tmp_path / 't.csv')
    back = read_transitions(tmp_path / 't.csv')
    assert len(back) == len(ts)
    for a, b in zip(ts, back):
        for k, v in vars(a).items():
            w = getattr(b, k)
            if isinstance(v, float):
                assert math.isnan(w) if math.isnan(v) else w == pytest.approx(v, rel=1e-5), k
            else:
                assert w == v and type(w) is type(v), k
    actions = profile.actions()
    arrays = replay_arrays(back, actions, reward, profile)
    t = back[3]
    assert np.allclose(arrays['obs'][3], build_state(t.bandwidth_mbps, t.rtt_ms, t.device_load, t.edge_load,
                                                     t.recent_latency_ms, t.deadline_ms,
                                                     actions.index(t.prev_action), len(actions)))
    assert arrays['actions'][3] == actions.index(t.action)
    assert arrays['next_obs'][3][6 + actions.index(t.action)] == 1.0
    buffer = ReplayBuffer(1000, len(arrays['obs'][0]), len(actions))
    mask = np.array([a != REMOTE for a in actions])
    added = seed_replay(buffer, back, actions, mask, reward, profile)
    assert added == sum(t.action != REMOTE for t in back) == len(buffer)
    with pytest.raises(ExtractError, match='not a transitions file'):
        read_transitions(config_file('recorder.yaml'))


def test_extract_cli_writes_everything_or_nothing(synthetic, tmp_path, capsys):
    path, exp = synthetic
    out = tmp_path / 'out'
    assert bag_extract.main([str(path), '--out', str(out)]) == 0
    text = capsys.readouterr().out
    assert f'{exp.results} results' in text and f'{exp.decisions} decisions' in text
    assert sorted(str(p.relative_to(out)) for p in out.rglob('*')) == [
        'action_stats.csv', 'traces', 'traces/run_a.csv', 'transitions.csv']
    trace = load_trace(out / 'traces' / 'run_a.csv', 0.1)
    assert len(trace) == len(trace_of(load_recording(path), '/', 0.1))
    assert len(read_transitions(out / 'transitions.csv')) == exp.decisions - 1
    rows = list(csv.DictReader(open(out / 'action_stats.csv')))
    assert {(r['exit'], r['partition'], r['bits']) for r in rows} == {('2', '4', '8'), ('2', '10', '0')}
    remote = next(r for r in rows if r['partition'] == '4')
    assert float(remote['device_ms']) == pytest.approx(DEVICE_MS[REMOTE], rel=1e-5)
    assert float(remote['transfer_ms']) == 20.0
    assert float(remote['framework_ms']) == pytest.approx(1.0)
    # a topic an output needs is missing: one line naming it, nothing written
    bare = tmp_path / 'bare'
    w = bags.BagWriter(bare)
    w.add_topic('/coinfer/link/rtt_ms', bags.FLOAT32)
    w.write('/coinfer/link/rtt_ms', T0_NS, _float(1.0))
    w.close()
    out2 = tmp_path / 'out2'
    assert bag_extract.main([str(bare), '--out', str(out2)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('coinfer-bag-extract: error: ') and 'coinfer/link/bandwidth_mbps' in err
    assert not out2.exists()


def test_extract_requires_distinct_bag_names(synthetic, tmp_path, capsys):
    path, _ = synthetic
    other = tmp_path / 'x' / path.name
    shutil.copytree(path, other)
    assert bag_extract.main([str(path), str(other), '--out', str(tmp_path / 'o')]) == 2
    assert 'distinct folder names' in capsys.readouterr().err


# --------------------------------------------------------------------------- profile refresh and training


def test_profile_refresh_scales_timings_and_keeps_accuracy(synthetic, tmp_path, capsys):
    path, _ = synthetic
    base = Profile.load()
    out = tmp_path / 'robot.json'
    assert profiler.main(['--from-bag', str(path), '--out', str(out)]) == 0
    new = Profile.load(out)
    refresh = new.settings['refresh']
    assert refresh['device_scale'] == pytest.approx(DEVICE_SCALE, rel=1e-3)
    assert refresh['device_overhead_ms'] == pytest.approx(DEVICE_OVERHEAD_MS, abs=1e-3)
    scale = refresh['device_scale']
    assert new.block_ms == pytest.approx([v * scale for v in base.block_ms], rel=1e-3, abs=1e-5)
    assert new.exit_ms == pytest.approx([v * scale for v in base.exit_ms], rel=1e-3, abs=1e-5)
    assert new.accuracy == base.accuracy and new.payload_bytes == base.payload_bytes
    assert refresh['edge_scale'] == pytest.approx(EDGE_SCALE, rel=1e-3)    # one remote action: through 0
    # the latency model's framework terms: the device's intercept, and what a sent frame paid beyond its parts
    assert new.settings['latency'] == {'device_slowdown': 1.0,
                                       'edge_slowdown': pytest.approx(EDGE_SCALE / DEVICE_SCALE, rel=1e-3),
                                       'device_overhead_ms': pytest.approx(DEVICE_OVERHEAD_MS, abs=1e-3),
                                       'remote_overhead_ms': pytest.approx(FRAMEWORK_MS, abs=1e-3)}
    assert new.settings['refresh']['bags'] == [str(path)]
    stats = action_stats([r for _, r in load_recording(path).streams['/'].results])
    with pytest.raises(ProfileError, match='at least 1000 frames'):
        refresh_profile(base, stats, min_frames=1000)


def test_training_consumes_recorded_traces_and_transitions(synthetic, tmp_path, capsys):
    path, exp = synthetic
    out = tmp_path / 'p.safetensors'
    rc = train_policy.main(['--traces-from', str(path), '--replay-from', str(path), '--steps', '400',
                            '--set', 'sac.learning_starts=200', '--set', 'sac.batch_size=32', '--set',
                            'train.eval_every=400', '--set', 'env.episode_steps=20', '--set',
                            'traces.validation.count=1', '--set', 'traces.validation.duration_s=5', '--out',
                            str(out), '--no-progress'])
    assert rc == 0
    meta = json.loads(out.with_suffix('.json').read_text())['training']
    trace = trace_of(load_recording(path), '/', 0.1)
    assert meta['train_traces'] == [{'name': 'run_a', 'source': trace.source, 'steps': len(trace)}]
    assert meta['replay_seeded']['transitions'] == exp.decisions - 1


# --------------------------------------------------------------------------- safe field update


def _policy_copy(tmp_path: Path, name: str, zero: bool = False, reward: RewardConfig | None = None) -> Path:
    shipped = TrainedPolicy.load()
    weights = {}
    for i, (w, b) in enumerate(shipped.layers):
        weights[f'layers.{i}.weight'] = np.zeros_like(w) if zero else w
        weights[f'layers.{i}.bias'] = np.zeros_like(b) if zero else b
    extra = {k: v for k, v in shipped.metadata.items() if k in ('agent', 'env', 'training')}
    path = tmp_path / f'{name}.safetensors'
    save_policy(path, weights, Profile.load(), reward or shipped.reward_config, shipped.mask, extra)
    return path


def test_update_installs_only_what_does_at_least_as_well(synthetic, tmp_path, capsys):
    path, _ = synthetic
    held_out = tmp_path / 'held_out'
    write_synthetic_bag(held_out, duration_s=14.0)
    target = tmp_path / 'robot' / 'policy.safetensors'
    same = _policy_copy(tmp_path, 'same')
    args = ['--held-out', str(held_out), '--install', str(target), '--seeds', '0', '1']
    assert update_policy.main(['--candidate', str(same), *args]) == 0   # equal score: installed
    assert TrainedPolicy.load(target).metadata['field_update']['replaced'] == str(default_policy_path())
    first = target.read_bytes()
    zero = _policy_copy(tmp_path, 'zero', zero=True)                    # always the first action: worse
    assert update_policy.main(['--candidate', str(zero), *args]) == 3
    out = capsys.readouterr().out
    assert 'kept' in out and 'was not changed' in out and f'current (robot/{target.name})' in out
    assert target.read_bytes() == first
    other = _policy_copy(tmp_path, 'other', reward=RewardConfig(deadline_ms=50.0))
    assert update_policy.main(['--candidate', str(other), *args]) == 2
    assert 'not the same job' in capsys.readouterr().err
    assert update_policy.main(['--candidate', str(same), '--held-out', str(held_out), '--install',
                               str(default_policy_path())]) == 2
    assert "shipped assets" in capsys.readouterr().err
