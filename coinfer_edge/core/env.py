# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The split-decision problem: latency model, reward, state, oracle and a trace-driven environment.

Formulation (docs/policy.md has the full text):

- **Action**: one valid ``(exit, partition, bits)`` of ``profile.actions()``; an optional mask
  (allowed exits / bits from the config) restricts it further.
- **Latency** of action ``a`` in system state ``s`` (all in ms)::

      device_compute_ms(a) * device_slowdown * cpu_factor(device_load)
      + [not local] * (payload_bits(a) / bandwidth + rtt + edge_compute_ms(a) * edge_slowdown * cpu_factor(edge_load))

  with ``cpu_factor(load) = 1 / (1 - min(load, max_load))``: a task that shares a CPU with a load
  ``u`` gets the idle share ``1 - u`` (processor sharing), capped at ``1 / (1 - max_load)``.
- **Reward**: ``accuracy(a) - latency_weight * min(latency / deadline, latency_cap)
  - miss_penalty * [latency > deadline]``.
- **State** (:func:`build_state`, the same function the policy node calls): normalized measured
  bandwidth, RTT, device and edge CPU load, the last measured latency relative to the deadline, the
  deadline and a one-hot of the previous action.  The environment feeds it *measured* values
  (lagged, EWMA-smoothed, noisy) while latency and reward use the *true* current state; the oracle
  sees the true state.

Everything here is numpy; no torch, no rclpy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from coinfer_device.core.profile import Action, Profile
from coinfer_edge.core.traces import Trace

# --------------------------------------------------------------------------- state

BANDWIDTH_SCALE_MBPS = 100.0
RTT_SCALE_MS = 1000.0
DEADLINE_SCALE_MS = 1000.0
LATENCY_RATIO_CLIP = 4.0
N_STATE_SCALARS = 6
STATE_FEATURES = ('log1p(min(bandwidth_mbps, 100))/log1p(100)', 'log1p(min(rtt_ms, 1000))/log1p(1000)',
                  'clip(device_load, 0, 1)', 'clip(edge_load, 0, 1)',
                  'clip(recent_latency_ms/deadline_ms, 0, 4)/4 (0 = none yet)',
                  'log1p(min(deadline_ms, 1000))/log1p(1000)', 'one-hot(prev_action_index) (all 0 = none)')


def state_dim(n_actions: int) -> int:
    """Return the length of the state vector for an action table of ``n_actions``."""
    return N_STATE_SCALARS + n_actions


def build_states(bandwidth_mbps: Any, rtt_ms: Any, device_load: Any, edge_load: Any,
                 recent_latency_ms: Any, deadline_ms: Any, prev_action_index: Any,
                 n_actions: int) -> np.ndarray:
    """Vectorized :func:`build_state`: every argument is an array of length N; returns [N, D]."""
    bw = np.maximum(np.asarray(bandwidth_mbps, dtype=np.float64), 0.0)
    rtt = np.maximum(np.asarray(rtt_ms, dtype=np.float64), 0.0)
    deadline = np.maximum(np.asarray(deadline_ms, dtype=np.float64), 1e-3)
    recent = np.nan_to_num(np.asarray(recent_latency_ms, dtype=np.float64), nan=0.0)
    prev = np.asarray(prev_action_index, dtype=np.int64).reshape(-1)
    n = len(prev)
    out = np.zeros((n, state_dim(n_actions)), dtype=np.float32)
    out[:, 0] = np.log1p(np.minimum(bw, BANDWIDTH_SCALE_MBPS)) / math.log1p(BANDWIDTH_SCALE_MBPS)
    out[:, 1] = np.log1p(np.minimum(rtt, RTT_SCALE_MS)) / math.log1p(RTT_SCALE_MS)
    out[:, 2] = np.clip(device_load, 0.0, 1.0)
    out[:, 3] = np.clip(edge_load, 0.0, 1.0)
    out[:, 4] = np.clip(np.maximum(recent, 0.0) / deadline, 0.0, LATENCY_RATIO_CLIP) / LATENCY_RATIO_CLIP
    out[:, 5] = np.log1p(np.minimum(deadline, DEADLINE_SCALE_MS)) / math.log1p(DEADLINE_SCALE_MS)
    valid = (prev >= 0) & (prev < n_actions)
    out[np.nonzero(valid)[0], N_STATE_SCALARS + prev[valid]] = 1.0
    return out


