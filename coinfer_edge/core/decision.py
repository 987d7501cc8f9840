# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The split-decision problem: state, reward, latency model, oracle and the deciders the policy node runs.

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
- **State** (:func:`build_state`): normalized measured bandwidth, RTT, device and edge CPU load,
  the last measured latency relative to the deadline, the deadline and a one-hot of the previous
  action.  The simulator (:mod:`coinfer_edge.core.simulator`) feeds it *measured* values (lagged,
  EWMA-smoothed, noisy) while latency and reward use the *true* current state; the oracle sees the
  true state.
- **Deciders** (:class:`SplitPolicy`): what the policy node runs.  Each takes an
  :class:`Observation` (the measured scalars) and returns an :class:`Action`: the trained policy
  (:class:`coinfer_edge.core.policy.TrainedPolicy`, from :func:`build_state` of the observation)
  or :class:`RuleDecider` (the oracle's exhaustive search on the measured state).

Everything here is numpy; no torch, no rclpy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Protocol, Sequence

import numpy as np

from coinfer_device.core.action import Action
from coinfer_device.core.config import strict_from_dict
from coinfer_device.core.profile import Profile

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
        return strict_from_dict(cls, d, 'reward', {k: float for k in d})


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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'LatencySettings':
        """Build from a dictionary (unknown keys are an error)."""
        return strict_from_dict(cls, d, 'latency')

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


# --------------------------------------------------------------------------- deciders


@dataclass(frozen=True)
class Observation:
    """What a decider sees at one decision: the measured link and CPU state and its own recent past.

    ``recent_latency_ms`` is the latency of the newest result (``None`` = none yet);
    ``prev_index`` the index of the previous decision in the decider's action table (``None`` = none).
    """

    bandwidth_mbps: float
    rtt_ms: float
    device_load: float
    edge_load: float
    recent_latency_ms: float | None
    deadline_ms: float
    prev_index: int | None = None

    def system_state(self) -> SystemState:
        """Return the measured link and CPU state."""
        return SystemState(self.bandwidth_mbps, self.rtt_ms, self.device_load, self.edge_load)

    def state_vector(self, n_actions: int) -> np.ndarray:
        """Return the normalized policy state (:func:`build_state`) for an action table of ``n_actions``."""
        return build_state(self.bandwidth_mbps, self.rtt_ms, self.device_load, self.edge_load, self.recent_latency_ms,
                           self.deadline_ms, self.prev_index, n_actions)


class SplitPolicy(Protocol):
    """What the policy node needs from a decider (trained policy or rule)."""

    actions: tuple[Action, ...]
    mask: np.ndarray
    reward_config: RewardConfig

    def index_of(self, action: Action) -> int:
        """Return the index of ``action`` in :attr:`actions`."""

    def act(self, observation: Observation, mask: np.ndarray | None = None) -> Action:
        """Return the allowed action for ``observation`` (``mask`` further restricts the allowed set)."""


class RuleDecider:
    """Model-based rule: the oracle's exhaustive search (:func:`oracle_action`) on the *measured* state."""

    def __init__(self, profile: Profile, reward_config: RewardConfig, settings: LatencySettings | None = None,
                 mask: np.ndarray | None = None) -> None:
        self.profile = profile
        self.reward_config = reward_config
        self.latency = LatencyModel(profile, settings)
        self.actions = self.latency.actions
        self.mask = np.ones(len(self.actions), bool) if mask is None else np.asarray(mask, bool)
        if len(self.mask) != len(self.actions) or not self.mask.any():
            raise ValueError(f'mask must allow at least one of the {len(self.actions)} actions')

    def index_of(self, action: Action) -> int:
        """Return the index of ``action`` in :attr:`actions`."""
        return self.latency.index[action]

    def act(self, observation: Observation, mask: np.ndarray | None = None) -> Action:
        """Return the reward-maximizing allowed action for the measured state and deadline of ``observation``."""
        m = self.mask if mask is None else self.mask & np.asarray(mask, bool)
        if not m.any():
            raise ValueError('mask excludes every action')
        return oracle_action(self.profile, observation.system_state(), self.reward_config, self.latency,
                             observation.deadline_ms, m)
