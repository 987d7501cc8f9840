# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Recorded bags as inputs of the policy tools: traces to train or evaluate on, transitions to replay, weights.

Used by ``coinfer-train-policy`` (``--traces-from``, ``--replay-from``, ``--fine-tune``),
``coinfer-evaluate-policy`` (``--traces-from``) and ``coinfer-update-policy`` (``--held-out``).
Errors are :class:`~coinfer_device.core.bags.BagError` or :class:`~coinfer_edge.core.recorded.ExtractError`
with the bag and the problem in the message; the tools print them as one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from coinfer_device.core.profile import Profile
from coinfer_device.core.recording import load_recording
from coinfer_edge.core.decision import LatencySettings, RewardConfig
from coinfer_edge.core.policy import TrainedPolicy
from coinfer_edge.core.recorded import Transition, read_transitions, replay_arrays, trace_of, transitions_of
from coinfer_edge.core.sac import ReplayBuffer, SACAgent
from coinfer_edge.core.traces import Trace


def traces_from_bags(paths: Sequence[Path | str], dt_s: float, nominal: LatencySettings | None = None) -> list[Trace]:
    """Return one trace per bag and namespace (the measured conditions, see :func:`trace_of`)."""
    out = []
    for path in paths:
        rec = load_recording(path)
        out += [trace_of(rec, ns, dt_s, nominal) for ns in sorted(rec.streams)]
    return out


def transitions_from(paths: Sequence[Path | str], profile: Profile, reward: RewardConfig) -> list[Transition]:
    """Return the logged transitions of bags and/or ``transitions.csv`` files (from ``coinfer-bag-extract``)."""
    out: list[Transition] = []
    for path in map(Path, paths):
        if path.is_file() and path.suffix == '.csv':
            out += read_transitions(path)
            continue
        rec = load_recording(path)
        for ns in sorted(rec.streams):
            out += transitions_of(rec, ns, profile, reward).transitions
    return out


def seed_replay(buffer: ReplayBuffer, transitions: Sequence[Transition], actions: Sequence[Any],
                mask: np.ndarray, reward: RewardConfig, profile: Profile,
                latency: LatencySettings | None = None) -> int:
    """Add the logged transitions whose action is allowed to ``buffer``; return how many were added.

    They are stored like the simulator's own: ``done`` = 0 (a decision never ends the problem).
    """
    arrays = replay_arrays(transitions, actions, reward, profile, latency)
    keep = mask[arrays['actions']]
    n = int(keep.sum())
    if n:
        masks = np.broadcast_to(mask, (n, len(mask)))
        buffer.add(arrays['obs'][keep], arrays['actions'][keep], arrays['rewards'][keep], arrays['next_obs'][keep],
                   np.zeros(n, np.float32), masks, masks)
    return n


def load_actor(agent: SACAgent, policy: TrainedPolicy) -> None:
    """Start ``agent``'s actor from ``policy``'s weights (same layer sizes required)."""
    linears = [m for m in agent.actor.net if isinstance(m, torch.nn.Linear)]
    shapes = [tuple(w.shape) for w, _ in policy.layers]
    if [tuple(m.weight.shape) for m in linears] != shapes:
        raise ValueError(f'{policy.path}: layers {shapes} do not fit the configured network '
                         f'{[tuple(m.weight.shape) for m in linears]} (sac.hidden / sac.layers)')
    with torch.no_grad():
        for m, (w, b) in zip(linears, policy.layers):
            m.weight.copy_(torch.from_numpy(w))
            m.bias.copy_(torch.from_numpy(b))
