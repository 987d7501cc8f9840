# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Discrete Soft Actor-Critic (SAC-d, Christodoulou 2019) in the style of CleanRL's ``sac_atari.py``.

- twin soft Q critics with Polyak-averaged target copies;
- a categorical actor; the actor, critic and temperature losses take the *exact* expectation over
  the policy's action distribution instead of sampling;
- automatic temperature: ``alpha`` is tuned so the policy entropy tracks
  ``target_entropy_scale * log(number of allowed actions)``; or a fixed ``alpha``;
- masked logits: disallowed actions get a large negative logit, so their probability is exactly 0
  and they are never sampled nor chosen greedily;
- a numpy replay buffer and uniform-random warm-up steps.

The environment only needs ``reset() -> states``, ``step(actions) -> (states, rewards, dones, info)``
(``info['final_state']`` = true next state of episodes that were just restarted), ``mask`` (bool per
action), ``n_actions``, ``state_dim`` and ``n_envs``; see :class:`coinfer_edge.core.simulator.CoInferenceEnv`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coinfer_device.core.config import strict_from_dict

MASKED_LOGIT = -1e9


class VecEnv(Protocol):
    """What the training loops need from an environment."""

    n_envs: int
    n_actions: int
    state_dim: int
    mask: np.ndarray

    def reset(self) -> np.ndarray:
        """Return the first states [N, D]."""

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Apply actions; return next states, rewards, dones, info."""


@dataclass
class SACConfig:
    """SAC-d hyperparameters (config/sacd_train.yaml section ``sac``; CLI overrides a few)."""

    total_steps: int = 120_000        # environment transitions (all parallel envs together)
    n_envs: int = 8                   # parallel episodes
    buffer_size: int = 100_000        # replay capacity in transitions
    gamma: float = 0.2                # discount: the link does not depend on actions, so horizons are short
    tau: float = 0.01                 # Polyak factor of the target critics per update
    batch_size: int = 256
    learning_starts: int = 4_000      # uniform-random transitions before learning starts
    updates_per_step: int = 1         # gradient steps per vector-env step (= per n_envs transitions)
    policy_lr: float = 3e-4
    q_lr: float = 3e-4
    hidden: int = 128                 # width of every hidden layer (actor and critics)
    layers: int = 2                   # hidden layers
    autotune: bool = True             # tune alpha automatically
    alpha: float = 0.02               # fixed alpha (autotune=False) or initial alpha (autotune=True)
    target_entropy_scale: float = 0.3  # target entropy = scale * log(#allowed actions)
    alpha_lr: float = 3e-4

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'SACConfig':
        """Build from a dictionary; unknown keys are an error."""
        return strict_from_dict(cls, d, 'SAC')

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dictionary."""
        return asdict(self)


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """Return ``Linear-ReLU`` x layers followed by a final ``Linear`` (the policy file's layout)."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def linear_weights(net: nn.Sequential) -> dict[str, torch.Tensor]:
    """Return the Linear layers of ``net`` as ``{'layers.i.weight', 'layers.i.bias'}`` plain tensors."""
    out = {}
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for i, m in enumerate(linears):
        out[f'layers.{i}.weight'] = m.weight.detach().clone().contiguous()
        out[f'layers.{i}.bias'] = m.bias.detach().clone().contiguous()
    return out


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace logits of disallowed actions by a large negative constant."""
    return logits.masked_fill(~mask, MASKED_LOGIT)


