# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Latency model, reward, state, oracle, environment and baselines on a small hand-made profile."""

import numpy as np
import pytest

from coinfer_device.core.profile import Action, Profile
from coinfer_edge.core import baselines
from coinfer_edge.core.env import (CoInferenceEnv, EnvConfig, LatencyModel, LatencySettings, RewardConfig, SystemState,
                                   action_mask, build_state, build_states, cpu_factor, oracle_action, oracle_decider,
                                   rollout, state_dim)
from coinfer_edge.core.traces import Trace


def tiny_profile() -> Profile:
    """Two blocks, exits after block 1 and 2, bits {8, 32}: 8 actions."""
    keys = [(0, 8), (0, 32), (1, 8), (1, 32)]
    acc = {Action(0, 0, 8): 0.70, Action(0, 0, 32): 0.71, Action(0, 1, 0): 0.71,
           Action(1, 0, 8): 0.90, Action(1, 0, 32): 0.91, Action(1, 1, 8): 0.88, Action(1, 1, 32): 0.91,
           Action(1, 2, 0): 0.91}
    return Profile(block_ms=[1.0, 2.0], exit_ms=[0.5, 0.25], branch_points=[1, 2], bits_choices=[8, 32],
                   payload_bytes={(0, 8): 1000, (0, 32): 4000, (1, 8): 250, (1, 32): 1000},
                   encode_ms={k: 0.1 for k in keys}, decode_ms={k: 0.05 for k in keys}, accuracy=acc)


def const_trace(n: int = 50, bw: float = 2.0, rtt: float = 10.0, dev: float = 0.5, edge: float = 0.25) -> Trace:
    return Trace('const', 0.1, np.full(n, bw), np.full(n, rtt), np.full(n, dev), np.full(n, edge))


def test_latency_matches_hand_computed_formula() -> None:
    prof = tiny_profile()
    lm = LatencyModel(prof, LatencySettings(device_slowdown=6.0, edge_slowdown=1.0, max_load=0.9))
    s = SystemState(bandwidth_mbps=2.0, rtt_ms=10.0, device_load=0.5, edge_load=0.25)
    # e1/p0/b8: device encodes only (0.1 ms x 6 x 1/(1-0.5)); 1000 B at 2 Mbit/s = 4 ms; RTT 10;
    # edge decode + blocks 0,1 + exit 1 = 0.05 + 3 + 0.25 ms, times 1/(1-0.25).
    expected = 0.1 * 6 * 2 + 8000 / 2e3 + 10.0 + (0.05 + 1.0 + 2.0 + 0.25) / 0.75
    assert lm.latency_ms(Action(1, 0, 8), s) == pytest.approx(expected)
    # e1/p1/b32: device block 0 + encode; 1000 B; edge decode + block 1 + exit 1.
    expected = (1.0 + 0.1) * 6 * 2 + 8000 / 2e3 + 10.0 + (0.05 + 2.0 + 0.25) / 0.75
    assert lm.latency_ms(Action(1, 1, 32), s) == pytest.approx(expected)
    # local e1: blocks 0,1 + exit 1 on the device, no transfer, no RTT.
    assert lm.latency_ms(Action(1, 2, 0), s) == pytest.approx((3.0 + 0.25) * 6 * 2)
    assert lm.latency_ms(Action(0, 1, 0), s) == pytest.approx((1.0 + 0.5) * 6 * 2)


def test_latency_table_is_vectorized_over_states() -> None:
    lm = LatencyModel(tiny_profile())
    bw = np.array([1.0, 5.0, 50.0])
    table = lm.table(SystemState(bw, np.full(3, 4.0), np.zeros(3), np.array([0.0, 0.5, 0.95])))
    assert table.shape == (3, len(lm.actions))
    for i in range(3):
        s = SystemState(bw[i], 4.0, 0.0, [0.0, 0.5, 0.95][i])
        np.testing.assert_allclose(table[i], [lm.latency_ms(a, s) for a in lm.actions])


def test_cpu_factor_and_zero_bandwidth_are_capped() -> None:
    np.testing.assert_allclose(cpu_factor([0.0, 0.5, 0.9, 0.99, 1.5], max_load=0.9), [1, 2, 10, 10, 10])
    lm = LatencyModel(tiny_profile(), LatencySettings(min_bandwidth_mbps=0.01))
    lat = lm.latency_ms(Action(1, 0, 8), SystemState(0.0, 0.0, 0.0, 0.0))
    assert np.isfinite(lat) and lat > 8000 / 0.01e3 - 1


