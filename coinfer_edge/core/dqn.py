# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""DQN baseline (CleanRL ``dqn.py`` style) with the same budget as SAC-d.

Same MLP size, replay buffer, warm-up, batch size, discount, Polyak target and number of
transitions as :class:`coinfer_edge.core.sac.SACConfig`; exploration is epsilon-greedy over the
*allowed* actions and the greedy action is the masked ``argmax Q``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from coinfer_device.core.config import strict_from_dict
from coinfer_edge.core.sac import (EvalFn, LogFn, MASKED_LOGIT, ReplayBuffer, SACConfig, SoftQNetwork, VecEnv,
                                   linear_weights, run_training)


@dataclass
class DQNConfig:
    """DQN hyperparameters; the budget fields default to SAC-d's (config section ``dqn``)."""

    total_steps: int = 120_000
    n_envs: int = 8
    buffer_size: int = 100_000
    gamma: float = 0.2
    tau: float = 0.01
    batch_size: int = 256
    learning_starts: int = 4_000
    updates_per_step: int = 1
    q_lr: float = 3e-4
    hidden: int = 128
    layers: int = 2
    start_epsilon: float = 1.0
    end_epsilon: float = 0.05
    exploration_fraction: float = 0.5  # fraction of total_steps over which epsilon decays linearly

    @classmethod
    def from_sac(cls, sac: SACConfig, **overrides: Any) -> 'DQNConfig':
        """Return a DQN config with SAC-d's budget (steps, envs, buffer, batch, net size, lr, gamma, tau)."""
        shared = {f.name for f in fields(cls)} & set(asdict(sac))
        kw = {k: getattr(sac, k) for k in shared}
        kw.update(overrides)
        return strict_from_dict(cls, kw, 'DQN')

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'DQNConfig':
        """Build from a dictionary; unknown keys are an error."""
        return strict_from_dict(cls, d, 'DQN')

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dictionary."""
        return asdict(self)


def td_loss(q_network: SoftQNetwork, target_network: SoftQNetwork, batch: dict[str, torch.Tensor],
            gamma: float) -> torch.Tensor:
    """Return the TD error ``(Q(s, a) - (r + gamma max_{a' allowed} Q'(s', a')))^2``."""
    with torch.no_grad():
        next_q = target_network(batch['next_obs']).masked_fill(~batch['next_masks'], MASKED_LOGIT)
        target = batch['rewards'] + gamma * (1.0 - batch['dones']) * next_q.max(-1).values
    q = q_network(batch['obs']).gather(1, batch['actions'].unsqueeze(1)).squeeze(1)
    return F.mse_loss(q, target)


class DQNAgent:
    """Q network, target network and optimizer."""

    def __init__(self, state_dim: int, n_actions: int, cfg: DQNConfig, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.cfg = cfg
        self.n_actions = n_actions
        self.q_network = SoftQNetwork(state_dim, n_actions, cfg.hidden, cfg.layers)
        self.target_network = SoftQNetwork(state_dim, n_actions, cfg.hidden, cfg.layers)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=cfg.q_lr)
        self.rng = np.random.default_rng(seed)

    def epsilon(self, step: int) -> float:
        """Return the linearly decayed exploration rate at ``step``."""
        c = self.cfg
        span = max(1.0, c.exploration_fraction * c.total_steps)
        return max(c.end_epsilon, c.start_epsilon + (c.end_epsilon - c.start_epsilon) * step / span)

    def act(self, obs: np.ndarray, mask: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
        """Epsilon-greedy over allowed actions (``epsilon=0``: greedy)."""
        with torch.no_grad():
            q = self.q_network(torch.from_numpy(np.asarray(obs, np.float32))).numpy()
        greedy = np.argmax(np.where(mask, q, -np.inf), axis=-1)
        explore = self.rng.random(len(obs)) < epsilon
        random = self.rng.choice(np.nonzero(mask)[0], size=len(obs))
        return np.where(explore, random, greedy)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step on the Q network and a Polyak step on the target."""
        loss = td_loss(self.q_network, self.target_network, batch, self.cfg.gamma)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            for p, tp in zip(self.q_network.parameters(), self.target_network.parameters()):
                tp.mul_(1.0 - self.cfg.tau).add_(self.cfg.tau * p)
        return {'q_loss': loss.item()}

    def policy_weights(self) -> dict[str, torch.Tensor]:
        """Return the Q network's layers as plain tensors (greedy policy = masked argmax)."""
        return linear_weights(self.q_network.net)


def train_dqn(env: VecEnv, cfg: DQNConfig, seed: int = 0, evaluate: EvalFn | None = None,
              eval_every: int = 10_000, log: LogFn | None = None, progress: bool = False) -> DQNAgent:
    """Train DQN for ``cfg.total_steps`` transitions (same loop as SAC-d)."""
    agent = DQNAgent(env.state_dim, env.n_actions, cfg, seed)
    rb = ReplayBuffer(cfg.buffer_size, env.state_dim, env.n_actions, seed)
    return run_training(env, agent, rb, cfg.total_steps, cfg.learning_starts, cfg.batch_size, cfg.updates_per_step,
                        lambda obs, step: agent.act(obs, env.mask, agent.epsilon(step)), evaluate, eval_every, log,
                        progress, lambda obs, mask: agent.act(obs, mask, 0.0), seed)
