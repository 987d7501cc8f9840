# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The decision problem on a small hand-made profile: latency model, reward, state, oracle and the rule decider."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from coinfer_device.core.action import Action
from coinfer_device.core.profile import FrameTiming
from coinfer_edge.core.decision import (EdgentDecider, FixedDecider, LatencyModel, LatencySettings, NeurosurgeonDecider,
                                        Observation, RewardConfig, RuleDecider, SystemState, action_mask, build_state,
                                        build_states, cpu_factor, oracle_action, state_dim)
from decision_support import tiny_profile


def test_latency_matches_hand_computed_formula() -> None:
    prof = tiny_profile()
    lm = LatencyModel(prof, LatencySettings(device_slowdown=6.0, edge_slowdown=1.0, device_overhead_ms=0.5,
                                            remote_overhead_ms=3.0))
    s = SystemState(bandwidth_mbps=2.0, rtt_ms=10.0, device_contention=2.0, edge_contention=4 / 3)
    # e1/p0/b8: device encodes only (0.1 ms x 6 x contention 2) + its overhead; 1000 B at 2 Mbit/s = 4 ms;
    # RTT 10; edge decode + blocks 0,1 + exit 1 = 0.05 + 3 + 0.25 ms, times 4/3; the remote overhead.
    expected = 0.1 * 6 * 2 + 0.5 + 8000 / 2e3 + 10.0 + (0.05 + 1.0 + 2.0 + 0.25) * 4 / 3 + 3.0
    assert lm.latency_ms(Action(1, 0, 8), s) == pytest.approx(expected)
    # e1/p1/b32: device block 0 + encode; 1000 B; edge decode + block 1 + exit 1.
    expected = (1.0 + 0.1) * 6 * 2 + 0.5 + 8000 / 2e3 + 10.0 + (0.05 + 2.0 + 0.25) * 4 / 3 + 3.0
    assert lm.latency_ms(Action(1, 1, 32), s) == pytest.approx(expected)
    # local e1: blocks 0,1 + exit 1 on the device and its overhead; no transfer, RTT or remote overhead.
    assert lm.latency_ms(Action(1, 2, 0), s) == pytest.approx((3.0 + 0.25) * 6 * 2 + 0.5)
    assert lm.latency_ms(Action(0, 1, 0), s) == pytest.approx((1.0 + 0.5) * 6 * 2 + 0.5)


def test_latency_uses_the_per_frame_timings_where_the_profile_has_them() -> None:
    prof = tiny_profile()
    tight = LatencyModel(prof).table(SystemState(5.0, 2.0, 1.0, 1.0))
    prof.frame = FrameTiming(100.0, [2 * v for v in prof.block_ms], [2 * v for v in prof.exit_ms],
                             {k: 2 * v for k, v in prof.encode_ms.items()},
                             {k: 2 * v for k, v in prof.decode_ms.items()})
    prof.validate()
    assert prof.timing_basis == 'per-frame'
    per_frame = LatencyModel(prof, LatencySettings(device_slowdown=1.0))
    local = Action(1, 2, 0)
    assert per_frame.latency_ms(local, SystemState(5.0, 2.0, 1.0, 1.0)) == pytest.approx(2 * (3.0 + 0.25))
    assert per_frame.table(SystemState(5.0, 2.0, 1.0, 1.0))[per_frame.index[local]] \
        == pytest.approx(tight[per_frame.index[local]] / 6 * 2)


def test_contention_is_clipped_and_cpu_factor_turns_a_load_into_contention() -> None:
    np.testing.assert_allclose(cpu_factor([0.0, 0.5, 0.9, 0.99, 1.5], max_load=0.9), [1, 2, 10, 10, 10])
    lm = LatencyModel(tiny_profile(), LatencySettings(device_slowdown=1.0))
    local = Action(0, 1, 0)
    at = [lm.latency_ms(local, SystemState(1.0, 1.0, c, 1.0)) for c in (0.01, 0.5, 1.0, 10.0, 1e6)]
    assert at == pytest.approx([0.75, 0.75, 1.5, 15.0, 15.0])


