# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""SAC-d and DQN: losses by hand, convergence on a contextual bandit, masking never violated."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coinfer_edge.core.dqn import DQNConfig, train_dqn
from coinfer_edge.core.sac import (Actor, ReplayBuffer, SACAgent, SACConfig, SoftQNetwork, actor_loss, alpha_loss,
                                   critic_loss, entropy_target, expectation, train_sac)

torch.set_num_threads(1)

# Contextual bandit: 3 contexts (one-hot state), 5 actions; action 4 pays most but is masked.
REWARDS = np.array([[0.1, 0.9, 0.2, 0.0, 2.0],
                    [0.8, 0.1, 0.3, 0.2, 2.0],
                    [0.0, 0.2, 0.4, 0.95, 2.0]], dtype=np.float32)
BEST = [1, 0, 3]


class BanditEnv:
    """Vectorized contextual bandit with the environment interface of the training loops."""

    n_actions = 5
    state_dim = 3

    def __init__(self, n_envs: int = 8, seed: int = 0) -> None:
        self.n_envs = n_envs
        self.mask = np.array([True, True, True, True, False])
        self.rng = np.random.default_rng(seed)
        self.ctx = np.zeros(n_envs, dtype=np.int64)

    def _obs(self) -> np.ndarray:
        return np.eye(3, dtype=np.float32)[self.ctx]

    def reset(self) -> np.ndarray:
        self.ctx = self.rng.integers(0, 3, self.n_envs)
        return self._obs()

    def step(self, actions):
        assert np.all(self.mask[actions]), 'a masked action was taken'
        r = REWARDS[self.ctx, actions] + 0.05 * self.rng.standard_normal(self.n_envs).astype(np.float32)
        done = np.ones(self.n_envs, bool)
        final = self._obs()
        obs = self.reset()
        return obs, r, done, {'final_state': final}


def small(**kw) -> SACConfig:
    base = dict(total_steps=6000, n_envs=8, buffer_size=5000, gamma=0.0, batch_size=64, learning_starts=400,
                hidden=32, layers=1, policy_lr=3e-3, q_lr=3e-3, alpha_lr=3e-3, tau=0.05, alpha=0.1,
                target_entropy_scale=0.3)
    base.update(kw)
    return SACConfig(**base)


@pytest.mark.parametrize('autotune', [True, False])
def test_sac_learns_contextual_bandit_and_never_picks_masked(autotune: bool) -> None:
    env = BanditEnv(seed=1)
    rows = []
    agent = train_sac(env, small(autotune=autotune), seed=0, log=rows.append, eval_every=2000)
    states = np.eye(3, dtype=np.float32)
    assert agent.act(states, env.mask, greedy=True).tolist() == BEST
    with torch.no_grad():
        probs, _ = agent.actor(torch.from_numpy(states), torch.from_numpy(np.tile(env.mask, (3, 1))))
        q = agent.qf1(torch.from_numpy(states)).numpy()
    assert torch.all(probs[:, 4] == 0)
    np.testing.assert_allclose(q[np.arange(3), BEST], REWARDS[np.arange(3), BEST], atol=0.1)
    assert rows and all(math.isfinite(r['q_loss']) for r in rows)
    if autotune:
        assert rows[-1]['alpha'] != pytest.approx(0.1)


def test_dqn_learns_contextual_bandit() -> None:
    env = BanditEnv(seed=2)
    cfg = DQNConfig.from_sac(small(), exploration_fraction=0.3)
    assert cfg.hidden == 32 and cfg.total_steps == 6000 and cfg.gamma == 0.0
    agent = train_dqn(env, cfg, seed=0)
    assert agent.act(np.eye(3, dtype=np.float32), env.mask).tolist() == BEST


def _nets(seed: int = 0):
    torch.manual_seed(seed)
    return (Actor(3, 4, 8, 1), SoftQNetwork(3, 4, 8, 1), SoftQNetwork(3, 4, 8, 1), SoftQNetwork(3, 4, 8, 1),
            SoftQNetwork(3, 4, 8, 1))