def test_reward_formula() -> None:
    r = RewardConfig(deadline_ms=10.0, latency_weight=0.2, miss_penalty=0.5, latency_cap=3.0)
    assert r.reward(0.9, 5.0) == pytest.approx(0.9 - 0.2 * 0.5)
    assert r.reward(0.9, 10.0) == pytest.approx(0.9 - 0.2)            # on time: no penalty
    assert r.reward(0.9, 20.0) == pytest.approx(0.9 - 0.4 - 0.5)
    assert r.reward(0.9, 1e6) == pytest.approx(0.9 - 0.6 - 0.5)       # latency term capped
    assert r.reward(0.9, 20.0, deadline_ms=40.0) == pytest.approx(0.9 - 0.1)
    assert RewardConfig.from_dict(r.to_dict()) == r


def test_oracle_action_is_exhaustive_best() -> None:
    prof = tiny_profile()
    lm = LatencyModel(prof)
    reward = RewardConfig(deadline_ms=20.0)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        s = SystemState(float(np.exp(rng.uniform(-2, 4))), float(rng.uniform(1, 60)), float(rng.uniform(0, 0.95)),
                        float(rng.uniform(0, 0.95)))
        best = max(prof.actions(), key=lambda a: float(reward.reward(prof.accuracy_of(a), lm.latency_ms(a, s))))
        assert oracle_action(prof, s, reward, lm) == best
        seen.add(best)
    assert len(seen) >= 2    # the toy problem is not trivial either
    only_local = np.array([prof.is_local(a) for a in lm.actions])
    assert prof.is_local(oracle_action(prof, SystemState(100.0, 1.0, 0.0, 0.0), reward, lm, mask=only_local))


def test_build_state_layout_and_normalization() -> None:
    s = build_state(99.0, 999.0, 0.5, 1.7, 30.0, 20.0, 2, n_actions=5)
    assert s.dtype == np.float32 and s.shape == (state_dim(5),) == (11,)
    np.testing.assert_allclose(s[:6], [np.log1p(99) / np.log1p(100), np.log1p(999) / np.log1p(1000), 0.5, 1.0,
                                       1.5 / 4, np.log1p(20) / np.log1p(1000)], rtol=1e-6)
    np.testing.assert_array_equal(s[6:], [0, 0, 1, 0, 0])
    none = build_state(1.0, 1.0, 0.0, 0.0, None, 20.0, None, n_actions=5)
    assert none[4] == 0 and not none[6:].any()
    huge = build_state(1e4, 1e5, -1.0, 0.0, 1e6, 20.0, 7, n_actions=5)   # out-of-range inputs stay bounded
    assert np.all((huge >= 0) & (huge <= 1.0)) and not huge[6:].any()
    batch = build_states([99.0, 1.0], [999.0, 1.0], [0.5, 0.0], [1.7, 0.0], [30.0, 0.0], [20.0, 20.0], [2, -1], 5)
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


def test_env_reward_uses_true_state_and_observation_is_lagged() -> None:
    prof = tiny_profile()
    rng = np.random.default_rng(1)
    n = 40
    tr = Trace('t', 0.1, np.exp(rng.uniform(-1, 3, n)), rng.uniform(1, 30, n), rng.uniform(0, 0.9, n),
               rng.uniform(0, 0.9, n))
    cfg = EnvConfig(episode_steps=10, obs_lag_steps=1, obs_ewma=1.0, obs_noise=0.0, load_noise=0.0)
    reward = RewardConfig(deadline_ms=15.0)
    env = CoInferenceEnv(prof, [tr], reward, cfg, n_envs=3, seed=5)
    lm = LatencyModel(prof, cfg.latency)
    obs = env.reset()
    for _ in range(25):
        t = env.flat.copy()                     # true index of the current step (one trace: offset 0)
        expect_obs = build_states(tr.bandwidth_mbps[t - 1], tr.rtt_ms[t - 1], tr.device_load[t - 1],
                                  tr.edge_load[t - 1], env.recent_latency, env.deadline, env.prev_action, 8)
        np.testing.assert_allclose(obs, expect_obs, rtol=1e-6)
        actions = rng.integers(0, 8, size=3)
        obs, r, done, info = env.step(actions)
        for i in range(3):
            s = SystemState(tr.bandwidth_mbps[t[i]], tr.rtt_ms[t[i]], tr.device_load[t[i]], tr.edge_load[t[i]])
            lat = lm.latency_ms(lm.actions[actions[i]], s)
            assert info['latency_ms'][i] == pytest.approx(lat, rel=1e-5)
            assert r[i] == pytest.approx(float(reward.reward(lm.accuracy[actions[i]], lat)), rel=1e-5)
            if not done[i]:
                assert obs[i, 6 + actions[i]] == 1.0
            else:
                assert info['final_state'][i, 6 + actions[i]] == 1.0 and not obs[i, 6:].any()
    assert np.all(env.step_in_ep <= cfg.episode_steps)


