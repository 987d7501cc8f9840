# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""``coinfer-train-policy``: train the SAC-d split policy (or the DQN baseline) in the trace-driven simulator.

Writes ``OUT.safetensors`` (float32 tensors) + ``OUT.json`` (metadata), ``OUT_log.csv`` (periodic
evaluation: reward, ratio to the oracle, alpha, entropy, losses) and ``OUT_curves.png`` (learning curves).

Example::

    coinfer-train-policy --out runs/sacd/seed0/sacd_policy.safetensors --seed 0
    coinfer-train-policy --agent dqn --out runs/dqn/seed0/dqn_policy.safetensors --seed 0
    coinfer-train-policy --train-traces synthetic /path/to/mahimahi/dir --steps 60000

From recorded bags (docs/bags.md)::

    coinfer-train-policy --profile robot_profile.json --traces-from bags/run1 bags/run2 --replay-from bags/run1 \
        --fine-tune current_policy.safetensors --out runs/robot/sacd_policy.safetensors

``--traces-from`` trains on the recorded conditions (add ``--train-traces synthetic`` to mix),
``--replay-from`` seeds the replay buffer with the logged transitions, ``--fine-tune`` starts from
a policy's weights, reward and simulator settings.  A profile refreshed from bags
(``coinfer-profile --from-bag``) carries the latency settings that go with its timings
(``settings.latency``); they are applied unless ``--set env.latency.*`` says otherwise.
"""

from __future__ import annotations

import argparse
import copy
import csv
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import yaml

from coinfer_device.core.bags import BagError
from coinfer_device.core.paths import find_config_file
from coinfer_device.core.profile import Profile
from coinfer_edge.core import baselines
from coinfer_edge.core.baselines import best_fixed_index
from coinfer_edge.core.decision import LatencyModel, RewardConfig
from coinfer_edge.core.dqn import DQNConfig, train_dqn
from coinfer_edge.core.policy import WEIGHTS_SUFFIX, PolicyError, TrainedPolicy, save_policy
from coinfer_edge.core.recorded import ExtractError
from coinfer_edge.core.sac import SACConfig, train_sac
from coinfer_edge.core.simulator import CoInferenceEnv, EnvConfig, StepView, oracle_decider, rollout
from coinfer_edge.core.traces import SCENARIOS, Trace, TraceFill, load_traces, stress_suite, synthetic_suite
from coinfer_edge.tools.bag_inputs import load_actor, seed_replay, traces_from_bags, transitions_from
from coinfer_edge.tools import plots
from coinfer_edge.tools.plots import pyplot

SYNTHETIC = 'synthetic'
STRESS = 'stress'  # the stress regimes of coinfer_edge.core.traces.stress_suite (evaluation only)


@dataclass
class Settings:
    """Everything config/sacd_train.yaml holds."""

    seed: int = 0
    reward: RewardConfig = field(default_factory=RewardConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    traces: dict[str, Any] = field(default_factory=dict)
    fill: TraceFill = field(default_factory=TraceFill)
    sac: SACConfig = field(default_factory=SACConfig)
    dqn: dict[str, Any] = field(default_factory=dict)
    eval_every: int = 10_000
    keep_best: bool = True
    raw: dict[str, Any] = field(default_factory=dict)

    def dqn_config(self) -> DQNConfig:
        """Return the DQN config: SAC-d's budget plus the ``dqn`` section."""
        return DQNConfig.from_sac(self.sac, **self.dqn)


def default_config_path() -> Path | None:
    """Return config/sacd_train.yaml of the source tree or the installed share folder, if present."""
    return find_config_file('sacd_train.yaml')


def _apply_override(doc: dict[str, Any], assignment: str) -> None:
    key, sep, value = assignment.partition('=')
    if not sep:
        raise SystemExit(f'--set expects section.key=value, got {assignment!r}')
    node = doc
    parts = key.split('.')
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = yaml.safe_load(value)


