# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
r"""``coinfer-evaluate-policy``: compare trained SAC-d policies with the oracle and baselines on held-out traces.

Rules: oracle (exhaustive search with the true state), SAC-d (one row per training seed, summarized
as mean +- std), DQN (same budget), greedy-on-measured-state (the oracle's search on the lagged
measurements: the best a memoryless policy could do), best fixed action (chosen on the training
traces), device-only, edge-only (raw input at 8 bits), Neurosurgeon-style, Edgent-style, random.

Also per trace: the mean reward of SAC-d (first policy) against the best fixed action, and the
oracle's and SAC-d's choices grouped as on-device / raw input / intermediate partition and by bits
(is the problem degenerate?).  ``--traces stress`` adds the stress regimes
(:data:`coinfer_edge.core.traces.STRESS_REGIMES`).

Writes to ``--out``: ``results.json`` (all numbers), ``table.md``, ``latency_cdf.png``,
``decisions.png`` (one trace over time) and ``oracle_actions.png`` (action histograms).

Example::

    coinfer-evaluate-policy --policy runs/sacd/seed*/sacd_policy.safetensors \\
        --dqn runs/dqn/seed*/dqn_policy.safetensors --traces synthetic --out results/policy_synthetic
    coinfer-evaluate-policy --policy runs/sacd/seed*/sacd_policy.safetensors --traces /path/to/cellular \\
        --out results/cell
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from coinfer_device.core.action import Action
from coinfer_device.core.bags import BagError
from coinfer_device.core.profile import Profile
from coinfer_edge.core import baselines
from coinfer_edge.core.decision import LatencyModel, RewardConfig
from coinfer_edge.core.policy import TrainedPolicy, default_policy_path
from coinfer_edge.core.simulator import EnvConfig, Rollout, oracle_decider, rollout
from coinfer_edge.core.recorded import ExtractError
from coinfer_edge.tools.bag_inputs import traces_from_bags
from coinfer_edge.tools import plots
from coinfer_edge.tools.plots import pyplot
from coinfer_edge.tools.train_policy import SYNTHETIC, Settings, load_settings, resolve_traces


def metrics(runs: Sequence[Rollout]) -> dict[str, float]:
    """Return mean reward, accuracy, mean/p95 latency and deadline-miss rates over all steps."""
    keys = ('reward', 'accuracy', 'latency_ms', 'miss', 'feasible')
    cat = {k: np.concatenate([getattr(r, k) for r in runs]) for k in keys}
    feas = cat['feasible']
    return {'reward': float(cat['reward'].mean()), 'accuracy': float(cat['accuracy'].mean()),
            'latency_ms': float(cat['latency_ms'].mean()),
            'p95_latency_ms': float(np.percentile(cat['latency_ms'], 95)),
            'miss_rate': float(cat['miss'].mean()),
            'miss_rate_feasible': float(cat['miss'][feas].mean()) if feas.any() else float('nan'),
            'feasible_fraction': float(feas.mean()), 'steps': int(len(feas))}


def where_of(action: Action, profile: Profile) -> str:
    """Return where an action computes: ``on-device``, ``raw input`` (partition 0) or ``intermediate``."""
    return 'on-device' if profile.is_local(action) else 'raw input' if action.partition == 0 else 'intermediate'


def grouped_shares(runs: Sequence[Rollout], actions: Sequence[Action], profile: Profile) -> dict[str, dict[str, float]]:
    """Return the share of steps per place (:func:`where_of`) and per bit width (``local`` when not sent)."""
    chosen = [actions[int(i)] for r in runs for i in r.action]
    n = max(1, len(chosen))
    where = Counter(where_of(a, profile) for a in chosen)
    bits = Counter('local' if profile.is_local(a) else f'{a.bits} bit' for a in chosen)
    return {'where': {k: v / n for k, v in where.most_common()}, 'bits': {k: v / n for k, v in bits.most_common()}}


def per_trace_versus(policy: Sequence[Rollout], reference: Sequence[Rollout]) -> list[dict[str, Any]]:
    """Return per trace the mean reward of ``policy`` and ``reference`` (same traces, same order)."""
    return [{'trace': p.trace, 'policy': float(p.reward.mean()), 'reference': float(r.reward.mean()),
             'margin': float(p.reward.mean() - r.reward.mean())} for p, r in zip(policy, reference)]


def format_shares(shares: dict[str, dict[str, float]]) -> str:
    """Return ``on-device 40.1%, raw input 30.0%, ... | 8 bit 20.0%, ...``."""
    return ' | '.join(', '.join(f'{k} {100 * v:.1f}%' for k, v in part.items()) for part in shares.values())


def summarize(per_seed: list[dict[str, float]]) -> dict[str, Any]:
    """Return mean, std, min and max of every metric over seeds."""
    keys = per_seed[0].keys()
    out: dict[str, Any] = {}
    for k in keys:
        v = np.array([m[k] for m in per_seed], dtype=float)
        out[k] = float(v.mean())
        out[k + '_std'] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out[k + '_min'], out[k + '_max'] = float(v.min()), float(v.max())
    out['seeds'] = len(per_seed)
    return out


def check_same_setup(policies: Sequence[TrainedPolicy]) -> None:
    """Refuse to compare policies trained with different reward or simulator settings."""
    ref = policies[0].metadata
    for p in policies[1:]:
        for key in ('reward', 'env', 'profile_sha256'):
            if p.metadata.get(key) != ref.get(key):
                raise SystemExit(f'{p.path} differs from {policies[0].path} in {key!r}; evaluate them separately')


def settings_from_policy(policy: TrainedPolicy, base: Settings) -> Settings:
    """Return ``base`` with reward and env settings replaced by the policy's (so rules face its problem)."""
    base.reward = RewardConfig.from_dict(policy.metadata['reward'])
    base.env = EnvConfig.from_dict(policy.metadata['env'])
    return base


