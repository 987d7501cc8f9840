# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The split-decision problem: state, reward, latency model, oracle and the deciders the policy node runs.

Formulation (docs/policy.md has the full text):

- **Action**: one valid ``(exit, partition, bits)`` of ``profile.actions()``; an optional mask
  (allowed exits / bits from the config) restricts it further.
- **Latency** of action ``a`` in system state ``s`` (all in ms)::

      device_compute_ms(a) * device_slowdown * device_contention + device_overhead_ms
      + [not local] * (payload_bits(a) / bandwidth + rtt
                       + edge_compute_ms(a) * edge_slowdown * edge_contention + remote_overhead_ms)

  ``device_compute_ms`` / ``edge_compute_ms`` are the profile's per-frame figures (compute run once
  per camera period, :meth:`~coinfer_device.core.profile.Profile.device_compute_ms`);
  ``device_slowdown`` / ``edge_slowdown`` the nominal factor of each host against the profiling
  machine; the *contention* the measured compute slowdown beyond it (1 = as profiled; the nodes
  publish it on ``coinfer/<side>/compute_slowdown``); the two overheads the per-frame framework
  cost measured on the running graph (image conversion, publication, DDS, executors, the answer).
- **Reward**: ``accuracy(a) - latency_weight * min(latency / deadline, 1) - miss_penalty * [late]
  - late_weight * log(max(latency / deadline, 1))``: strictly decreasing in latency, also past the
  deadline, where a faster late answer is always worth more than a more accurate one.