class ReplayBuffer:
    """Uniform replay of ``(s, a, r, s', done, mask')`` in preallocated numpy arrays."""

    def __init__(self, capacity: int, state_dim: int, n_actions: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, state_dim), np.float32)
        self.next_obs = np.zeros((capacity, state_dim), np.float32)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.masks = np.zeros((capacity, n_actions), bool)
        self.next_masks = np.zeros((capacity, n_actions), bool)
        self.pos = 0
        self.full = False
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.capacity if self.full else self.pos

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            dones: np.ndarray, masks: np.ndarray, next_masks: np.ndarray) -> None:
        """Add a batch of transitions (one per parallel env)."""
        n = len(actions)
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx], self.next_obs[idx] = obs, next_obs
        self.actions[idx], self.rewards[idx], self.dones[idx] = actions, rewards, dones
        self.masks[idx], self.next_masks[idx] = masks, next_masks
        self.full = self.full or self.pos + n >= self.capacity
        self.pos = int((self.pos + n) % self.capacity)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Return a random batch as tensors."""
        idx = self.rng.integers(0, len(self), size=batch_size)
        return {'obs': torch.from_numpy(self.obs[idx]), 'next_obs': torch.from_numpy(self.next_obs[idx]),
                'actions': torch.from_numpy(self.actions[idx]), 'rewards': torch.from_numpy(self.rewards[idx]),
                'dones': torch.from_numpy(self.dones[idx]), 'masks': torch.from_numpy(self.masks[idx]),
                'next_masks': torch.from_numpy(self.next_masks[idx])}


class Actor(nn.Module):
    """Categorical policy: state -> action logits."""

    def __init__(self, state_dim: int, n_actions: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.net = mlp(state_dim, n_actions, hidden, layers)

    def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(probs, log_probs)`` of the masked categorical distribution."""
        log_probs = F.log_softmax(masked_logits(self.net(obs), mask), dim=-1)
        return log_probs.exp(), log_probs