def load_settings(path: Path | str | None = None, overrides: Sequence[str] = (),
                  sections: dict[str, Any] | None = None) -> Settings:
    """Read the YAML config (``None`` = default one, if any), replace whole ``sections``, apply overrides.

    ``overrides`` are ``section.key=value`` strings, applied last.
    """
    path = Path(path) if path else default_config_path()
    doc = yaml.safe_load(path.read_text()) if path else {}
    doc = copy.deepcopy(doc or {})
    doc.update(copy.deepcopy(sections or {}))
    for o in overrides:
        _apply_override(doc, o)
    traces = dict(doc.get('traces', {}))
    fill = TraceFill(**traces.pop('fill', {}))
    return Settings(seed=int(doc.get('seed', 0)), reward=RewardConfig.from_dict(doc.get('reward', {})),
                    env=EnvConfig.from_dict(doc.get('env', {})), traces=traces, fill=fill,
                    sac=SACConfig.from_dict(doc.get('sac', {})), dqn=dict(doc.get('dqn', {})),
                    eval_every=int(doc.get('train', {}).get('eval_every', 10_000)),
                    keep_best=bool(doc.get('train', {}).get('keep_best', True)), raw=doc)


def synthetic_split(settings: Settings, split: str) -> list[Trace]:
    """Generate the synthetic ``train``, ``validation`` or ``test`` suite (disjoint seeds)."""
    spec = settings.traces.get(split, {})
    defaults = {'train': (101, 42, 300.0), 'validation': (202, 12, 120.0), 'test': (303, 18, 300.0)}[split]
    seed = int(spec.get('seed', defaults[0]))
    return synthetic_suite(seed, int(spec.get('count', defaults[1])), float(spec.get('duration_s', defaults[2])),
                           settings.env.dt_s, settings.traces.get('kinds', SCENARIOS))


def check_split_seeds(settings: Settings) -> None:
    """Refuse a config whose synthetic train/validation/test suites share a seed (they would overlap)."""
    seeds = [int(settings.traces.get(s, {}).get('seed', d)) for s, d in
             (('train', 101), ('validation', 202), ('test', 303))]
    if len(set(seeds)) != 3:
        raise SystemExit(f'traces.train/validation/test seeds must differ, got {seeds}')


def profile_latency_overrides(profile: Profile) -> list[str]:
    """Return ``env.latency.*`` overrides for the latency settings a refreshed profile carries (``[]`` if none)."""
    latency = profile.settings.get('latency') or {}
    if latency:
        print(f'the profile carries measured latency settings (settings.latency): applying env.latency {latency}',
              flush=True)
    return [f'env.latency.{k}={v}' for k, v in latency.items()]


def resolve_traces(specs: Sequence[str], settings: Settings, split: str) -> list[Trace]:
    """Turn CLI trace arguments (``synthetic`` and/or files/folders) into traces."""
    out: list[Trace] = []
    for s in specs:
        if s == SYNTHETIC:
            out.extend(synthetic_split(settings, split))
        elif s == STRESS:
            spec = settings.traces.get('stress', {})
            out.extend(stress_suite(int(spec.get('seed', 404)), int(spec.get('per_regime', 2)),
                                    float(spec.get('duration_s', 120.0)), settings.env.dt_s))
        else:
            out.extend(load_traces([s], settings.env.dt_s, settings.fill, settings.seed))
    return out


def mean_reward(rule, profile: Profile, traces: Sequence[Trace], settings: Settings, seed: int = 0) -> float:
    """Return the mean per-step reward of a decision rule on ``traces``."""
    runs = rollout(rule, profile, traces, settings.reward, settings.env, seed)
    return float(np.mean(np.concatenate([r.reward for r in runs])))


def make_evaluator(profile: Profile, traces: Sequence[Trace], settings: Settings, fixed_index: int):
    """Return ``evaluate(decide)`` on the validation traces.

    It reports ``eval_reward``, ``eval_ratio`` (to the oracle) and ``eval_gain`` = share of the
    oracle's advantage over the best fixed action (``fixed_index``) that the policy captures.
    """
    accuracy = LatencyModel(profile, settings.env.latency).accuracy
    ref = mean_reward(oracle_decider(settings.reward, accuracy), profile, traces, settings)
    fixed = mean_reward(baselines.fixed(fixed_index), profile, traces, settings)

    def evaluate(decide) -> dict[str, float]:
        def rule(v: StepView) -> np.ndarray:
            return decide(v.state, v.mask)
        mean = mean_reward(rule, profile, traces, settings)
        gap = ref - fixed
        return {'eval_reward': mean, 'eval_ratio': mean / ref if ref else float('nan'),
                'eval_gain': (mean - fixed) / gap if gap > 1e-12 else float('nan'),
                'eval_oracle_reward': ref, 'eval_fixed_reward': fixed}
    return evaluate