def test_latency_table_is_vectorized_over_states() -> None:
    lm = LatencyModel(tiny_profile())
    bw = np.array([1.0, 5.0, 50.0])
    table = lm.table(SystemState(bw, np.full(3, 4.0), np.zeros(3), np.array([0.0, 0.5, 0.95])))
    assert table.shape == (3, len(lm.actions))
    for i in range(3):
        s = SystemState(bw[i], 4.0, 0.0, [0.0, 0.5, 0.95][i])
        np.testing.assert_allclose(table[i], [lm.latency_ms(a, s) for a in lm.actions])


def test_zero_bandwidth_is_clamped() -> None:
    lm = LatencyModel(tiny_profile(), LatencySettings(min_bandwidth_mbps=0.01))
    lat = lm.latency_ms(Action(1, 0, 8), SystemState(0.0, 0.0, 1.0, 1.0))
    assert np.isfinite(lat) and lat > 8000 / 0.01e3 - 1


def test_reward_formula() -> None:
    r = RewardConfig(deadline_ms=10.0, latency_weight=0.2, miss_penalty=0.5, late_weight=0.25)
    assert r.reward(0.9, 5.0) == pytest.approx(0.9 - 0.2 * 0.5)
    assert r.reward(0.9, 10.0) == pytest.approx(0.9 - 0.2)            # on time: no penalty
    assert r.reward(0.9, 20.0) == pytest.approx(0.9 - 0.2 - 0.5 - 0.25 * np.log(2))
    assert r.reward(0.9, 1e6) == pytest.approx(0.9 - 0.2 - 0.5 - 0.25 * np.log(1e5))
    assert r.reward(0.9, 20.0, deadline_ms=40.0) == pytest.approx(0.9 - 0.1)
    assert RewardConfig.from_dict(r.to_dict()) == r
    with pytest.raises(ValueError, match='late_weight'):
        RewardConfig(late_weight=-1.0)
    with pytest.raises(ValueError, match='deadline_ms'):
        RewardConfig(deadline_ms=0.0)


@settings(max_examples=300, deadline=None)
@given(accuracy=st.floats(0.0, 1.0), fast=st.floats(0.01, 1e5), factor=st.floats(1.001, 1e3),
       deadline=st.floats(1.0, 1e3))
def test_reward_strictly_decreases_with_latency_also_past_the_deadline(
        accuracy: float, fast: float, factor: float, deadline: float) -> None:
    r = RewardConfig(deadline_ms=deadline)
    assert r.reward(accuracy, fast * factor) < r.reward(accuracy, fast)


@settings(max_examples=300, deadline=None)
@given(late_ratio=st.floats(1.0, 1e4), factor=st.floats(1.5, 1e3), accuracy=st.floats(0.5, 0.9),
       accuracy_gain=st.floats(0.0, 0.099))
def test_past_the_deadline_a_clearly_faster_answer_beats_a_more_accurate_one(
        late_ratio: float, factor: float, accuracy: float, accuracy_gain: float) -> None:
    """Both late, one at least 1.5x later: an accuracy gain below 0.1 (exits differ by less) never makes up for it."""
    r = RewardConfig(deadline_ms=100.0)
    late = 100.0 * late_ratio * 1.0001
    assert r.reward(accuracy, late) > r.reward(accuracy + accuracy_gain, late * factor)


def test_oracle_action_is_exhaustive_best() -> None:
    prof = tiny_profile()
    lm = LatencyModel(prof)
    reward = RewardConfig(deadline_ms=20.0)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        s = SystemState(float(np.exp(rng.uniform(-2, 4))), float(rng.uniform(1, 60)), float(rng.uniform(1, 10)),
                        float(rng.uniform(1, 10)))
        best = max(prof.actions(), key=lambda a: float(reward.reward(prof.accuracy_of(a), lm.latency_ms(a, s))))
        assert oracle_action(prof, s, reward, lm) == best
        seen.add(best)
    assert len(seen) >= 2    # the toy problem is not trivial either
    only_local = np.array([prof.is_local(a) for a in lm.actions])
    assert prof.is_local(oracle_action(prof, SystemState(100.0, 1.0, 1.0, 1.0), reward, lm, mask=only_local))


