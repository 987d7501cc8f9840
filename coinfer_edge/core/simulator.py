# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The trace-driven simulator the policy is trained and evaluated in.

- :class:`CoInferenceEnv`: N parallel episodes on random windows of training traces (gym-like,
  vectorized).  Latency and reward come from the *true* state of the trace; the state the agent
  sees is built (:func:`coinfer_edge.core.decision.build_states`) from *measured* values: lagged by
  ``obs_lag_steps``, EWMA-smoothed and noisy, like what the monitor nodes report.
- :func:`rollout`: a decision rule (:data:`Decider`, ``StepView -> action indices``) over whole
  traces in lockstep with seeded measurement noise, for evaluation; :func:`oracle_decider` is the
  upper bound (exhaustive search with the true state).

The decision problem itself (state, reward, latency model) is :mod:`coinfer_edge.core.decision`.
Everything here is numpy; no torch, no rclpy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from coinfer_device.core.config import strict_from_dict
from coinfer_device.core.profile import Profile
from coinfer_edge.core.decision import (LatencyModel, LatencySettings, RewardConfig, SystemState, action_mask,
                                        build_states, cpu_factor, masked_argmax, state_dim)
from coinfer_edge.core.traces import Trace


@dataclass
class EnvConfig:
    """Simulation settings (config/sacd_train.yaml, section ``env``)."""

    dt_s: float = 0.1
    episode_steps: int = 100
    obs_lag_steps: int = 1
    obs_ewma: float = 0.5
    obs_noise: float = 0.1
    contention_noise: float = 0.05
    deadlines_ms: list[float] = field(default_factory=list)
    allowed_exits: list[int] | None = None
    allowed_bits: list[int] | None = None
    latency: LatencySettings = field(default_factory=LatencySettings)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'EnvConfig':
        """Build from a (YAML) dictionary; unknown keys are an error, also in ``latency``."""
        return strict_from_dict(cls, d, 'env', {'latency': LatencySettings.from_dict})

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dictionary."""
        return asdict(self)


@dataclass
class StepView:
    """What a decision rule may look at for N parallel environments at one step."""

    state: np.ndarray            # [N, D] normalized policy state (measured values)
    measured: SystemState        # arrays [N]: lagged, smoothed, noisy estimates
    true: SystemState            # arrays [N]: the true current state
    true_latency_ms: np.ndarray  # [N, A] latency of every action in the true state
    deadline_ms: np.ndarray      # [N]
    mask: np.ndarray             # [A] bool, allowed actions


Decider = Callable[[StepView], np.ndarray]


class TraceBank:
    """Traces concatenated into flat arrays, with every action's true latency precomputed.

    A trace's CPU loads become compute contention by processor sharing (:func:`cpu_factor`).
    """

    def __init__(self, traces: Sequence[Trace], latency: LatencyModel) -> None:
        if not traces:
            raise ValueError('no traces')
        self.traces = list(traces)
        self.lengths = np.array([len(t) for t in traces])
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.bw = np.concatenate([t.bandwidth_mbps for t in traces])
        self.rtt = np.concatenate([t.rtt_ms for t in traces])
        max_load = 1.0 - 1.0 / latency.settings.max_contention
        self.dev = cpu_factor(np.concatenate([t.device_load for t in traces]), max_load)
        self.edge = cpu_factor(np.concatenate([t.edge_load for t in traces]), max_load)
        self.latency = latency.table(SystemState(self.bw, self.rtt, self.dev, self.edge)).astype(np.float32)

    def true_state(self, idx: np.ndarray) -> SystemState:
        """Return the true state at flat indices ``idx``."""
        return SystemState(self.bw[idx], self.rtt[idx], self.dev[idx], self.edge[idx])


class _Estimator:
    """Measured state of N environments: EWMA of lagged, noisy samples (what the monitor nodes report)."""

    def __init__(self, cfg: EnvConfig, n: int) -> None:
        self.cfg = cfg
        self.values = np.zeros((4, n))

    def sample(self, bank: TraceBank, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg = self.cfg
        s = bank.true_state(idx)
        link = np.stack([s.bandwidth_mbps, s.rtt_ms]) * np.exp(cfg.obs_noise * rng.standard_normal((2, len(idx))))
        compute = (np.stack([s.device_contention, s.edge_contention])
                   * np.exp(cfg.contention_noise * rng.standard_normal((2, len(idx)))))
        return np.concatenate([link, compute])

    def reset(self, envs: np.ndarray, bank: TraceBank, idx: np.ndarray, rng: np.random.Generator) -> None:
        self.values[:, envs] = self.sample(bank, idx, rng)

    def update(self, bank: TraceBank, idx: np.ndarray, rng: np.random.Generator) -> None:
        a = self.cfg.obs_ewma
        self.values = (1.0 - a) * self.values + a * self.sample(bank, idx, rng)

    def state(self) -> SystemState:
        return SystemState(*self.values.copy())


class CoInferenceEnv:
    """N parallel episodes on random windows of training traces (vectorized, gym-like API).

    ``reset() -> state [N, D]``; ``step(actions [N]) -> (next_state, reward, done, info)``; episodes
    that end are restarted automatically and ``info['final_state']`` holds their last next-state
    (episodes end only by the time limit, so they are truncations, never terminal).
    """

    def __init__(self, profile: Profile, traces: Sequence[Trace], reward: RewardConfig,
                 cfg: EnvConfig | None = None, n_envs: int = 8, seed: int = 0) -> None:
        self.cfg = cfg or EnvConfig()
        self.reward_cfg = reward
        self.latency = LatencyModel(profile, self.cfg.latency)
        self.actions = self.latency.actions
        self.n_actions = len(self.actions)
        self.mask = action_mask(self.actions, self.cfg.allowed_exits, self.cfg.allowed_bits)
        self.bank = TraceBank(traces, self.latency)
        self.n_envs = n_envs
        self.rng = np.random.default_rng(seed)
        lag = self.cfg.obs_lag_steps
        self.starts_max = self.bank.lengths - self.cfg.episode_steps
        if np.any(self.starts_max < lag):
            short = [t.name for t, m in zip(traces, self.starts_max) if m < lag]
            raise ValueError(f'traces shorter than episode_steps + obs_lag_steps: {short}')
        self.weights = (self.starts_max - lag + 1) / np.sum(self.starts_max - lag + 1)
        self.est = _Estimator(self.cfg, n_envs)
        self.flat = np.zeros(n_envs, dtype=np.int64)
        self.step_in_ep = np.zeros(n_envs, dtype=np.int64)
        self.deadline = np.full(n_envs, reward.deadline_ms)
        self.prev_action = np.full(n_envs, -1)
        self.recent_latency = np.zeros(n_envs)

    @property
    def state_dim(self) -> int:
        """Return the state length."""
        return state_dim(self.n_actions)

    def _start(self, envs: np.ndarray) -> None:
        lag = self.cfg.obs_lag_steps
        k = self.rng.choice(len(self.bank.traces), size=len(envs), p=self.weights)
        start = self.rng.integers(lag, self.starts_max[k] + 1)
        self.flat[envs] = self.bank.offsets[k] + start
        self.step_in_ep[envs] = 0
        self.prev_action[envs] = -1
        self.recent_latency[envs] = 0.0
        if self.cfg.deadlines_ms:
            self.deadline[envs] = self.rng.choice(self.cfg.deadlines_ms, size=len(envs))
        self.est.reset(envs, self.bank, self.flat[envs] - lag, self.rng)

    def observe(self) -> np.ndarray:
        """Return the current normalized states [N, D]."""
        m = self.est.state()
        return build_states(m.bandwidth_mbps, m.rtt_ms, m.device_contention, m.edge_contention, self.recent_latency,
                            self.deadline, self.prev_action, self.n_actions)

    def view(self) -> StepView:
        """Return everything a decision rule may look at now."""
        return StepView(self.observe(), self.est.state(), self.bank.true_state(self.flat),
                        self.bank.latency[self.flat], self.deadline.copy(), self.mask)

    def reset(self) -> np.ndarray:
        """Start N fresh episodes; return their states."""
        self._start(np.arange(self.n_envs))
        return self.observe()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Apply one action per environment; return ``(next_state, reward, done, info)``."""
        actions = np.asarray(actions, dtype=np.int64)
        if np.any(~self.mask[actions]):
            raise ValueError(f'masked action(s) {actions[~self.mask[actions]].tolist()}')
        lat = self.bank.latency[self.flat, actions].astype(np.float64)
        acc = self.latency.accuracy[actions]
        reward = self.reward_cfg.reward(acc, lat, self.deadline)
        info: dict[str, Any] = {'latency_ms': lat, 'accuracy': acc, 'miss': lat > self.deadline}
        self.prev_action = actions.copy()
        self.recent_latency = lat.copy()
        self.flat += 1
        self.step_in_ep += 1
        self.est.update(self.bank, self.flat - self.cfg.obs_lag_steps, self.rng)
        next_state = self.observe()
        done = self.step_in_ep >= self.cfg.episode_steps
        info['final_state'] = next_state.copy()
        if np.any(done):
            self._start(np.nonzero(done)[0])
            next_state = self.observe()
        return next_state, reward, done, info