class SoftQNetwork(nn.Module):
    """Soft Q critic: state -> one value per action."""

    def __init__(self, state_dim: int, n_actions: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.net = mlp(state_dim, n_actions, hidden, layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Return Q(s, .) for every action."""
        return self.net(obs)


def expectation(probs: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Return ``sum_a pi(a|s) values(s, a)`` over allowed actions (masked terms are exactly 0)."""
    return torch.where(mask, probs * values, torch.zeros_like(values)).sum(-1)


def critic_loss(qf1: SoftQNetwork, qf2: SoftQNetwork, qf1_target: SoftQNetwork, qf2_target: SoftQNetwork,
                actor: Actor, batch: dict[str, torch.Tensor], alpha: float, gamma: float) -> torch.Tensor:
    """Soft Bellman error; the target takes the exact expectation over ``pi(.|s')``.

    ``y = r + gamma (1 - done) sum_a' pi(a'|s') [min(Q1', Q2')(s', a') - alpha log pi(a'|s')]``.
    """
    with torch.no_grad():
        next_probs, next_log_probs = actor(batch['next_obs'], batch['next_masks'])
        next_q = torch.min(qf1_target(batch['next_obs']), qf2_target(batch['next_obs']))
        next_v = expectation(next_probs, next_q - alpha * next_log_probs, batch['next_masks'])
        target = batch['rewards'] + gamma * (1.0 - batch['dones']) * next_v
    a = batch['actions'].unsqueeze(1)
    q1 = qf1(batch['obs']).gather(1, a).squeeze(1)
    q2 = qf2(batch['obs']).gather(1, a).squeeze(1)
    return F.mse_loss(q1, target) + F.mse_loss(q2, target)


def actor_loss(actor: Actor, qf1: SoftQNetwork, qf2: SoftQNetwork, obs: torch.Tensor, mask: torch.Tensor,
               alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(loss, probs, log_probs)``: ``E_s sum_a pi(a|s) [alpha log pi(a|s) - min(Q1, Q2)(s, a)]``."""
    probs, log_probs = actor(obs, mask)
    with torch.no_grad():
        q = torch.min(qf1(obs), qf2(obs))
    loss = expectation(probs, alpha * log_probs - q, mask).mean()
    return loss, probs, log_probs


def alpha_loss(log_alpha: torch.Tensor, probs: torch.Tensor, log_probs: torch.Tensor, mask: torch.Tensor,
               target_entropy: torch.Tensor) -> torch.Tensor:
    """Temperature loss ``E_s [-log_alpha (target_entropy - H(pi(.|s)))]`` (exact entropy).

    Gradient descent raises ``alpha`` when the entropy is below its target and lowers it otherwise.
    """
    entropy = -expectation(probs.detach(), log_probs.detach(), mask)
    return (log_alpha * (entropy - target_entropy)).mean()


def entropy_target(mask: torch.Tensor, scale: float) -> torch.Tensor:
    """Return ``scale * log(#allowed actions)`` per state (at least 0)."""
    return scale * torch.log(mask.sum(-1).clamp(min=1).float())


class SACAgent:
    """Networks, optimizers and one-update logic of SAC-d."""

    def __init__(self, state_dim: int, n_actions: int, cfg: SACConfig, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.cfg = cfg
        self.n_actions = n_actions
        self.actor = Actor(state_dim, n_actions, cfg.hidden, cfg.layers)
        self.qf1 = SoftQNetwork(state_dim, n_actions, cfg.hidden, cfg.layers)
        self.qf2 = SoftQNetwork(state_dim, n_actions, cfg.hidden, cfg.layers)
        self.qf1_target = SoftQNetwork(state_dim, n_actions, cfg.hidden, cfg.layers)
        self.qf2_target = SoftQNetwork(state_dim, n_actions, cfg.hidden, cfg.layers)
        self.qf1_target.load_state_dict(self.qf1.state_dict())
        self.qf2_target.load_state_dict(self.qf2.state_dict())
        self.q_optimizer = torch.optim.Adam(list(self.qf1.parameters()) + list(self.qf2.parameters()), lr=cfg.q_lr)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.policy_lr)
        self.log_alpha = torch.tensor(math.log(cfg.alpha), requires_grad=True)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)
        self.rng = np.random.default_rng(seed)

    @property
    def alpha(self) -> float:
        """Return the current temperature."""
        return float(self.log_alpha.detach().exp()) if self.cfg.autotune else self.cfg.alpha

    def act(self, obs: np.ndarray, mask: np.ndarray, greedy: bool = False) -> np.ndarray:
        """Sample (or take the most likely) allowed action for each state."""
        with torch.no_grad():
            m = torch.from_numpy(np.broadcast_to(mask, (len(obs), self.n_actions)).copy())
            probs, _ = self.actor(torch.from_numpy(np.asarray(obs, np.float32)), m)
        if greedy:
            return probs.argmax(-1).numpy()
        return torch.multinomial(probs, 1).squeeze(1).numpy()

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step on critics, actor and temperature; return scalars for the log."""
        cfg = self.cfg
        alpha = self.alpha
        q_loss = critic_loss(self.qf1, self.qf2, self.qf1_target, self.qf2_target, self.actor, batch, alpha,
                             cfg.gamma)
        self.q_optimizer.zero_grad()
        q_loss.backward()
        self.q_optimizer.step()

        pi_loss, probs, log_probs = actor_loss(self.actor, self.qf1, self.qf2, batch['obs'], batch['masks'], alpha)
        self.actor_optimizer.zero_grad()
        pi_loss.backward()
        self.actor_optimizer.step()

        entropy = float(-expectation(probs.detach(), log_probs.detach(), batch['masks']).mean())
        a_loss = 0.0
        if cfg.autotune:
            loss = alpha_loss(self.log_alpha, probs, log_probs, batch['masks'],
                              entropy_target(batch['masks'], cfg.target_entropy_scale))
            self.alpha_optimizer.zero_grad()
            loss.backward()
            self.alpha_optimizer.step()
            a_loss = loss.item()

        with torch.no_grad():
            for net, target in ((self.qf1, self.qf1_target), (self.qf2, self.qf2_target)):
                for p, tp in zip(net.parameters(), target.parameters()):
                    tp.mul_(1.0 - cfg.tau).add_(cfg.tau * p)
        return {'q_loss': q_loss.item(), 'actor_loss': pi_loss.item(), 'alpha_loss': a_loss,
                'alpha': alpha, 'entropy': entropy}

    def policy_weights(self) -> dict[str, torch.Tensor]:
        """Return the actor's layers as plain tensors (what the policy file stores)."""
        return linear_weights(self.actor.net)


EvalFn = Callable[[Callable[[np.ndarray, np.ndarray], np.ndarray]], dict[str, float]]
LogFn = Callable[[dict[str, float]], None]


def train_sac(env: VecEnv, cfg: SACConfig, seed: int = 0, evaluate: EvalFn | None = None,
              eval_every: int = 10_000, log: LogFn | None = None, progress: bool = False,
              prepare: Callable[[SACAgent, ReplayBuffer], None] | None = None) -> SACAgent:
    """Train SAC-d for ``cfg.total_steps`` transitions; call ``evaluate`` (greedy policy) every ``eval_every``.

    ``evaluate`` receives ``decide(states, mask) -> actions`` and returns metrics that are merged
    into the row passed to ``log`` together with the latest losses, ``alpha`` and entropy.
    ``prepare(agent, buffer)`` runs before the first step: it may seed the replay buffer with
    logged transitions or load the weights of a policy to fine-tune.
    """
    agent = SACAgent(env.state_dim, env.n_actions, cfg, seed)
    rb = ReplayBuffer(cfg.buffer_size, env.state_dim, env.n_actions, seed)
    if prepare is not None:
        prepare(agent, rb)
    return run_training(env, agent, rb, cfg.total_steps, cfg.learning_starts, cfg.batch_size, cfg.updates_per_step,
                        lambda obs, step: agent.act(obs, env.mask), evaluate, eval_every, log, progress,
                        lambda obs, mask: agent.act(obs, mask, greedy=True), seed)


def run_training(env: VecEnv, agent: Any, rb: ReplayBuffer, total_steps: int, learning_starts: int,
                 batch_size: int, updates_per_step: int,
                 explore: Callable[[np.ndarray, int], np.ndarray], evaluate: EvalFn | None, eval_every: int,
                 log: LogFn | None, progress: bool, greedy: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 seed: int) -> Any:
    """Collect-and-update loop shared by SAC-d and DQN (uniform random actions during warm-up).

    After each evaluation the policy weights with the best ``eval_reward`` so far are kept in
    ``agent.best_weights`` (``agent.best_step`` = when); the caller decides which weights to save.
    """
    rng = np.random.default_rng(seed + 12345)
    allowed = np.nonzero(env.mask)[0]
    obs = env.reset()
    masks = np.broadcast_to(env.mask, (env.n_envs, env.n_actions))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total_steps, unit='step', smoothing=0.05)
    stats: dict[str, float] = {}
    recent_rewards: list[float] = []
    next_eval = eval_every
    best_reward = -np.inf
    agent.best_step, agent.best_weights = None, None
    start = time.perf_counter()
    step = 0
    while step < total_steps:
        if step < learning_starts:
            actions = rng.choice(allowed, size=env.n_envs)
        else:
            actions = explore(obs, step)
        next_obs, rewards, dones, info = env.step(actions)
        real_next = np.where(dones[:, None], info['final_state'], next_obs)
        # Episodes end only by the time limit (truncation): store done=0 so targets bootstrap.
        rb.add(obs, actions, rewards, real_next, np.zeros(env.n_envs), masks, masks)
        obs = next_obs
        step += env.n_envs
        recent_rewards.extend(rewards.tolist())
        if step >= learning_starts:
            for _ in range(updates_per_step):
                stats = agent.update(rb.sample(batch_size))
        if bar is not None:
            bar.update(env.n_envs)
        if step >= next_eval or step >= total_steps:
            next_eval += eval_every
            row = {'step': float(step), 'wall_s': time.perf_counter() - start,
                   'train_reward': float(np.mean(recent_rewards)) if recent_rewards else float('nan')}
            recent_rewards = []
            row.update(stats)
            if evaluate is not None:
                row.update(evaluate(greedy))
                if row.get('eval_reward', -np.inf) > best_reward:
                    best_reward = row['eval_reward']
                    agent.best_step, agent.best_weights = step, agent.policy_weights()
            if bar is not None:
                bar.set_postfix({k: f'{v:.3f}' for k, v in row.items() if k in ('eval_ratio', 'eval_gain', 'alpha')})
            if log is not None:
                log(row)
    if bar is not None:
        bar.close()
    return agent