def test_env_is_seeded_and_rejects_masked_actions() -> None:
    prof = tiny_profile()
    tr = Trace('t', 0.1, np.linspace(1, 20, 60), np.full(60, 5.0), np.full(60, 0.2), np.full(60, 0.1))
    cfg = EnvConfig(episode_steps=5, allowed_bits=[32])
    runs = []
    for _ in range(2):
        env = CoInferenceEnv(prof, [tr], RewardConfig(), cfg, n_envs=4, seed=9)
        obs = [env.reset()]
        allowed = np.nonzero(env.mask)[0]
        for k in range(12):
            obs.append(env.step(np.full(4, allowed[k % len(allowed)]))[0])
        runs.append(np.stack(obs))
    np.testing.assert_array_equal(runs[0], runs[1])
    with pytest.raises(ValueError, match='masked'):
        env.step(np.full(4, env.actions.index(Action(0, 0, 8))))
    with pytest.raises(ValueError, match='shorter'):
        CoInferenceEnv(prof, [const_trace(5)], RewardConfig(), cfg)


def test_rollout_oracle_beats_every_fixed_action_per_step() -> None:
    prof = tiny_profile()
    rng = np.random.default_rng(2)
    n = 80
    trs = [Trace(f't{k}', 0.1, np.exp(rng.uniform(-2, 4, n)), rng.uniform(1, 40, n), rng.uniform(0, 0.9, n),
                 rng.uniform(0, 0.9, n)) for k in range(3)]
    reward = RewardConfig(deadline_ms=15.0)
    lm = LatencyModel(prof)
    oracle = rollout(oracle_decider(reward, lm.accuracy), prof, trs, reward)
    assert [len(r.reward) for r in oracle] == [n - 1] * 3
    for idx in range(len(lm.actions)):
        fixed = rollout(baselines.fixed(idx), prof, trs, reward)
        for o, f in zip(oracle, fixed):
            assert np.all(o.reward >= f.reward - 1e-9)
            assert np.array_equal(o.feasible, f.feasible)
            np.testing.assert_allclose(f.latency_ms[f.feasible & ~f.miss] <= reward.deadline_ms, True)
    for o in oracle:
        assert not np.any(o.miss & o.feasible) or reward.miss_penalty < 1e-9


def test_baselines_follow_their_definitions() -> None:
    prof = tiny_profile()
    lm = LatencyModel(prof)
    reward = RewardConfig(deadline_ms=15.0)
    acts = lm.actions
    assert acts[baselines.device_only_index(lm)] == Action(1, 2, 0)
    assert acts[baselines.edge_only_index(lm)] == Action(1, 0, 8)
    fast = SystemState(np.array([100.0]), np.array([1.0]), np.array([0.9]), np.array([0.0]))
    from coinfer_edge.core.env import StepView
    view = StepView(np.zeros((1, 14), np.float32), fast, fast, lm.table(fast), np.array([15.0]),
                    np.ones(len(acts), bool))
    # Fast link, busy device: Neurosurgeon sends the raw input in float32 (final exit).
    assert acts[int(baselines.neurosurgeon(lm)(view)[0])] == Action(1, 0, 32)
    # Edgent: final exit's best float split meets 15 ms here.
    assert acts[int(baselines.edgent(lm)(view)[0])] == Action(1, 0, 32)
    slow = SystemState(np.array([0.05]), np.array([50.0]), np.array([0.0]), np.array([0.0]))
    view = StepView(view.state, slow, slow, lm.table(slow), np.array([15.0]), view.mask)
    # Slow link, idle device: exit 1 locally takes 3.25 x 6 = 19.5 ms > 15, exit 0 locally 9 ms: Edgent falls back.
    assert acts[int(baselines.edgent(lm)(view)[0])] == Action(0, 1, 0)
    assert acts[int(baselines.neurosurgeon(lm)(view)[0])] == Action(1, 2, 0)
    tr = const_trace(30, bw=0.05, rtt=50.0, dev=0.0, edge=0.0)
    assert acts[baselines.best_fixed_index(prof, [tr], reward, EnvConfig())] == Action(0, 1, 0)
    pick = baselines.random_rule(0)(StepView(np.zeros((500, 14)), slow, slow, np.zeros((500, 8)),
                                             np.full(500, 15.0), action_mask(acts, allowed_bits=[8])))
    assert set(pick.tolist()) == {i for i, a in enumerate(acts) if a.bits in (0, 8)}