@dataclass
class Rollout:
    """Per-step records of one decision rule on one trace."""

    trace: str
    action: np.ndarray
    latency_ms: np.ndarray
    accuracy: np.ndarray
    reward: np.ndarray
    miss: np.ndarray
    feasible: np.ndarray


def rollout(decider: Decider, profile: Profile, traces: Sequence[Trace], reward: RewardConfig,
            cfg: EnvConfig | None = None, seed: int = 0, deadline_ms: float | None = None) -> list[Rollout]:
    """Run ``decider`` over every whole trace, all traces in lockstep, with seeded measurement noise.

    Every step ``t >= obs_lag_steps`` of each trace is decided once.  The measurement noise depends
    only on ``seed``, so two deciders see exactly the same measured states as long as they make the
    same decisions (only ``prev_action`` / recent latency differ otherwise).
    """
    cfg = cfg or EnvConfig()
    latency = LatencyModel(profile, cfg.latency)
    bank = TraceBank(traces, latency)
    mask = action_mask(latency.actions, cfg.allowed_exits, cfg.allowed_bits)
    n, lag, n_act = len(traces), cfg.obs_lag_steps, len(latency.actions)
    steps = bank.lengths - lag
    if np.any(steps < 1):
        raise ValueError('every trace needs more than obs_lag_steps samples')
    rng = np.random.default_rng(seed)
    est = _Estimator(cfg, n)
    deadline = np.full(n, reward.deadline_ms if deadline_ms is None else deadline_ms)
    est.reset(np.arange(n), bank, bank.offsets, rng)
    prev, recent = np.full(n, -1), np.zeros(n)
    rec = {k: [np.zeros(s) for s in steps] for k in ('latency_ms', 'accuracy', 'reward')}
    acts = [np.zeros(s, dtype=np.int64) for s in steps]
    miss = [np.zeros(s, dtype=bool) for s in steps]
    feas = [np.zeros(s, dtype=bool) for s in steps]
    for t in range(int(steps.max())):
        active = np.nonzero(t < steps)[0]
        flat = bank.offsets + np.minimum(t + lag, bank.lengths - 1)
        m = est.state()
        view = StepView(build_states(m.bandwidth_mbps, m.rtt_ms, m.device_contention, m.edge_contention, recent,
                                     deadline, prev, n_act),
                        m, bank.true_state(flat), bank.latency[flat].astype(np.float64), deadline.copy(), mask)
        a = np.asarray(decider(view), dtype=np.int64)
        if np.any(~mask[a[active]]):
            raise ValueError('decider chose a masked action')
        lat = view.true_latency_ms[np.arange(n), a]
        acc = latency.accuracy[a]
        r = reward.reward(acc, lat, deadline)
        ok = np.any((view.true_latency_ms <= deadline[:, None]) & mask, axis=1)
        for i in active:
            acts[i][t], rec['latency_ms'][i][t], rec['accuracy'][i][t] = a[i], lat[i], acc[i]
            rec['reward'][i][t], miss[i][t], feas[i][t] = r[i], lat[i] > deadline[i], ok[i]
        prev, recent = a, lat
        est.update(bank, np.minimum(flat + 1 - lag, bank.offsets + bank.lengths - 1), rng)
    return [Rollout(tr.name, acts[i], rec['latency_ms'][i], rec['accuracy'][i], rec['reward'][i], miss[i], feas[i])
            for i, tr in enumerate(traces)]


def oracle_decider(reward: RewardConfig, accuracy: np.ndarray) -> Decider:
    """Return the oracle: per step, the best allowed action for the true state."""
    def decide(v: StepView) -> np.ndarray:
        return masked_argmax(reward.reward(accuracy, v.true_latency_ms, v.deadline_ms[:, None]), v.mask)
    return decide