def build_state(bandwidth_mbps: float, rtt_ms: float, device_load: float, edge_load: float,
                recent_latency_ms: float | None, deadline_ms: float, prev_action_index: int | None,
                n_actions: int) -> np.ndarray:
    """Return the normalized policy state (float32 vector of length ``6 + n_actions``).

    Inputs are what the policy node measures: bandwidth estimate (Mbit/s), RTT estimate (ms), device
    and edge CPU load (0..1), the latency of the most recent result (ms; ``None``/``0`` = none yet),
    the deadline (ms) and the index of the previous action in the action table (``None``/``-1`` =
    none).  Features, in order (see :data:`STATE_FEATURES`), each in [0, 1]:
    ``log1p(min(bw, 100))/log1p(100)``, ``log1p(min(rtt, 1000))/log1p(1000)``, device load, edge load
    (both clipped to [0, 1]), ``clip(recent/deadline, 0, 4)/4``, ``log1p(min(deadline, 1000))/log1p(1000)``,
    one-hot previous action.
    """
    recent = 0.0 if recent_latency_ms is None else recent_latency_ms
    prev = -1 if prev_action_index is None else prev_action_index
    return build_states([bandwidth_mbps], [rtt_ms], [device_load], [edge_load], [recent], [deadline_ms],
                        [prev], n_actions)[0]


# --------------------------------------------------------------------------- reward and latency


@dataclass
class RewardConfig:
    """Reward coefficients: ``accuracy - latency_weight * min(latency/deadline, cap) - miss_penalty * miss``."""

    deadline_ms: float = 20.0
    latency_weight: float = 0.05
    miss_penalty: float = 0.5
    latency_cap: float = 4.0

    def reward(self, accuracy: Any, latency_ms: Any, deadline_ms: Any = None) -> np.ndarray:
        """Return the reward of accuracy and latency arrays (broadcasting; default deadline = the config's)."""
        deadline = self.deadline_ms if deadline_ms is None else deadline_ms
        ratio = np.asarray(latency_ms, dtype=np.float64) / deadline
        return (np.asarray(accuracy) - self.latency_weight * np.minimum(ratio, self.latency_cap)
                - self.miss_penalty * (ratio > 1.0))

    def to_dict(self) -> dict[str, float]:
        """Return a JSON-friendly dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'RewardConfig':
        """Build from a dictionary (unknown keys are an error)."""
        return cls(**{k: float(v) for k, v in d.items()})


@dataclass(frozen=True)
class SystemState:
    """Link and CPU state (true or measured); fields may be scalars or equally shaped arrays."""

    bandwidth_mbps: Any
    rtt_ms: Any
    device_load: Any
    edge_load: Any


@dataclass
class LatencySettings:
    """Parameters of the latency model that are not in the profile."""

    device_slowdown: float = 6.0
    edge_slowdown: float = 1.0
    max_load: float = 0.9
    min_bandwidth_mbps: float = 0.01

    def to_dict(self) -> dict[str, float]:
        """Return a JSON-friendly dictionary."""
        return asdict(self)


def cpu_factor(load: Any, max_load: float = 0.9) -> np.ndarray:
    """Return the compute-time multiplier ``1 / (1 - min(load, max_load))`` for a CPU load in [0, 1]."""
    return 1.0 / (1.0 - np.clip(np.asarray(load, dtype=np.float64), 0.0, max_load))


class LatencyModel:
    """End-to-end latency of every action of a profile, vectorized over actions and states."""

    def __init__(self, profile: Profile, settings: LatencySettings | None = None,
                 actions: Sequence[Action] | None = None) -> None:
        self.profile = profile
        self.settings = settings or LatencySettings()
        self.actions = tuple(actions if actions is not None else profile.actions())
        self.index = {a: i for i, a in enumerate(self.actions)}
        self.device_ms = np.array([profile.device_compute_ms(a) for a in self.actions])
        self.edge_ms = np.array([profile.edge_compute_ms(a) for a in self.actions])
        self.payload_bits = np.array([8.0 * profile.payload(a) for a in self.actions])
        self.local = np.array([profile.is_local(a) for a in self.actions])
        self.accuracy = np.array([profile.accuracy_of(a) for a in self.actions])

    def table(self, state: SystemState) -> np.ndarray:
        """Return latency in ms with shape ``state_shape + (n_actions,)``."""
        s = self.settings
        bw = np.maximum(np.asarray(state.bandwidth_mbps, dtype=np.float64), s.min_bandwidth_mbps)[..., None]
        rtt = np.asarray(state.rtt_ms, dtype=np.float64)[..., None]
        dev = self.device_ms * s.device_slowdown * cpu_factor(state.device_load, s.max_load)[..., None]
        edge = self.edge_ms * s.edge_slowdown * cpu_factor(state.edge_load, s.max_load)[..., None]
        # Mbit/s = 1e3 bit/ms, so bits / (bw * 1e3) is in ms.
        remote = self.payload_bits / (bw * 1e3) + rtt + edge
        return dev + np.where(self.local, 0.0, remote)

    def latency_ms(self, action: Action, state: SystemState) -> float:
        """Return the latency of one action in one (scalar) state."""
        return float(self.table(state)[..., self.index[action]])


def action_mask(actions: Sequence[Action], allowed_exits: Iterable[int] | None = None,
                allowed_bits: Iterable[int] | None = None) -> np.ndarray:
    """Return a boolean mask over ``actions``; ``None`` allows everything (local bits 0 always allowed)."""
    exits = None if allowed_exits is None else set(int(e) for e in allowed_exits)
    bits = None if allowed_bits is None else set(int(b) for b in allowed_bits) | {0}
    mask = np.array([(exits is None or a.exit in exits) and (bits is None or a.bits in bits) for a in actions])
    if not mask.any():
        raise ValueError('action mask excludes every action')
    return mask


def masked_argmax(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return ``argmax`` over the last axis, ignoring entries where ``mask`` is False."""
    return np.argmax(np.where(mask, values, -np.inf), axis=-1)


