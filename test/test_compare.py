# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The demo's comparison mode without ROS: policy runs, live metrics, adaptation times, table and plots."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coinfer_device.core.action import Action
from coinfer_device.core.link_emulator import BandwidthSchedule
from coinfer_edge.core.decision import RewardConfig
from coinfer_edge.demo.compare import (COMPARISON_PLOTS, CompareError, adaptation_times, format_comparison,
                                       frame_rewards, live_metrics, policy_runs, settled_decision,
                                       worst_adaptation_s, write_comparison_plots)
from coinfer_edge.demo.report import FrameRecord
from decision_support import tiny_profile


def record(t: float, action: Action, total_ms: float, truth: int = 1, class_id: int = 1,
           deadline_ms: float = 10.0) -> FrameRecord:
    local = action.bits == 0
    return FrameRecord(t_s=t, stamp_ns=int(t * 1e9), frame_seq=int(t * 10), class_id=class_id, truth=truth,
                       confidence=0.9, action=action.label(), exit=action.exit, partition=action.partition,
                       bits=action.bits, source='device' if local else 'edge', fallback='policy decision',
                       device_ms=1.0, transfer_ms=0.0, edge_ms=0.0, total_ms=total_ms, payload_bytes=0,
                       deadline_ms=deadline_ms, deadline_met=total_ms <= deadline_ms, link_mbps=None,
                       estimated_mbps=None)


def test_policy_runs_resolve_names_to_node_parameters() -> None:
    prof = tiny_profile()
    runs = policy_runs(['sacd', 'device-final', 'device-earliest', 'raw-input', 'best-fixed', 'edgent', 'e1/p1/b8'],
                       prof, Action(1, 1, 32))
    params = {r.name: r.node_params for r in runs}
    assert params['sacd'] == {'policy': 'sacd'} and params['edgent'] == {'policy': 'edgent'}
    assert params['device-final'] == {'policy': 'fixed', 'fixed_action': [1, 2, 0]}
    assert params['device-earliest'] == {'policy': 'fixed', 'fixed_action': [0, 1, 0]}
    assert params['raw-input'] == {'policy': 'fixed', 'fixed_action': [1, 0, 8]}
    assert params['best-fixed'] == {'policy': 'fixed', 'fixed_action': [1, 1, 32]}
    assert params['e1/p1/b8'] == {'policy': 'fixed', 'fixed_action': [1, 1, 8]}
    assert [r.adaptive for r in runs] == [True, False, False, False, False, True, False]
    with pytest.raises(CompareError, match='unknown policy'):
        policy_runs(['bogus'], prof, None)
    with pytest.raises(CompareError, match='best-fixed needs'):
        policy_runs(['best-fixed'], prof, None)
    with pytest.raises(CompareError, match='twice'):
        policy_runs(['sacd', 'sacd'], prof, None)


def test_live_metrics_and_rewards_follow_the_objective() -> None:
    prof = tiny_profile()
    reward = RewardConfig(deadline_ms=10.0, latency_weight=0.1, miss_penalty=0.5, late_weight=0.25)
    local, sent = Action(0, 1, 0), Action(1, 0, 8)
    records = [record(0.1, local, 5.0), record(0.2, sent, 20.0, truth=2), record(0.3, local, 10.0)]
    r = frame_rewards(records, reward, prof.accuracy_of)
    np.testing.assert_allclose(r, [0.71 - 0.05, 0.90 - 0.1 - 0.5 - 0.25 * math.log(2), 0.71 - 0.1])
    m = live_metrics(records, reward, prof.accuracy_of)
    assert m['frames'] == 3 and m['accuracy'] == pytest.approx(2 / 3)
    assert m['deadline_hit'] == pytest.approx(2 / 3) and m['mean_reward'] == pytest.approx(r.mean())
    assert m['p50_ms'] == 10.0 and m['fallback_frames'] == 0
    assert math.isnan(live_metrics([], reward, prof.accuracy_of)['mean_reward'])


def test_adaptation_time_is_from_the_step_to_the_first_decision_of_the_settled_choice() -> None:
    schedule = BandwidthSchedule((20.0, 1.0, 1.5), 10.0)
    decisions = ([(t / 2, 'A') for t in range(20)]                 # 0..10 s: A
                 + [(10 + t / 2, 'A') for t in range(3)]         # the old choice lingers 1 s
                 + [(11.5 + t / 2, 'B') for t in range(17)]      # B from 11.5 s on
                 + [(20 + t / 2, 'B') for t in range(20)])       # 1.5 Mbit/s: still B, nothing to adapt
    assert settled_decision(decisions, 10.0, 20.0) == 'B'
    rows = adaptation_times(decisions, schedule, 30.0)
    assert [(r['from_mbps'], r['to_mbps'], r['changed']) for r in rows] == [(20.0, 1.0, True), (1.0, 1.5, False)]
    assert rows[0]['seconds'] == pytest.approx(1.5) and rows[1]['seconds'] is None
    assert worst_adaptation_s(rows) == pytest.approx(1.5)
    assert worst_adaptation_s(rows[1:]) is None
    assert adaptation_times([], schedule, 30.0)[0]['changed'] is False   # no decisions: nothing settled


def test_comparison_table_marks_the_best_reward_and_plots_are_written(tmp_path) -> None:
    prof = tiny_profile()
    reward = RewardConfig(deadline_ms=10.0)
    runs = policy_runs(['sacd', 'device-final'], prof, None)
    fast = [record(t / 10, Action(0, 1, 0), 4.0) for t in range(30)]
    slow = [record(t / 10, Action(1, 2, 0), 30.0) for t in range(30)]
    rows = [(runs[0], dict(live_metrics(fast, reward, prof.accuracy_of), adaptation_s=0.4)),
            (runs[1], dict(live_metrics(slow, reward, prof.accuracy_of), adaptation_s=None))]
    text = format_comparison(rows)
    sacd_line = next(line for line in text.splitlines() if line.lstrip('| ').startswith('SAC-d'))
    fixed_line = next(line for line in text.splitlines() if 'device-final' in line)
    assert 'SAC-d *' in sacd_line and '0.4 s' in sacd_line and '*' not in fixed_line.split('|')[1]
    assert '100.0 %' in sacd_line and '0.0 %' in fixed_line
    decisions = [(t / 10, 'e0/local') for t in range(30)]
    paths = write_comparison_plots(tmp_path, [(runs[0], fast, decisions), (runs[1], slow, [])],
                                   BandwidthSchedule((10.0, 1.0), 1.5), 3.0, 10.0)
    assert [p.name for p in paths] == list(COMPARISON_PLOTS)
    assert all(p.stat().st_size > 5000 for p in paths)