def add_relative(m: dict[str, Any], oracle_reward: float, fixed_reward: float) -> dict[str, Any]:
    """Add ``ratio_to_oracle`` and ``gain_captured`` = (R - R_best_fixed) / (R_oracle - R_best_fixed)."""
    m['ratio_to_oracle'] = m['reward'] / oracle_reward
    gap = oracle_reward - fixed_reward
    m['gain_captured'] = (m['reward'] - fixed_reward) / gap if gap > 1e-12 else float('nan')
    return m


def format_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """Return a markdown table; learned rules show mean ± std over seeds."""
    head = ('| rule | mean reward | % of oracle | gain captured | accuracy | mean latency ms | p95 latency ms | '
            'miss rate | miss rate (feasible) |\n|---|---|---|---|---|---|---|---|---|\n')
    lines = []
    for name, m in rows:
        def cell(k: str, fmt: str, scale: float = 1.0) -> str:
            s = format(m[k] * scale, fmt)
            if m.get('seeds', 1) > 1:
                s += ' ± ' + format(m[k + '_std'] * scale, fmt)
            return s
        lines.append(f"| {name} | {cell('reward', '.4f')} | {cell('ratio_to_oracle', '.2f', 100)} | "
                     f"{cell('gain_captured', '.2f', 100)} | {cell('accuracy', '.4f')} | {cell('latency_ms', '.2f')} | "
                     f"{cell('p95_latency_ms', '.2f')} | {cell('miss_rate', '.2f', 100)} | "
                     f"{cell('miss_rate_feasible', '.2f', 100)} |")
    note = ('\n% of oracle = mean reward / oracle mean reward; gain captured = (R - R_best_fixed) / '
            '(R_oracle - R_best_fixed), in %; miss rates in %.\n')
    return head + '\n'.join(lines) + '\n' + note