def oracle_action(profile: Profile, true_state: SystemState, reward: RewardConfig,
                  latency: LatencyModel | None = None, deadline_ms: float | None = None,
                  mask: np.ndarray | None = None) -> Action:
    """Return the reward-maximizing valid action for the true state (exhaustive search)."""
    latency = latency or LatencyModel(profile)
    lat = latency.table(true_state)
    r = reward.reward(latency.accuracy, lat, deadline_ms)
    m = np.ones(len(latency.actions), bool) if mask is None else mask
    return latency.actions[int(masked_argmax(r, m))]


# --------------------------------------------------------------------------- environment


@dataclass
class EnvConfig:
    """Simulation settings (config/sacd_train.yaml, section ``env``)."""

    dt_s: float = 0.1
    episode_steps: int = 100
    obs_lag_steps: int = 1
    obs_ewma: float = 0.5
    obs_noise: float = 0.1
    load_noise: float = 0.03
    deadlines_ms: list[float] = field(default_factory=list)
    allowed_exits: list[int] | None = None
    allowed_bits: list[int] | None = None
    latency: LatencySettings = field(default_factory=LatencySettings)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'EnvConfig':
        """Build from a (YAML) dictionary; unknown keys are an error."""
        d = dict(d)
        lat = LatencySettings(**d.pop('latency', {}))
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f'unknown env settings {sorted(unknown)}')
        return cls(latency=lat, **d)

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
    """Traces concatenated into flat arrays, with every action's true latency precomputed."""

    def __init__(self, traces: Sequence[Trace], latency: LatencyModel) -> None:
        if not traces:
            raise ValueError('no traces')
        self.traces = list(traces)
        self.lengths = np.array([len(t) for t in traces])
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.bw = np.concatenate([t.bandwidth_mbps for t in traces])
        self.rtt = np.concatenate([t.rtt_ms for t in traces])
        self.dev = np.concatenate([t.device_load for t in traces])
        self.edge = np.concatenate([t.edge_load for t in traces])
        self.latency = latency.table(SystemState(self.bw, self.rtt, self.dev, self.edge)).astype(np.float32)

    def true_state(self, idx: np.ndarray) -> SystemState:
        """Return the true state at flat indices ``idx``."""
        return SystemState(self.bw[idx], self.rtt[idx], self.dev[idx], self.edge[idx])


class _Estimator:
    """Measured state of N environments: EWMA of lagged, noisy samples (what a monitor node reports)."""

    def __init__(self, cfg: EnvConfig, n: int) -> None:
        self.cfg = cfg
        self.values = np.zeros((4, n))

    def sample(self, bank: TraceBank, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg = self.cfg
        s = bank.true_state(idx)
        rel = np.exp(cfg.obs_noise * rng.standard_normal((2, len(idx))))
        loads = np.clip(np.stack([s.device_load, s.edge_load]) + cfg.load_noise
                        * rng.standard_normal((2, len(idx))), 0.0, 1.0)
        return np.concatenate([np.stack([s.bandwidth_mbps, s.rtt_ms]) * rel, loads])

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
        return build_states(m.bandwidth_mbps, m.rtt_ms, m.device_load, m.edge_load, self.recent_latency,
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


# --------------------------------------------------------------------------- evaluation rollouts


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
        view = StepView(build_states(m.bandwidth_mbps, m.rtt_ms, m.device_load, m.edge_load, recent, deadline,
                                     prev, n_act),
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
