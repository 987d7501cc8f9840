# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Trained split policies on disk, and the object the policy node uses to decide.

A policy is two files: ``NAME.safetensors`` = the float32 tensors ``layers.i.weight`` /
``layers.i.bias`` of an MLP ``Linear-ReLU-...-Linear`` (read with ``safetensors.numpy``: no
torch, nothing unpickled); ``NAME.json`` = metadata: the profile's identity (SHA-256 of its
canonical JSON), the action table as ``[[exit, partition, bits], ...]``, the action mask, reward
coefficients, state normalization, latency-model settings, hyperparameters and how it was trained.
:meth:`TrainedPolicy.load` refuses a policy whose action table or profile does not match.  Policy
files of earlier versions, ``NAME.pt`` (``torch.save`` of the same tensors), are still read; only
that path imports torch (``torch.load(weights_only=True)``).

Usage in a node::

    policy = TrainedPolicy.load()            # shipped policy, checked against the shipped profile
    obs = Observation(bw_mbps, rtt_ms, device_contention, edge_contention, last_latency_ms, deadline_ms, prev_index)
    action = policy.act(obs)                 # Action(exit, partition, bits), greedy, masked
    prev_index = policy.index_of(action)

Inference is plain numpy (a few matrix-vector products, ~10-50 us on a CPU).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

from coinfer_device.core.action import Action
from coinfer_device.core.paths import DEFAULT_MODEL, assets_dir, shipped
from coinfer_device.core.profile import Profile, ProfileError
from coinfer_device.core.sidecar import read_sidecar_metadata, sha256_file
from coinfer_edge.core.decision import (N_STATE_SCALARS, STATE_FEATURES, LatencySettings, Observation, RewardConfig,
                                        state_dim)

if TYPE_CHECKING:  # the simulator is for training and evaluation; the policy node never loads it
    from coinfer_edge.core.simulator import Decider, StepView

POLICY_FORMAT = 'coinfer-policy'
POLICY_VERSION = 2  # 2: contention (measured compute slowdown) in the state, reward monotone past the deadline
WEIGHTS_SUFFIX = '.safetensors'
LEGACY_SUFFIX = '.pt'

__all__ = ['LEGACY_SUFFIX', 'POLICY_FORMAT', 'POLICY_VERSION', 'WEIGHTS_SUFFIX', 'PolicyError', 'TrainedPolicy',
           'default_policy_path', 'profile_sha256', 'save_policy']


class PolicyError(RuntimeError):
    """A policy file is missing, corrupt, or does not match the profile / action table."""


def default_policy_path(model: str = DEFAULT_MODEL) -> Path:
    """Return the policy shipped for a shipped model (default: the default model; see ``paths.shipped``)."""
    return assets_dir('coinfer_edge') / shipped(model).policy_file


@dataclass(frozen=True)
class PolicyObjective:
    """What a policy was trained for, from its ``.json``: reward, the robot's nominal slowdown, the best fixed action.

    ``best_fixed`` is the single action with the best mean reward on the training traces (None when
    the metadata names none).  Reading it needs neither the weights nor a profile.
    """

    reward: RewardConfig
    device_slowdown: float
    best_fixed: Action | None

    @classmethod
    def read(cls, policy_file: Path | str) -> 'PolicyObjective':
        """Read the metadata beside ``policy_file`` (``OSError``, ``KeyError``, ``ValueError`` when it is bad)."""
        meta = json.loads(Path(policy_file).with_suffix('.json').read_text())
        best = meta.get('training', {}).get('best_fixed_action')
        return cls(RewardConfig.from_dict(meta['reward']), float(meta['latency_model']['device_slowdown']),
                   Action(*best) if best else None)


def profile_sha256(profile: Profile) -> str:
    """Return the SHA-256 of the profile's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(profile.to_dict(), sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(text.encode()).hexdigest()


def _float32_array(value: Any) -> np.ndarray:
    """Return a tensor (torch or numpy) as a C-contiguous float32 numpy array."""
    if hasattr(value, 'detach'):  # a torch tensor, handled without importing torch here
        value = value.detach().cpu().float().numpy()
    return np.ascontiguousarray(value, dtype=np.float32)


def save_policy(path: Path | str, weights: Mapping[str, Any], profile: Profile, reward: RewardConfig,
                mask: np.ndarray, extra: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (``.safetensors``, float32 tensors) and ``path.json`` (metadata); return the metadata path.

    ``weights`` maps ``layers.i.weight`` / ``layers.i.bias`` to torch tensors or numpy arrays.
    """
    path = Path(path)
    if path.suffix != WEIGHTS_SUFFIX:
        raise ValueError(f'policy weights are written as {WEIGHTS_SUFFIX}, got {path.name}')
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: _float32_array(v) for k, v in weights.items()}, str(path))
    actions = profile.actions()
    meta: dict[str, Any] = {
        'format': POLICY_FORMAT,
        'version': POLICY_VERSION,
        'weights_file': path.name,
        'weights_sha256': sha256_file(path),
        'architecture': 'mlp-relu (layers.i.weight/bias), output = logits (sacd) or Q-values (dqn); '
                        'greedy action = masked argmax',
        'profile_sha256': profile_sha256(profile),
        'profile_machine': profile.machine,
        'actions': [a.to_list() for a in actions],
        'action_mask': [bool(m) for m in mask],
        'reward': reward.to_dict(),
        'state': {'dim': state_dim(len(actions)), 'n_scalars': N_STATE_SCALARS, 'features': list(STATE_FEATURES),
                  'builder': 'coinfer_edge.core.decision.build_state'},
    }
    meta.update(extra or {})
    mpath = path.with_suffix('.json')
    mpath.write_text(json.dumps(meta, indent=1) + '\n')
    return mpath