def plot_curves(rows: list[dict[str, float]], path: Path, title: str) -> None:
    """Plot evaluation ratio, alpha/entropy and losses against environment steps."""
    plt = pyplot()
    steps = [r['step'] for r in rows]
    keys = [('eval_ratio', 'greedy reward / oracle\n(validation)'),
            ('eval_gain', 'gain captured vs\nbest fixed (validation)'),
            ('train_reward', 'mean reward\nwhile exploring'),
            ('alpha', 'alpha'), ('entropy', 'policy entropy\n(nats)'), ('q_loss', 'critic loss'),
            ('actor_loss', 'actor loss')]
    keys = [(k, lbl) for k, lbl in keys if any(k in r for r in rows)]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.6 * len(keys)), sharex=True)
    for ax, (k, lbl) in zip(np.atleast_1d(axes), keys):
        ax.plot(steps, [r.get(k, np.nan) for r in rows], marker='.')
        ax.set_ylabel(lbl, fontsize=8)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[-1].set_xlabel('environment steps')
    fig.suptitle(title, fontsize=9)
    plots.save(fig, path)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--profile', default=None, help='profile JSON (default: shipped coinfer_device profile)')
    p.add_argument('--config', default=None, help='YAML settings (default: config/sacd_train.yaml)')
    p.add_argument('--out', default=f'runs/policy/sacd_policy{WEIGHTS_SUFFIX}',
                   help=f'policy file to write ({WEIGHTS_SUFFIX}; + .json, _log.csv, _curves.png)')
    p.add_argument('--agent', choices=('sacd', 'dqn'), default='sacd')
    p.add_argument('--seed', type=int, default=None, help='training seed (default: config seed)')
    p.add_argument('--steps', type=int, default=None, help='environment transitions (default: config sac.total_steps)')
    p.add_argument('--train-traces', nargs='+', default=None,
                   help="'synthetic' (the config's training suite) and/or trace files/folders (CSV or mahimahi); "
                   "default 'synthetic' unless --traces-from is given")
    p.add_argument('--traces-from', nargs='+', default=[], metavar='BAG',
                   help='also train on the conditions recorded in these bags (one trace per bag and namespace)')
    p.add_argument('--replay-from', nargs='+', default=[], metavar='BAG',
                   help='seed the replay buffer with the transitions logged in these bags (or transitions.csv '
                   'files of coinfer-bag-extract) before training (sacd)')
    p.add_argument('--fine-tune', nargs='?', const='', default=None, metavar='POLICY',
                   help="start from this policy's weights, reward and simulator settings (sacd); "
                   'without POLICY the shipped one')
    p.add_argument('--val-traces', nargs='+', default=[SYNTHETIC],
                   help="validation traces for periodic evaluation ('synthetic' = the config's validation suite)")
    p.add_argument('--set', action='append', default=[], metavar='SECTION.KEY=VALUE', help='override a config value')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool."""
    args = build_parser().parse_args(argv)
    if Path(args.out).suffix != WEIGHTS_SUFFIX:
        raise SystemExit(f'--out must end in {WEIGHTS_SUFFIX}, got {args.out}')
    torch.set_num_threads(args.threads)
    overrides = list(args.set)
    if args.seed is not None:
        overrides.append(f'seed={args.seed}')
    if args.steps is not None:
        overrides.append(f'sac.total_steps={args.steps}')
    profile = Profile.load(args.profile)
    base = None
    if args.fine_tune is not None:
        if args.agent != 'sacd':
            raise SystemExit('--fine-tune needs --agent sacd')
        try:
            base = TrainedPolicy.load(args.fine_tune or None, profile, check_profile=False)
        except PolicyError as exc:
            raise SystemExit(f'coinfer-train-policy: error: --fine-tune: {exc}') from None
        sections = {'reward': base.metadata['reward'], 'env': base.metadata['env']}
        print(f'fine-tuning {base.path}: its reward and env settings apply', flush=True)
    else:
        sections = {}
    calibrated = profile_latency_overrides(profile)
    settings = load_settings(args.config, calibrated + overrides, sections)
    check_split_seeds(settings)
    try:
        train = resolve_traces(args.train_traces or ([] if args.traces_from else [SYNTHETIC]), settings, 'train')
        train += traces_from_bags(args.traces_from, settings.env.dt_s, settings.env.latency)
        replay = transitions_from(args.replay_from, profile, settings.reward) if args.replay_from else []
    except (BagError, ExtractError) as exc:
        raise SystemExit(f'coinfer-train-policy: error: {exc}') from None
    if not train:
        raise SystemExit('no training traces')
    if replay and args.agent != 'sacd':
        raise SystemExit('--replay-from needs --agent sacd')
    val = resolve_traces(args.val_traces, settings, 'validation')
    overlap = {t.name for t in train} & {t.name for t in val}
    if overlap:
        raise SystemExit(f'training and validation traces overlap: {sorted(overlap)}')
    seed = settings.seed
    np.random.seed(seed)
    cfg = settings.sac if args.agent == 'sacd' else settings.dqn_config()
    try:
        env = CoInferenceEnv(profile, train, settings.reward, settings.env, n_envs=cfg.n_envs, seed=seed)
    except ValueError as exc:  # e.g. a recorded trace shorter than one episode
        raise SystemExit(f'coinfer-train-policy: error: {exc} (shorter episodes: --set env.episode_steps=N)') from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_name(out.stem + '_log.csv')
    rows: list[dict[str, float]] = []

    def log(row: dict[str, float]) -> None:
        rows.append(row)
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(log_path, 'w', newline='') as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)

    fixed = best_fixed_index(profile, train, settings.reward, settings.env)
    evaluate = make_evaluator(profile, val, settings, fixed)
    print(f'{args.agent}: {len(env.actions)} actions ({int(env.mask.sum())} allowed), state dim {env.state_dim}, '
          f'{len(train)} training traces ({sum(len(t) for t in train)} steps), seed {seed}', flush=True)
    start = time.perf_counter()
    seeded = []

    def prepare(agent, buffer) -> None:
        if base is not None:
            load_actor(agent, base)
        if replay:
            seeded.append(seed_replay(buffer, replay, env.actions, env.mask, settings.reward, profile,
                                      settings.env.latency))
            print(f'replay buffer seeded with {seeded[-1]} of {len(replay)} logged transitions', flush=True)

    if args.agent == 'sacd':
        agent = train_sac(env, cfg, seed, evaluate, settings.eval_every, log, progress=not args.no_progress,
                          prepare=prepare)
    else:
        agent = train_dqn(env, cfg, seed, evaluate, settings.eval_every, log, progress=not args.no_progress)
    wall = time.perf_counter() - start
    meta = {
        'agent': args.agent,
        'hyperparameters': cfg.to_dict(),
        'env': settings.env.to_dict(),
        'latency_model': settings.env.latency.to_dict(),
        'trace_fill': {'rtt_base_ms': settings.fill.rtt_base_ms, 'rtt_jitter_ms': settings.fill.rtt_jitter_ms,
                       'device_load': settings.fill.device_load, 'edge_load': settings.fill.edge_load},
        'training': {
            'command': shlex.join(['coinfer-train-policy', *(sys.argv[1:] if argv is None else argv)]),
            'seed': seed, 'steps': cfg.total_steps, 'wall_s': round(wall, 1), 'torch_threads': args.threads,
            'config': settings.raw,
            'train_traces': [{'name': t.name, 'source': t.source, 'steps': len(t)} for t in train],
            'validation_traces': [t.name for t in val],
            'fine_tuned_from': str(base.path) if base is not None else None,
            'replay_seeded': {'sources': list(args.replay_from), 'transitions': seeded[0] if seeded else 0},
            'best_fixed_action': list(env.actions[fixed].to_list()),
            'validation_log': rows,
        },
    }
    use_best = settings.keep_best and agent.best_weights is not None
    weights = agent.best_weights if use_best else agent.policy_weights()
    selected = agent.best_step if use_best else cfg.total_steps
    meta['training']['selected_step'] = selected
    meta['training']['selection'] = 'best validation reward' if use_best else 'last'
    mpath = save_policy(out, weights, profile, settings.reward, env.mask, meta)
    plot_curves(rows, out.with_name(out.stem + '_curves.png'),
                f'{args.agent} seed {seed}: {cfg.total_steps} steps, {wall:.0f} s')
    sel = next((r for r in rows if r['step'] == selected), rows[-1] if rows else {})
    print(f'wrote {out} and {mpath.name}; {wall:.0f} s; weights of step {selected}: validation reward '
          f'{sel.get("eval_reward", float("nan")):.4f} = {100 * sel.get("eval_ratio", float("nan")):.1f}% of oracle',
          flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