def test_build_state_layout_and_normalization() -> None:
    s = build_state(99.0, 999.0, 2.0, 17.0, 30.0, 20.0, 2, n_actions=5)
    assert s.dtype == np.float32 and s.shape == (state_dim(5),) == (11,)
    np.testing.assert_allclose(s[:6], [np.log1p(99) / np.log1p(100), np.log1p(999) / np.log1p(1000),
                                       np.log(2) / np.log(10), 1.0, 1.5 / 4, np.log1p(20) / np.log1p(1000)], rtol=1e-6)
    np.testing.assert_array_equal(s[6:], [0, 0, 1, 0, 0])
    none = build_state(1.0, 1.0, 1.0, 0.7, None, 20.0, None, n_actions=5)
    assert none[2] == none[3] == 0 and none[4] == 0 and not none[6:].any()
    huge = build_state(1e4, 1e5, -1.0, np.inf, 1e6, 20.0, 7, n_actions=5)   # out-of-range inputs stay bounded
    assert np.all((huge >= 0) & (huge <= 1.0)) and not huge[6:].any()
    batch = build_states([99.0, 1.0], [999.0, 1.0], [2.0, 1.0], [17.0, 0.7], [30.0, 0.0], [20.0, 20.0], [2, -1], 5)
    np.testing.assert_array_equal(batch[0], s)
    np.testing.assert_array_equal(batch[1], none)


def test_action_mask() -> None:
    acts = tiny_profile().actions()
    m = action_mask(acts, allowed_bits=[32])
    assert [a for a, ok in zip(acts, m) if ok] == [a for a in acts if a.bits in (0, 32)]
    m = action_mask(acts, allowed_exits=[1])
    assert all(a.exit == 1 for a, ok in zip(acts, m) if ok) and m.sum() == 5
    with pytest.raises(ValueError):
        action_mask(acts, allowed_exits=[5])


def test_settings_from_dicts_refuse_unknown_keys_and_take_floats() -> None:
    r = RewardConfig.from_dict({'deadline_ms': 10, 'miss_penalty': 1})
    assert r == RewardConfig(deadline_ms=10.0, miss_penalty=1.0) and isinstance(r.deadline_ms, float)
    with pytest.raises(ValueError, match=r"unknown reward settings \['latncy_weight'\]"):
        RewardConfig.from_dict({'deadline_ms': 10.0, 'latncy_weight': 0.1})
    assert LatencySettings.from_dict({'remote_overhead_ms': 2}) == LatencySettings(remote_overhead_ms=2.0)
    with pytest.raises(ValueError, match='unknown latency settings'):
        LatencySettings.from_dict({'device_slowdwn': 2.0})


def test_observation_vector_is_build_state() -> None:
    obs = Observation(99.0, 999.0, 0.5, 1.7, 30.0, 20.0, 2)
    np.testing.assert_array_equal(obs.state_vector(5), build_state(99.0, 999.0, 0.5, 1.7, 30.0, 20.0, 2, 5))
    assert obs.system_state() == SystemState(99.0, 999.0, 0.5, 1.7)
    fresh = Observation(1.0, 1.0, 0.0, 0.0, None, 20.0)
    np.testing.assert_array_equal(fresh.state_vector(5), build_state(1.0, 1.0, 0.0, 0.0, None, 20.0, None, 5))