def plot_latency_cdf(curves: dict[str, np.ndarray], deadline: float, path: Path, title: str) -> None:
    """Plot the empirical latency CDF of every rule with the deadline marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, lat in curves.items():
        x = np.sort(lat)
        ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=name, lw=2.0 if name in ('oracle', 'SAC-d') else 1.0)
    ax.axvline(deadline, color='k', ls='--', lw=0.8, label=f'deadline {deadline:g} ms')
    ax.set_xscale('log')
    ax.set_xlabel('latency (ms, log scale)')
    ax.set_ylabel('fraction of decisions')
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=7, loc='lower right')
    plots.save(fig, path)


def plot_decisions(trace, runs: dict[str, Rollout], labels: Sequence[str], lag: int, path: Path,
                   max_steps: int = 1200) -> None:
    """Plot a trace's bandwidth and device load and the actions chosen over time."""
    plt = pyplot()
    n = min(max_steps, len(next(iter(runs.values())).action))
    t = (np.arange(n) + lag) * trace.dt_s
    used = sorted(set(int(a) for r in runs.values() for a in r.action[:n]))
    pos = {a: i for i, a in enumerate(used)}
    fig, axes = plt.subplots(3, 1, figsize=(9, 6.5), sharex=True, gridspec_kw={'height_ratios': [1, 1, 2]})
    axes[0].plot(t, trace.bandwidth_mbps[lag:lag + n], lw=0.8)
    axes[0].set_yscale('log')
    axes[0].set_ylabel('bandwidth Mbit/s')
    axes[1].plot(t, trace.device_load[lag:lag + n], lw=0.8, label='device')
    axes[1].plot(t, trace.edge_load[lag:lag + n], lw=0.8, label='edge')
    axes[1].set_ylabel('CPU load')
    axes[1].legend(fontsize=7)
    for k, (name, r) in enumerate(runs.items()):
        axes[2].plot(t, [pos[int(a)] + 0.15 * (k - 1) for a in r.action[:n]], '.', ms=2, label=name)
    axes[2].set_yticks(range(len(used)), [labels[a] for a in used], fontsize=6)
    axes[2].set_xlabel('time s')
    axes[2].legend(fontsize=7, markerscale=4)
    axes[0].set_title(f'{trace.name}', fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
    plots.save(fig, path)


def plot_histogram(hists: dict[str, Counter], labels: Sequence[str], path: Path, title: str) -> None:
    """Bar chart of how often each action is chosen, per rule."""
    plt = pyplot()
    used = sorted(set(a for h in hists.values() for a, c in h.items() if c))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(used) + 2), 3.8))
    width = 0.8 / len(hists)
    for k, (name, h) in enumerate(hists.items()):
        total = sum(h.values())
        ax.bar(np.arange(len(used)) + k * width, [h.get(a, 0) / total for a in used], width, label=name)
    ax.set_xticks(np.arange(len(used)) + 0.4 - width / 2, [labels[a] for a in used], rotation=60, fontsize=7,
                  ha='right')
    ax.set_ylabel('fraction of decisions')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis='y')
    plots.save(fig, path)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--policy', nargs='+', default=None, help='SAC-d policy files, one per seed (default: shipped)')
    p.add_argument('--dqn', nargs='*', default=[], help='DQN policy files trained with the same budget')
    p.add_argument('--profile', default=None, help='profile JSON (default: shipped)')
    p.add_argument('--config', default=None, help='YAML settings for trace suites (default: config/sacd_train.yaml); '
                   'reward and env settings always come from the policy file')
    p.add_argument('--traces', nargs='+', default=None,
                   help="held-out traces: 'synthetic' (the config's test suite), 'stress' (the stress regimes) and/or "
                   "CSV/mahimahi files/folders; "
                   "default 'synthetic' unless --traces-from is given")
    p.add_argument('--traces-from', nargs='+', default=[], metavar='BAG',
                   help='also evaluate on the conditions recorded in these bags (one trace per bag and namespace)')
    p.add_argument('--train-traces', nargs='+', default=[SYNTHETIC],
                   help='the training traces (for the best fixed action)')
    p.add_argument('--set', action='append', default=[], metavar='SECTION.KEY=VALUE', help='override a config value')
    p.add_argument('--seed', type=int, default=0, help='measurement-noise seed of the rollouts')
    p.add_argument('--label', default=None, help='name of the trace set in titles')
    p.add_argument('--out', default='results/policy_eval', help='output folder')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool."""
    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    profile = Profile.load(args.profile)
    sac_paths = args.policy or [str(default_policy_path())]
    sacs = [TrainedPolicy.load(p, profile) for p in sac_paths]
    dqns = [TrainedPolicy.load(p, profile) for p in args.dqn]
    check_same_setup(sacs + dqns)
    settings = settings_from_policy(sacs[0], load_settings(args.config, args.set))
    try:
        test = resolve_traces(args.traces or ([] if args.traces_from else [SYNTHETIC]), settings, 'test')
        test += traces_from_bags(args.traces_from, settings.env.dt_s, settings.env.latency)
    except (BagError, ExtractError) as exc:
        raise SystemExit(f'coinfer-evaluate-policy: error: {exc}') from None
    train = resolve_traces(args.train_traces, settings, 'train')
    leaked = {t.name for t in test} & {t['name'] for p in sacs + dqns for t in p.metadata['training']['train_traces']}
    if leaked:
        raise SystemExit(f'held-out traces were used for training: {sorted(leaked)}')
    reward, env = settings.reward, settings.env
    lat = LatencyModel(profile, env.latency)
    labels = [a.label() for a in lat.actions]
    label = args.label or ' + '.join((args.traces or []) + args.traces_from)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def run(rule) -> list[Rollout]:
        return rollout(rule, profile, test, reward, env, seed=args.seed)

    fixed = baselines.best_fixed_index(profile, train, reward, env)
    rules = {
        'oracle': oracle_decider(reward, lat.accuracy),
        'greedy (measured state)': baselines.greedy_measured(lat, reward),
        f'best fixed ({labels[fixed]})': baselines.fixed(fixed),
        'device-only': baselines.fixed(baselines.device_only_index(lat)),
        'edge-only (raw, 8 bit)': baselines.fixed(baselines.edge_only_index(lat)),
        'Neurosurgeon-style': baselines.neurosurgeon(lat),
        'Edgent-style': baselines.edgent(lat),
        'random': baselines.random_rule(args.seed),
    }
    results: dict[str, Any] = {}
    runs_of: dict[str, list[Rollout]] = {}
    for name, rule in rules.items():
        runs_of[name] = run(rule)
        results[name] = metrics(runs_of[name])
    oracle_r = results['oracle']['reward']
    fixed_r = results[f'best fixed ({labels[fixed]})']['reward']
    for m in results.values():
        add_relative(m, oracle_r, fixed_r)
    for name, pols in (('SAC-d', sacs), ('DQN', dqns)):
        if not pols:
            continue
        per_seed = []
        for i, p in enumerate(pols):
            r = run(p.decider())
            if i == 0:
                runs_of[name] = r
            m = add_relative(metrics(r), oracle_r, fixed_r)
            m['train_wall_s'] = float(p.metadata['training'].get('wall_s', float('nan')))
            per_seed.append(m)
        results[name] = summarize(per_seed)
        results[name]['per_seed'] = [dict(m, policy=str(p.path), seed=p.metadata['training']['seed'])
                                     for m, p in zip(per_seed, pols)]
    order = ['oracle', 'SAC-d', 'DQN'] + [n for n in rules if n != 'oracle']
    rows = [(n, results[n]) for n in order if n in results]
    table = format_table(rows)
    oracle_hist = Counter(int(a) for r in runs_of['oracle'] for a in r.action)
    total = sum(oracle_hist.values())
    hist_lines = [f'{labels[a]}: {100 * c / total:.1f}%' for a, c in oracle_hist.most_common()]
    print(f'## {label}: {len(test)} traces, {results["oracle"]["steps"]} decisions, '
          f'deadline {reward.deadline_ms:g} ms\n')
    print(table)
    print('oracle action histogram: ' + ', '.join(hist_lines))
    shares = {n: grouped_shares(runs_of[n], lat.actions, profile) for n in ('oracle', 'SAC-d') if n in runs_of}
    for n, sh in shares.items():
        print(f'{n} chooses: {format_shares(sh)}')
    versus = []
    if 'SAC-d' in runs_of:
        versus = per_trace_versus(runs_of['SAC-d'], runs_of[f'best fixed ({labels[fixed]})'])
        below = [v for v in versus if v['margin'] < 0]
        worst = min(versus, key=lambda v: v['margin'])
        print(f'SAC-d vs best fixed per trace: below on {len(below)} of {len(versus)} traces; smallest margin '
              f"{worst['margin']:+.4f} ({worst['trace']})")

    plot_latency_cdf({n: np.concatenate([r.latency_ms for r in runs_of[n]]) for n, _ in rows}, reward.deadline_ms,
                     out / 'latency_cdf.png', f'latency CDF, {label}')
    hists = {'oracle': oracle_hist}
    if 'SAC-d' in runs_of:
        hists['SAC-d (seed of first policy)'] = Counter(int(a) for r in runs_of['SAC-d'] for a in r.action)
    plot_histogram(hists, labels, out / 'oracle_actions.png', f'chosen actions, {label}')
    switches = [int(np.count_nonzero(np.diff(r.action))) for r in runs_of['oracle']]
    k = int(np.argmax(switches))
    shown = {n: runs_of[n][k] for n in ('oracle', 'SAC-d', 'Edgent-style') if n in runs_of}
    plot_decisions(test[k], shown, labels, env.obs_lag_steps, out / 'decisions.png')
    command = ['coinfer-evaluate-policy', *(sys.argv[1:] if argv is None else argv)]
    doc = {'label': label, 'traces': [t.summary() for t in test], 'profile_machine': profile.machine,
           'reward': reward.to_dict(), 'env': env.to_dict(), 'best_fixed_action': labels[fixed],
           'oracle_action_histogram': {labels[a]: c / total for a, c in oracle_hist.most_common()},
           'grouped_choices': shares, 'sacd_vs_best_fixed_per_trace': versus,
           'results': results, 'command': ' '.join(command)}
    (out / 'results.json').write_text(json.dumps(doc, indent=1) + '\n')
    below = sum(v['margin'] < 0 for v in versus)
    (out / 'table.md').write_text(f'## {label}\n\n' + table + '\noracle action histogram: ' + ', '.join(hist_lines)
                                  + '\n' + ''.join(f'\n{n} chooses: {format_shares(sh)}\n' for n, sh in shares.items())
                                  + (f'\nSAC-d below the best fixed action on {below} of {len(versus)} traces\n'
                                     if versus else ''))
    print(f'wrote {out}/results.json, table.md, latency_cdf.png, decisions.png, oracle_actions.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
