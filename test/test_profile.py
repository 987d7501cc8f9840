# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Action table and profile format; the shipped profile covers the shipped model."""

import json

import pytest

from coinfer_device.core.checkpoint import load_checkpoint
from coinfer_device.core.action import LOCAL_BITS, Action, action_table
from coinfer_device.core.paths import SHIPPED_FILES, shipped
from coinfer_device.core.profile import Profile, ProfileError


def test_action_table_is_valid_and_duplicate_free():
    table = action_table([2, 4, 10], [2, 8, 32])
    assert len(table) == len(set(table))
    assert len(table) == (2 + 4 + 10) * 3 + 3
    for a in table:
        bp = [2, 4, 10][a.exit]
        assert a.partition <= bp
        assert (a.bits == LOCAL_BITS) == (a.partition == bp)
    assert Action(2, 10, 0).label() == 'e2/local' and Action(1, 3, 4).label() == 'e1/p3/b4'
    with pytest.raises(ValueError, match='bits 9'):
        action_table([2], [9])


def _tiny_profile():
    bps, bits = [1, 2], [8]
    acts = action_table(bps, bits)
    return Profile(block_ms=[1.0, 2.0], exit_ms=[0.5, 0.25], branch_points=bps, bits_choices=bits,
                   payload_bytes={(0, 8): 100, (1, 8): 50}, encode_ms={(0, 8): 0.1, (1, 8): 0.2},
                   decode_ms={(0, 8): 0.3, (1, 8): 0.4}, accuracy={a: 0.5 for a in acts})


def test_latency_parts_follow_the_tables():
    prof = _tiny_profile()
    # exit 1 split at 1: device runs block 0 + encode, edge decodes, runs block 1 and the exit
    a = Action(1, 1, 8)
    assert prof.device_compute_ms(a) == pytest.approx(1.0 + 0.2)
    assert prof.edge_compute_ms(a) == pytest.approx(0.4 + 2.0 + 0.25)
    assert prof.payload(a) == 50
    local = Action(0, 1, 0)
    assert prof.is_local(local) and prof.payload(local) == 0 and prof.edge_compute_ms(local) == 0
    assert prof.device_compute_ms(local) == pytest.approx(1.5)


def test_profile_json_round_trip_and_rejections(tmp_path):
    prof = _tiny_profile()
    prof.save(tmp_path / 'p.json')
    again = Profile.load(tmp_path / 'p.json')
    assert again.to_dict() == prof.to_dict()
    doc = prof.to_dict()
    doc['accuracy'] = doc['accuracy'][:-1]
    (tmp_path / 'bad.json').write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match='no accuracy'):
        Profile.load(tmp_path / 'bad.json')
    with pytest.raises(ProfileError, match='not found'):
        Profile.load(tmp_path / 'missing.json')


@pytest.mark.parametrize('name', sorted(SHIPPED_FILES))
def test_shipped_profile_fits_the_shipped_model(name):
    files = shipped(name)
    prof = Profile.load(files.profile)
    loaded = load_checkpoint(files.checkpoint)
    model = loaded.model
    assert prof.branch_points == list(model.spec.exit_branch_points)
    assert len(prof.block_ms) == model.num_blocks and all(t > 0 for t in prof.block_ms)
    assert prof.model['weights_sha256'] == loaded.metadata['weights_sha256']
    assert prof.timing_basis == 'per-frame'   # what the nodes pay, one frame per camera period
    assert all(f >= 0.8 * t for f, t in zip(prof.frame.block_ms, prof.block_ms))
    final_local = Action(model.num_exits - 1, model.num_blocks, LOCAL_BITS)
    assert prof.accuracy_of(final_local) >= 0.9
    # exits are ordered cheaper and less accurate
    local = [Action(e, bp, LOCAL_BITS) for e, bp in enumerate(prof.branch_points)]
    times = [prof.device_compute_ms(a) for a in local]
    accs = [prof.accuracy_of(a) for a in local]
    assert times == sorted(times) and accs == sorted(accs), (times, accs)
    # quantizing the features after pool3 to 8 bits barely changes accuracy
    after_pool3 = prof.branch_points[-1] - 2
    assert abs(prof.accuracy_of(Action(len(local) - 1, after_pool3, 8)) - prof.accuracy_of(final_local)) < 0.01
    # payload shrinks with bits at a fixed partition
    sizes = [prof.payload_bytes[(4, b)] for b in sorted(prof.bits_choices)]
    assert sizes == sorted(sizes)


def test_profiler_measures_tight_loop_and_per_frame_timings(tmp_path):
    from coinfer_device.tools import profiler
    out = tmp_path / 'profile.json'
    assert profiler.main(['--checkpoint', str(shipped('small').checkpoint), '--out', str(out), '--runs', '3',
                          '--warmup', '1', '--bits', '8', '32', '--val-images', '40', '--frame-period-ms', '3',
                          '--frame-samples', '1']) == 0
    prof = Profile.load(out)
    assert prof.timing_basis == 'per-frame' and prof.frame.period_ms == 3.0
    assert prof.frame.frames == len(prof.payload_bytes) == 10 * 2
    assert set(prof.frame.encode_ms) == set(prof.encode_ms) and all(v > 0 for v in prof.frame.block_ms)
    assert prof.settings['validation_images'] == 40
    a = Action(2, 4, 8)
    assert prof.device_compute_ms(a) == pytest.approx(sum(prof.frame.block_ms[:4]) + prof.frame.encode_ms[(4, 8)])
    tight = tmp_path / 'tight.json'
    assert profiler.main(['--checkpoint', str(shipped('small').checkpoint), '--out', str(tight), '--runs', '2',
                          '--warmup', '0', '--bits', '8', '--frame-period-ms', '0', '--skip-accuracy',
                          '--accuracy-from', str(shipped('small').profile)]) == 0
    assert Profile.load(tight).timing_basis == 'tight-loop' and 'per_frame' not in json.loads(tight.read_text())