def test_losses_match_hand_computation() -> None:
    actor, q1, q2, q1t, q2t = _nets()
    obs = torch.randn(5, 3)
    nxt = torch.randn(5, 3)
    mask = torch.tensor([[True, True, False, True]] * 5)
    batch = {'obs': obs, 'next_obs': nxt, 'actions': torch.tensor([0, 1, 3, 0, 1]),
             'rewards': torch.randn(5), 'dones': torch.tensor([0., 0., 1., 0., 0.]), 'masks': mask, 'next_masks': mask}
    alpha, gamma = 0.3, 0.7
    with torch.no_grad():
        logits = actor.net(nxt)[:, [0, 1, 3]]
        p = torch.softmax(logits, -1)
        qmin = torch.min(q1t(nxt), q2t(nxt))[:, [0, 1, 3]]
        v = (p * (qmin - alpha * torch.log(p))).sum(-1)
        y = batch['rewards'] + gamma * (1 - batch['dones']) * v
        a = batch['actions']
        expected = ((q1(obs)[range(5), a] - y) ** 2).mean() + ((q2(obs)[range(5), a] - y) ** 2).mean()
    assert critic_loss(q1, q2, q1t, q2t, actor, batch, alpha, gamma).item() == pytest.approx(float(expected), rel=1e-5)

    loss, probs, log_probs = actor_loss(actor, q1, q2, obs, mask, alpha)
    with torch.no_grad():
        p = torch.softmax(actor.net(obs)[:, [0, 1, 3]], -1)
        qmin = torch.min(q1(obs), q2(obs))[:, [0, 1, 3]]
        expected = (p * (alpha * torch.log(p) - qmin)).sum(-1).mean()
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)
    assert torch.all(probs[:, 2] == 0)

    # Temperature: entropy below target -> alpha must grow after a step; above -> shrink.
    for target, grows in ((math.log(3.0), True), (0.0, False)):
        log_alpha = torch.tensor(math.log(0.3), requires_grad=True)
        opt = torch.optim.SGD([log_alpha], lr=0.1)
        alpha_loss(log_alpha, probs, log_probs, mask, torch.full((5,), target)).backward()
        opt.step()
        assert (log_alpha.item() > math.log(0.3)) == grows
    np.testing.assert_allclose(entropy_target(mask, 0.5).numpy(), 0.5 * math.log(3.0), rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=6, max_size=6).filter(any), st.integers(0, 2 ** 31 - 1))
def test_masking_never_yields_a_disallowed_action(mask_list, seed) -> None:
    torch.manual_seed(seed)
    agent = SACAgent(4, 6, SACConfig(hidden=8, layers=1), seed=seed % 1000)
    with torch.no_grad():   # make disallowed actions look very attractive
        agent.actor.net[-1].bias.copy_(torch.tensor([50.0 if not m else 0.0 for m in mask_list]))
    mask = np.array(mask_list)
    obs = np.random.default_rng(seed).standard_normal((64, 4)).astype(np.float32) * 10
    for greedy in (True, False):
        assert np.all(mask[agent.act(obs, mask, greedy=greedy)])
    probs, log_probs = agent.actor(torch.from_numpy(obs), torch.from_numpy(np.tile(mask, (64, 1))))
    assert torch.all(probs[:, torch.from_numpy(~mask)] == 0)
    term = expectation(probs, log_probs, torch.from_numpy(np.tile(mask, (64, 1))))
    assert torch.all(torch.isfinite(term))


def test_replay_buffer_wraps_around() -> None:
    rb = ReplayBuffer(5, 2, 3, seed=0)
    m = np.ones((3, 3), bool)
    for k in range(3):
        obs = np.full((3, 2), k, np.float32)
        rb.add(obs, np.full(3, k), np.full(3, k, np.float32), obs, np.zeros(3), m, m)
    assert len(rb) == 5 and rb.full
    assert sorted(rb.actions.tolist()) == [1, 1, 2, 2, 2]
    batch = rb.sample(16)
    assert batch['obs'].shape == (16, 2) and batch['masks'].dtype == torch.bool