class TrainedPolicy:
    """A loaded policy: masked greedy decisions over the action table of one profile."""

    def __init__(self, layers: Sequence[tuple[np.ndarray, np.ndarray]], actions: Sequence[Action], mask: np.ndarray,
                 reward_config: RewardConfig, metadata: dict[str, Any], path: Path | None = None) -> None:
        self.layers = [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in layers]
        self.actions = tuple(actions)
        self.mask = np.asarray(mask, bool)
        self.reward_config = reward_config
        self.metadata = metadata
        self.path = path
        self._index = {a: i for i, a in enumerate(self.actions)}
        if self.layers[0][0].shape[1] != self.state_dim or self.layers[-1][0].shape[0] != len(self.actions):
            raise PolicyError(f'network shape {self.layers[0][0].shape[1]}->{self.layers[-1][0].shape[0]} does not '
                              f'fit state_dim {self.state_dim} / {len(self.actions)} actions')

    @property
    def state_dim(self) -> int:
        """Return the expected state length (``6 + len(actions)``)."""
        return state_dim(len(self.actions))

    @property
    def latency_settings(self) -> LatencySettings:
        """Return the latency model the policy was trained with (its nominal slowdowns scale the measured ones)."""
        return LatencySettings.from_dict(self.metadata.get('latency_model') or {})

    @property
    def agent(self) -> str:
        """Return which algorithm produced the policy (``sacd`` or ``dqn``)."""
        return str(self.metadata.get('agent', 'sacd'))

    def index_of(self, action: Action) -> int:
        """Return the index of ``action`` in :attr:`actions` (for ``prev_action_index``)."""
        try:
            return self._index[action]
        except KeyError:
            raise PolicyError(f'{action} is not in this policy\'s action table') from None

    def logits(self, states: np.ndarray) -> np.ndarray:
        """Return the network output (logits or Q-values) for states [N, D] (or one state [D])."""
        h = np.asarray(states, np.float32)
        if h.shape[-1] != self.state_dim:
            raise PolicyError(f'state has {h.shape[-1]} features, policy expects {self.state_dim}')
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h

    def act_indices(self, states: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Return greedy action indices for states [N, D]; ``mask`` further restricts the allowed set."""
        m = self.mask if mask is None else self.mask & np.asarray(mask, bool)
        if not m.any():
            raise PolicyError('mask excludes every action')
        return np.argmax(np.where(m, self.logits(states), -np.inf), axis=-1)

    def act(self, observation: Observation, mask: np.ndarray | None = None) -> Action:
        """Return the greedy allowed action for one observation (its :func:`build_state` vector)."""
        state = observation.state_vector(len(self.actions))
        return self.actions[int(self.act_indices(state[None, :], mask)[0])]

    def decider(self) -> 'Decider':
        """Return this policy as an evaluation rule (StepView -> indices)."""
        def decide(v: 'StepView') -> np.ndarray:
            return self.act_indices(v.state, v.mask)
        return decide

    @classmethod
    def load(cls, path: Path | str | None = None, profile: Profile | None = None,
             check_profile: bool = True) -> 'TrainedPolicy':
        """Load a policy; ``path=None`` = shipped one, ``profile=None`` = shipped profile.

        Raises :class:`PolicyError` when files are missing or corrupt, when the action table differs
        from ``profile.actions()``, or (``check_profile``) when the profile's SHA-256 differs from the
        one the policy was trained on.
        """
        path = Path(path) if path is not None else default_policy_path()
        meta = read_sidecar_metadata(path, POLICY_FORMAT, POLICY_VERSION, PolicyError)
        if profile is None:
            try:
                profile = Profile.load()
            except ProfileError as exc:
                raise PolicyError(f'cannot check the policy against the shipped profile: {exc}') from exc
        actions = [Action(*map(int, a)) for a in meta['actions']]
        expected = list(profile.actions())
        if actions != expected:
            raise PolicyError(
                f'{path.name}: action table mismatch: the policy was trained on {len(actions)} actions '
                f'(branch points / bits of its profile), this profile has {len(expected)} '
                f'(branch points {profile.branch_points}, bits {profile.bits_choices}); retrain the policy '
                f'with coinfer-train-policy --profile <this profile>')
        if check_profile and meta.get('profile_sha256') != profile_sha256(profile):
            raise PolicyError(
                f'{path.name}: trained on profile sha256 {str(meta.get("profile_sha256"))[:12]}..., given profile is '
                f'{profile_sha256(profile)[:12]}... (different timings/accuracies); retrain with '
                f'coinfer-train-policy --profile <this profile>, or pass check_profile=False to accept it')
        try:
            layers = _read_layers(path)
        except Exception as exc:  # safetensors and torch raise several types for bad files
            raise PolicyError(f'{path}: cannot load weights: {exc}') from exc
        return cls(layers, actions, np.array(meta['action_mask'], bool), RewardConfig.from_dict(meta['reward']),
                   meta, path)


def _read_layers(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the ``(weight, bias)`` pairs of a policy file, safetensors or legacy ``.pt``."""
    if path.suffix == LEGACY_SUFFIX:
        import torch  # only policy files of earlier versions need torch
        tensors = {k: v.numpy() for k, v in torch.load(path, map_location='cpu', weights_only=True).items()}
    else:
        tensors = load_file(str(path))
    n = len(tensors) // 2
    return [(tensors[f'layers.{i}.weight'], tensors[f'layers.{i}.bias']) for i in range(n)]
