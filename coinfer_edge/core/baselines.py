# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Baseline decision rules, each a :data:`coinfer_edge.core.simulator.Decider` (StepView -> action indices).

Rules that need a latency estimate use the *measured* state (what a deployed rule sees) and the same
:class:`~coinfer_edge.core.decision.LatencyModel` as the environment; only the oracle
(:func:`coinfer_edge.core.simulator.oracle_decider`) sees the true state.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from coinfer_device.core.action import LOCAL_BITS, Action
from coinfer_device.core.profile import Profile
from coinfer_edge.core.decision import (EdgentRule, LatencyModel, RewardConfig, action_mask, float_candidates,
                                        masked_argmax)
from coinfer_edge.core.simulator import Decider, EnvConfig, StepView, TraceBank
from coinfer_edge.core.traces import Trace

RAW_INPUT_BITS = 8  # an 8-bit camera image sent as it is


def fixed(index: int) -> Decider:
    """Return a rule that always picks action ``index``."""
    def decide(v: StepView) -> np.ndarray:
        return np.full(len(v.deadline_ms), index)
    return decide


def device_only_index(latency: LatencyModel) -> int:
    """Return the index of the final exit run entirely on the device."""
    last = len(latency.profile.branch_points) - 1
    return latency.index[Action(last, latency.profile.branch_points[last], LOCAL_BITS)]


def edge_only_index(latency: LatencyModel) -> int:
    """Return the index of "send the raw input": final exit, partition 0 at 8 bits."""
    last = len(latency.profile.branch_points) - 1
    return latency.index[Action(last, 0, RAW_INPUT_BITS)]


def best_fixed_index(profile: Profile, traces: Sequence[Trace], reward: RewardConfig, cfg: EnvConfig) -> int:
    """Return the allowed action with the best mean reward over ``traces`` (the training traces)."""
    latency = LatencyModel(profile, cfg.latency)
    bank = TraceBank(traces, latency)
    mask = action_mask(latency.actions, cfg.allowed_exits, cfg.allowed_bits)
    deadlines = cfg.deadlines_ms or [reward.deadline_ms]
    mean = np.mean([reward.reward(latency.accuracy, bank.latency, d).mean(axis=0) for d in deadlines], axis=0)
    return int(masked_argmax(mean, mask))


def random_rule(seed: int = 0) -> Decider:
    """Return a rule that picks uniformly among allowed actions."""
    rng = np.random.default_rng(seed)

    def decide(v: StepView) -> np.ndarray:
        return rng.choice(np.nonzero(v.mask)[0], size=len(v.deadline_ms))
    return decide


def neurosurgeon(latency: LatencyModel) -> Decider:
    """Neurosurgeon-style: final exit, float32 features, the partition of least *predicted* latency."""
    last = len(latency.profile.branch_points) - 1
    cand = float_candidates(latency, [last])

    def decide(v: StepView) -> np.ndarray:
        predicted = latency.table(v.measured)
        return masked_argmax(-predicted, cand & v.mask)
    return decide


def edgent(latency: LatencyModel) -> Decider:
    """Edgent-style rule on the measured state (:class:`coinfer_edge.core.decision.EdgentRule`)."""
    rule = EdgentRule(latency)

    def decide(v: StepView) -> np.ndarray:
        return rule.indices(latency.table(v.measured), v.deadline_ms, v.mask)
    return decide


def greedy_measured(latency: LatencyModel, reward: RewardConfig) -> Decider:
    """Model-based reference: the oracle's search, but on the *measured* state (what a policy sees)."""
    def decide(v: StepView) -> np.ndarray:
        r = reward.reward(latency.accuracy, latency.table(v.measured), v.deadline_ms[:, None])
        return masked_argmax(r, v.mask)
    return decide