- **State** (:func:`build_state`): normalized measured bandwidth, RTT, device and edge compute
  contention, the last measured latency relative to the deadline, the deadline and a one-hot of the
  previous action.  The simulator (:mod:`coinfer_edge.core.simulator`) feeds it *measured* values (lagged,
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

from coinfer_device.core.action import FLOAT32_BITS, LOCAL_BITS, Action
from coinfer_device.core.config import strict_from_dict
from coinfer_device.core.profile import Profile

# --------------------------------------------------------------------------- state

BANDWIDTH_SCALE_MBPS = 100.0
RTT_SCALE_MS = 1000.0
DEADLINE_SCALE_MS = 1000.0
LATENCY_RATIO_CLIP = 4.0
MAX_CONTENTION = 10.0
N_STATE_SCALARS = 6
STATE_FEATURES = ('log1p(min(bandwidth_mbps, 100))/log1p(100)', 'log1p(min(rtt_ms, 1000))/log1p(1000)',
                  'log(clip(device_contention, 1, 10))/log(10)', 'log(clip(edge_contention, 1, 10))/log(10)',
                  'clip(recent_latency_ms/deadline_ms, 0, 4)/4 (0 = none yet)',
                  'log1p(min(deadline_ms, 1000))/log1p(1000)', 'one-hot(prev_action_index) (all 0 = none)')


def state_dim(n_actions: int) -> int:
    """Return the length of the state vector for an action table of ``n_actions``."""
    return N_STATE_SCALARS + n_actions


def _contention_feature(contention: Any) -> np.ndarray:
    return np.log(np.clip(np.asarray(contention, dtype=np.float64), 1.0, MAX_CONTENTION)) / math.log(MAX_CONTENTION)


def build_states(bandwidth_mbps: Any, rtt_ms: Any, device_contention: Any, edge_contention: Any,
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
    out[:, 2] = _contention_feature(device_contention)
    out[:, 3] = _contention_feature(edge_contention)
    out[:, 4] = np.clip(np.maximum(recent, 0.0) / deadline, 0.0, LATENCY_RATIO_CLIP) / LATENCY_RATIO_CLIP
    out[:, 5] = np.log1p(np.minimum(deadline, DEADLINE_SCALE_MS)) / math.log1p(DEADLINE_SCALE_MS)
    valid = (prev >= 0) & (prev < n_actions)
    out[np.nonzero(valid)[0], N_STATE_SCALARS + prev[valid]] = 1.0
    return out


def build_state(bandwidth_mbps: float, rtt_ms: float, device_contention: float, edge_contention: float,
                recent_latency_ms: float | None, deadline_ms: float, prev_action_index: int | None,
                n_actions: int) -> np.ndarray:
    """Return the normalized policy state (float32 vector of length ``6 + n_actions``).

    Inputs are what the policy node measures: bandwidth estimate (Mbit/s), RTT estimate (ms), device
    and edge compute contention (measured compute slowdown / the nominal one; 1 = as profiled), the
    latency of the most recent result (ms; ``None``/``0`` = none yet), the deadline (ms) and the index
    of the previous action in the action table (``None``/``-1`` = none).  Features, in order (see
    :data:`STATE_FEATURES`), each in [0, 1]: ``log1p(min(bw, 100))/log1p(100)``,
    ``log1p(min(rtt, 1000))/log1p(1000)``, device and edge contention as ``log(clip(c, 1, 10))/log(10)``,
    ``clip(recent/deadline, 0, 4)/4``, ``log1p(min(deadline, 1000))/log1p(1000)``, one-hot previous action.
    """
    recent = 0.0 if recent_latency_ms is None else recent_latency_ms
    prev = -1 if prev_action_index is None else prev_action_index
    return build_states([bandwidth_mbps], [rtt_ms], [device_contention], [edge_contention], [recent], [deadline_ms],
                        [prev], n_actions)[0]


# --------------------------------------------------------------------------- reward and latency


@dataclass
class RewardConfig:
    """Reward coefficients (module docstring; docs/policy.md argues the defaults for a 10 Hz camera).

    ``accuracy - latency_weight * min(x, 1) - miss_penalty * [x > 1] - late_weight * log(max(x, 1))``
    with ``x = latency / deadline``.
    """

    deadline_ms: float = 100.0
    latency_weight: float = 0.05
    miss_penalty: float = 0.5
    late_weight: float = 0.25

    def __post_init__(self) -> None:
        """Refuse coefficients that would break the reward's monotonicity."""
        if not self.deadline_ms > 0:
            raise ValueError(f'reward.deadline_ms must be > 0, got {self.deadline_ms}')
        for name in ('latency_weight', 'miss_penalty', 'late_weight'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'reward.{name} must be >= 0, got {getattr(self, name)}')

    def reward(self, accuracy: Any, latency_ms: Any, deadline_ms: Any = None) -> np.ndarray:
        """Return the reward of accuracy and latency arrays (broadcasting; default deadline = the config's)."""
        deadline = self.deadline_ms if deadline_ms is None else deadline_ms
        ratio = np.asarray(latency_ms, dtype=np.float64) / deadline
        return (np.asarray(accuracy) - self.latency_weight * np.minimum(ratio, 1.0)
                - self.miss_penalty * (ratio > 1.0) - self.late_weight * np.log(np.maximum(ratio, 1.0)))

    def to_dict(self) -> dict[str, float]:
        """Return a JSON-friendly dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'RewardConfig':
        """Build from a dictionary (unknown keys are an error)."""
        return strict_from_dict(cls, d, 'reward', {k: float for k in d})


@dataclass(frozen=True)
class SystemState:
    """Link and compute state (true or measured); fields may be scalars or equally shaped arrays.

    The contentions are compute slowdowns beyond the nominal one of the host (1 = as profiled).
    """

    bandwidth_mbps: Any
    rtt_ms: Any
    device_contention: Any
    edge_contention: Any


@dataclass
class LatencySettings:
    """Parameters of the latency model that are not in the profile (docs/policy.md).

    ``device_slowdown`` / ``edge_slowdown``: each host's nominal compute time over the profile's;
    ``device_overhead_ms``: per-frame device work outside the model and codec (image conversion,
    bookkeeping); ``remote_overhead_ms``: per-frame framework cost of a sent frame (publication, DDS,
    executors, the answer), both measured on the running graph; contention is clipped to
    [``min_contention``, ``max_contention``].
    """

    device_slowdown: float = 6.0
    edge_slowdown: float = 1.0
    device_overhead_ms: float = 0.0
    remote_overhead_ms: float = 0.0
    min_contention: float = 0.5
    max_contention: float = MAX_CONTENTION
    min_bandwidth_mbps: float = 0.01

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'LatencySettings':
        """Build from a dictionary (unknown keys are an error)."""
        return strict_from_dict(cls, d, 'latency')

    def to_dict(self) -> dict[str, float]:
        """Return a JSON-friendly dictionary."""
        return asdict(self)


def cpu_factor(load: Any, max_load: float = 0.9) -> np.ndarray:
    """Return the contention ``1 / (1 - min(load, max_load))`` of a CPU-bound task beside a CPU load in [0, 1].

    Processor sharing: a task that shares a CPU with background work of utilisation ``u`` gets the
    idle share ``1 - u``.  The traces describe CPU contention as such a background load.
    """
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
        dev_c, edge_c = (np.clip(np.asarray(c, dtype=np.float64), s.min_contention, s.max_contention)[..., None]
                         for c in (state.device_contention, state.edge_contention))
        dev = self.device_ms * s.device_slowdown * dev_c + s.device_overhead_ms
        edge = self.edge_ms * s.edge_slowdown * edge_c
        # Mbit/s = 1e3 bit/ms, so bits / (bw * 1e3) is in ms.
        remote = self.payload_bits / (bw * 1e3) + rtt + edge + s.remote_overhead_ms
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


def float_candidates(latency: LatencyModel, exits: Sequence[int] | None = None) -> np.ndarray:
    """Return the mask of the float32-or-local actions of ``exits`` (default all): Neurosurgeon's and Edgent's set."""
    exits_set = set(range(len(latency.profile.branch_points)) if exits is None else exits)
    return np.array([a.exit in exits_set and a.bits in (FLOAT32_BITS, LOCAL_BITS) for a in latency.actions])


class EdgentRule:
    """Edgent-style choice: the most accurate exit whose best float32 partition meets the deadline.

    For each exit (most accurate first) take the partition of least predicted latency (float32 or
    local); choose the first exit whose prediction is within the deadline, else the fastest of all.
    The candidate sets and the exit order depend only on the profile, so they are built once.
    """

    def __init__(self, latency: LatencyModel) -> None:
        n_exits = len(latency.profile.branch_points)
        self.per_exit = [float_candidates(latency, [e]) for e in range(n_exits)]
        self.order = sorted(range(n_exits), key=lambda e: -latency.accuracy[self.per_exit[e]].max())
        self.all_float = float_candidates(latency)

    def indices(self, predicted: np.ndarray, deadline_ms: Any, mask: np.ndarray) -> np.ndarray:
        """Return the choice per row of ``predicted`` [N, A], the latency predicted from the measured state."""
        choice = masked_argmax(-predicted, self.all_float & mask)
        decided = np.zeros(len(choice), bool)
        deadline = np.broadcast_to(np.asarray(deadline_ms, dtype=np.float64), decided.shape)
        for e in self.order:
            m = self.per_exit[e] & mask
            if not m.any():
                continue
            best = masked_argmax(-predicted, m)
            ok = ~decided & (predicted[np.arange(len(best)), best] <= deadline)
            choice = np.where(ok, best, choice)
            decided |= ok
        return choice


# --------------------------------------------------------------------------- deciders


@dataclass(frozen=True)
class Observation:
    """What a decider sees at one decision: the measured link and CPU state and its own recent past.

    ``recent_latency_ms`` is the latency of the newest result (``None`` = none yet);
    ``prev_index`` the index of the previous decision in the decider's action table (``None`` = none).
    """

    bandwidth_mbps: float
    rtt_ms: float
    device_contention: float
    edge_contention: float
    recent_latency_ms: float | None
    deadline_ms: float
    prev_index: int | None = None

    def system_state(self) -> SystemState:
        """Return the measured link and compute state."""
        return SystemState(self.bandwidth_mbps, self.rtt_ms, self.device_contention, self.edge_contention)

    def state_vector(self, n_actions: int) -> np.ndarray:
        """Return the normalized policy state (:func:`build_state`) for an action table of ``n_actions``."""
        return build_state(self.bandwidth_mbps, self.rtt_ms, self.device_contention, self.edge_contention,
                           self.recent_latency_ms,
                           self.deadline_ms, self.prev_index, n_actions)


class SplitPolicy(Protocol):
    """What the policy node needs from a decider (trained policy or rule)."""

    actions: tuple[Action, ...]
    mask: np.ndarray
    reward_config: RewardConfig
    latency_settings: LatencySettings

    def index_of(self, action: Action) -> int:
        """Return the index of ``action`` in :attr:`actions`."""

    def act(self, observation: Observation, mask: np.ndarray | None = None) -> Action:
        """Return the allowed action for ``observation`` (``mask`` further restricts the allowed set)."""


class _ProfileDecider:
    """Shared parts of the rules that need no training: action table, mask, reward and latency model."""

    def __init__(self, profile: Profile, reward_config: RewardConfig, settings: LatencySettings | None = None,
                 mask: np.ndarray | None = None) -> None:
        self.profile = profile
        self.reward_config = reward_config
        self.latency = LatencyModel(profile, settings)
        self.latency_settings = self.latency.settings
        self.actions = self.latency.actions
        self.mask = np.ones(len(self.actions), bool) if mask is None else np.asarray(mask, bool)
        if len(self.mask) != len(self.actions) or not self.mask.any():
            raise ValueError(f'mask must allow at least one of the {len(self.actions)} actions')

    def index_of(self, action: Action) -> int:
        """Return the index of ``action`` in :attr:`actions`."""
        return self.latency.index[action]

    def _allowed(self, mask: np.ndarray | None) -> np.ndarray:
        m = self.mask if mask is None else self.mask & np.asarray(mask, bool)
        if not m.any():
            raise ValueError('mask excludes every action')
        return m


class RuleDecider(_ProfileDecider):
    """Model-based rule: the oracle's exhaustive search (:func:`oracle_action`) on the *measured* state."""

    def act(self, observation: Observation, mask: np.ndarray | None = None) -> Action:
        """Return the reward-maximizing allowed action for the measured state and deadline of ``observation``."""
        return oracle_action(self.profile, observation.system_state(), self.reward_config, self.latency,
                             observation.deadline_ms, self._allowed(mask))


class FixedDecider(_ProfileDecider):
    """Always the same action (a fixed split: a baseline of the live comparison)."""

    def __init__(self, profile: Profile, action: Action, reward_config: RewardConfig,
                 settings: LatencySettings | None = None) -> None:
        super().__init__(profile, reward_config, settings)
        if action not in self.latency.index:
            raise ValueError(f'{action.label()} is not an action of the profile '
                             f'(branch points {profile.branch_points}, bits {profile.bits_choices})')
        self.action = action

    def act(self, observation: Observation, mask: np.ndarray | None = None) -> Action:
        """Return the fixed action (a ``mask`` that excludes it is an error: a fixed split has no second choice)."""
        if not self._allowed(mask)[self.latency.index[self.action]]:
            raise ValueError(f'mask excludes the fixed action {self.action.label()}')
        return self.action


class EdgentDecider(_ProfileDecider):
    """Edgent-style rule (:class:`EdgentRule`) on the measured state of each observation."""

    def __init__(self, profile: Profile, reward_config: RewardConfig, settings: LatencySettings | None = None,
                 mask: np.ndarray | None = None) -> None:
        super().__init__(profile, reward_config, settings, mask)
        self.rule = EdgentRule(self.latency)

    def act(self, observation: Observation, mask: np.ndarray | None = None) -> Action:
        """Return the Edgent-style choice for the measured state and deadline of ``observation``."""
        predicted = self.latency.table(observation.system_state())[None, :]
        index = self.rule.indices(predicted, [observation.deadline_ms], self._allowed(mask))
        return self.actions[int(index[0])]


class NeurosurgeonDecider(_ProfileDecider):
    """Neurosurgeon-style rule: the final exit, float32 features or local, the least *predicted* latency."""

    def __init__(self, profile: Profile, reward_config: RewardConfig, settings: LatencySettings | None = None,
                 mask: np.ndarray | None = None) -> None:
        super().__init__(profile, reward_config, settings, mask)
        self.candidates = float_candidates(self.latency, [len(profile.branch_points) - 1])

    def act(self, observation: Observation, mask: np.ndarray | None = None) -> Action:
        """Return the final-exit float32 split (or local run) of least predicted latency in the measured state."""
        predicted = self.latency.table(observation.system_state())
        allowed = self.candidates & self._allowed(mask)
        if not allowed.any():
            raise ValueError('mask excludes every final-exit float32 or local action')
        return self.actions[int(masked_argmax(-predicted, allowed))]
