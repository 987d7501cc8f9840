# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The trace-driven simulator on a small hand-made profile: environment, rollouts, oracle and baselines."""

import numpy as np
import pytest

from coinfer_device.core.action import Action
from coinfer_edge.core import baselines
from coinfer_edge.core.decision import (LatencyModel, RewardConfig, SystemState, action_mask, build_states,
                                        cpu_factor)
from coinfer_edge.core.simulator import CoInferenceEnv, EnvConfig, StepView, oracle_decider, rollout
from coinfer_edge.core.traces import Trace
from decision_support import tiny_profile


def const_trace(n: int = 50, bw: float = 2.0, rtt: float = 10.0, dev: float = 0.5, edge: float = 0.25) -> Trace:
    return Trace('const', 0.1, np.full(n, bw), np.full(n, rtt), np.full(n, dev), np.full(n, edge))


def test_env_reward_uses_true_state_and_observation_is_lagged() -> None:
    prof = tiny_profile()
    rng = np.random.default_rng(1)
    n = 40
    tr = Trace('t', 0.1, np.exp(rng.uniform(-1, 3, n)), rng.uniform(1, 30, n), rng.uniform(0, 0.9, n),
               rng.uniform(0, 0.9, n))
    cfg = EnvConfig(episode_steps=10, obs_lag_steps=1, obs_ewma=1.0, obs_noise=0.0, contention_noise=0.0)
    dev, edge = cpu_factor(tr.device_load), cpu_factor(tr.edge_load)   # the traces' loads, as contention
    reward = RewardConfig(deadline_ms=15.0)
    env = CoInferenceEnv(prof, [tr], reward, cfg, n_envs=3, seed=5)
    lm = LatencyModel(prof, cfg.latency)
    obs = env.reset()
    for _ in range(25):
        t = env.flat.copy()                     # true index of the current step (one trace: offset 0)
        expect_obs = build_states(tr.bandwidth_mbps[t - 1], tr.rtt_ms[t - 1], dev[t - 1], edge[t - 1],
                                  env.recent_latency, env.deadline, env.prev_action, 8)
        np.testing.assert_allclose(obs, expect_obs, rtol=1e-6)
        actions = rng.integers(0, 8, size=3)
        obs, r, done, info = env.step(actions)
        for i in range(3):
            s = SystemState(tr.bandwidth_mbps[t[i]], tr.rtt_ms[t[i]], dev[t[i]], edge[t[i]])
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
    fast = SystemState(np.array([100.0]), np.array([1.0]), np.array([10.0]), np.array([1.0]))
    view = StepView(np.zeros((1, 14), np.float32), fast, fast, lm.table(fast), np.array([15.0]),
                    np.ones(len(acts), bool))
    # Fast link, busy device: Neurosurgeon sends the raw input in float32 (final exit).
    assert acts[int(baselines.neurosurgeon(lm)(view)[0])] == Action(1, 0, 32)
    # Edgent: final exit's best float split meets 15 ms here.
    assert acts[int(baselines.edgent(lm)(view)[0])] == Action(1, 0, 32)
    slow = SystemState(np.array([0.05]), np.array([50.0]), np.array([1.0]), np.array([1.0]))
    view = StepView(view.state, slow, slow, lm.table(slow), np.array([15.0]), view.mask)
    # Slow link, idle device: exit 1 locally takes 3.25 x 6 = 19.5 ms > 15, exit 0 locally 9 ms: Edgent falls back.
    assert acts[int(baselines.edgent(lm)(view)[0])] == Action(0, 1, 0)
    assert acts[int(baselines.neurosurgeon(lm)(view)[0])] == Action(1, 2, 0)
    tr = const_trace(30, bw=0.05, rtt=50.0, dev=0.0, edge=0.0)
    assert acts[baselines.best_fixed_index(prof, [tr], reward, EnvConfig())] == Action(0, 1, 0)
    pick = baselines.random_rule(0)(StepView(np.zeros((500, 14)), slow, slow, np.zeros((500, 8)),
                                             np.full(500, 15.0), action_mask(acts, allowed_bits=[8])))
    assert set(pick.tolist()) == {i for i, a in enumerate(acts) if a.bits in (0, 8)}