def test_rule_decider_is_the_exhaustive_search_on_the_measured_state() -> None:
    prof = tiny_profile()
    settings = LatencySettings(device_slowdown=3.0)
    lm = LatencyModel(prof, settings)
    reward = RewardConfig(deadline_ms=20.0, latency_weight=0.3)
    rule = RuleDecider(prof, reward, settings)
    assert rule.actions == prof.actions() and rule.mask.all() and rule.reward_config is reward
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(200):
        obs = Observation(float(np.exp(rng.uniform(-2, 4))), float(rng.uniform(1, 60)), float(rng.uniform(1, 10)),
                          float(rng.uniform(1, 10)), None, float(rng.choice([5.0, 15.0, 40.0])))
        a = rule.act(obs)
        assert a == oracle_action(prof, obs.system_state(), reward, lm, obs.deadline_ms)
        assert rule.actions[rule.index_of(a)] == a
        seen.add(a)
    assert len(seen) >= 2
    # The observation's deadline counts, not the reward config's: a tight deadline forces a faster action.
    obs = Observation(2.0, 10.0, 2.0, 4 / 3, None, 1e4)
    slow, fast = rule.act(obs), rule.act(Observation(2.0, 10.0, 2.0, 4 / 3, None, 12.0))
    state = obs.system_state()
    assert lm.latency_ms(fast, state) < lm.latency_ms(slow, state)
    only_local = np.array([prof.is_local(a) for a in rule.actions])
    assert prof.is_local(rule.act(obs, mask=only_local))
    assert prof.is_local(RuleDecider(prof, reward, settings, mask=only_local).act(obs))
    with pytest.raises(ValueError, match='excludes every action'):
        RuleDecider(prof, reward, mask=only_local).act(obs, mask=~only_local)
    with pytest.raises(ValueError):
        RuleDecider(prof, reward, mask=np.zeros(len(rule.actions), bool))


def test_fixed_decider_always_answers_its_action_and_refuses_unknown_ones() -> None:
    prof = tiny_profile()
    fixed = FixedDecider(prof, Action(1, 1, 8), RewardConfig())
    obs = Observation(1.0, 5.0, 1.0, 1.0, None, 20.0)
    assert fixed.act(obs) == Action(1, 1, 8) and fixed.act(Observation(1e3, 0.1, 9.0, 1.0, 3.0, 1.0, 2)) == \
        Action(1, 1, 8)
    assert fixed.actions[fixed.index_of(Action(1, 1, 8))] == Action(1, 1, 8)
    with pytest.raises(ValueError, match='not an action of the profile'):
        FixedDecider(prof, Action(1, 1, 4), RewardConfig())
    with pytest.raises(ValueError, match='excludes the fixed action'):
        fixed.act(obs, mask=np.array([a != Action(1, 1, 8) for a in fixed.actions]))


def _decisions_against_the_simulators_rule(rule, simulator_rule) -> set:
    """Return the actions ``rule`` took on 200 random observations, each checked against ``simulator_rule``."""
    from coinfer_edge.core.simulator import StepView
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(200):
        obs = Observation(float(np.exp(rng.uniform(-3, 5))), float(rng.uniform(0.5, 60)), float(rng.uniform(1, 10)),
                          float(rng.uniform(1, 10)), None, float(rng.choice([5.0, 15.0, 40.0])))
        m = obs.system_state()
        view = StepView(np.zeros((1, 14), np.float32), SystemState(*(np.array([v]) for v in (
            m.bandwidth_mbps, m.rtt_ms, m.device_contention, m.edge_contention))), m,
            np.zeros((1, 8)), np.array([obs.deadline_ms]), rule.mask)
        a = rule.act(obs)
        assert a == rule.actions[int(simulator_rule(view)[0])]
        assert a.bits in (0, 32)       # float32 features or local, as Edgent and Neurosurgeon
        seen.add(a)
    return seen


def test_edgent_decider_is_the_simulators_edgent_rule_on_the_measured_state() -> None:
    from coinfer_edge.core import baselines
    rule = EdgentDecider(tiny_profile(), RewardConfig())
    assert len(_decisions_against_the_simulators_rule(rule, baselines.edgent(rule.latency))) >= 3


def test_neurosurgeon_decider_is_the_simulators_rule_and_keeps_the_final_exit() -> None:
    from coinfer_edge.core import baselines
    prof = tiny_profile()
    rule = NeurosurgeonDecider(prof, RewardConfig())
    seen = _decisions_against_the_simulators_rule(rule, baselines.neurosurgeon(rule.latency))
    assert len(seen) >= 2 and {a.exit for a in seen} == {len(prof.branch_points) - 1}
