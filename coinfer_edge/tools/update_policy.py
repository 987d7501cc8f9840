# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
r"""``coinfer-update-policy``: install a new policy only if it does at least as well on held-out recorded conditions.

The safe field update (docs/bags.md): the candidate (e.g. from ``coinfer-train-policy --fine-tune``)
and the current policy are evaluated as ``coinfer-evaluate-policy`` does, in the trace-driven
simulator on the conditions recorded in ``--held-out`` bags, with the same traces and the same
measurement-noise seeds (``--seeds``).  If the candidate's mean reward is at least the current
one's, it is written to ``--install`` (the file the robot's ``policy_path`` points to; weights and
metadata each written to a temporary name and renamed); otherwise nothing is written and the tool
says why.  It never writes into the package's shipped assets.

Judge: the profile ``--profile`` (the robot's, e.g. refreshed with ``coinfer-profile --from-bag``),
the candidate's simulator settings (its latency settings go with that profile) and the reward both
policies share; policies trained for different rewards are refused.  The held-out bags must not be
among the candidate's training traces.  Exit status: 0 installed, 3 kept the current policy,
2 error.

Example::

    coinfer-update-policy --candidate runs/robot/sacd_policy.safetensors --profile robot_profile.json \
        --held-out bags/run3 bags/run4 --install ~/coinfer/policy.safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from coinfer_device.core.bags import BagError
from coinfer_device.core.paths import assets_dir
from coinfer_device.core.profile import Profile, ProfileError
from coinfer_device.core.sidecar import metadata_path
from coinfer_edge.core.decision import LatencyModel, RewardConfig
from coinfer_edge.core.policy import WEIGHTS_SUFFIX, PolicyError, TrainedPolicy, default_policy_path
from coinfer_edge.core.recorded import ExtractError
from coinfer_edge.core.simulator import EnvConfig, oracle_decider, rollout
from coinfer_edge.core.traces import Trace
from coinfer_edge.tools.bag_inputs import traces_from_bags
from coinfer_edge.tools.evaluate_policy import metrics

PROG = 'coinfer-update-policy'
EXIT_INSTALLED, EXIT_KEPT, EXIT_ERROR = 0, 3, 2


class UpdateError(RuntimeError):
    """The comparison cannot be made fairly or the target is not allowed; one line for the user."""


def shipped_dirs() -> list[Path]:
    """Return the folders of the package's shipped assets (never written by an update)."""
    return [assets_dir('coinfer_edge').resolve(), assets_dir('coinfer_device').resolve()]


def check_target(path: Path) -> None:
    """Refuse a target that is not a ``.safetensors`` file outside the shipped assets."""
    if path.suffix != WEIGHTS_SUFFIX:
        raise UpdateError(f'--install must be a {WEIGHTS_SUFFIX} file (the robot\'s policy_path), got {path}')
    resolved = path.resolve()
    for d in shipped_dirs():
        if resolved.is_relative_to(d):
            raise UpdateError(f'{path} is in the package\'s shipped assets ({d}); install to a file of your own and '
                              'point the policy node\'s policy_path at it')


def short(path: Path) -> str:
    """Return ``folder/name`` of a policy path (enough to tell the compared files apart)."""
    return f'{path.parent.name}/{path.name}' if path.parent.name else path.name


def evaluate(policy: TrainedPolicy | None, profile: Profile, traces: Sequence[Trace], reward: RewardConfig,
             env: EnvConfig, seeds: Sequence[int]) -> dict[str, Any]:
    """Return :func:`metrics` pooled over ``seeds`` (``policy`` None = the oracle) plus the per-seed rewards."""
    if policy is None:
        rule = oracle_decider(reward, LatencyModel(profile, env.latency).accuracy)
    else:
        rule = policy.decider()
    runs = [rollout(rule, profile, traces, reward, env, seed=s) for s in seeds]
    m = metrics([r for run in runs for r in run])
    m['per_seed_reward'] = [float(np.mean(np.concatenate([r.reward for r in run]))) for run in runs]
    return m


def format_comparison(rows: dict[str, dict[str, Any]]) -> str:
    """Return the markdown table of the comparison."""
    oracle = rows['oracle']['reward']
    lines = ['| policy | mean reward | % of oracle | accuracy | mean latency ms | p95 latency ms | miss rate % |',
             '|---|---|---|---|---|---|---|']
    for name, m in rows.items():
        lines.append(f"| {name} | {m['reward']:.4f} | {100 * m['reward'] / oracle:.1f} | {m['accuracy']:.4f} | "
                     f"{m['latency_ms']:.2f} | {m['p95_latency_ms']:.2f} | {100 * m['miss_rate']:.1f} |")
    return '\n'.join(lines)


def install(candidate: TrainedPolicy, target: Path, record: dict[str, Any]) -> None:
    """Write the candidate's weights and metadata to ``target`` (temporary names, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(candidate.metadata, weights_file=target.name, field_update=record)
    tmp_weights = target.with_name(target.name + '.tmp')
    tmp_meta = metadata_path(target).with_name(metadata_path(target).name + '.tmp')
    shutil.copyfile(candidate.path, tmp_weights)
    tmp_meta.write_text(json.dumps(meta, indent=1) + '\n')
    os.replace(tmp_weights, target)
    os.replace(tmp_meta, metadata_path(target))


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--candidate', required=True, type=Path, help='the new policy (.safetensors with its .json)')
    p.add_argument('--install', required=True, type=Path, help="where the robot's policy_path points")
    p.add_argument('--current', type=Path, default=None,
                   help='the policy the robot runs now (default: --install if it exists, else the shipped one)')
    p.add_argument('--held-out', nargs='+', required=True, type=Path, metavar='BAG',
                   help='recorded bags the candidate was not trained on')
    p.add_argument('--profile', default=None, help='the robot\'s profile (default: shipped)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='measurement-noise seeds of the rollouts')
    return p


def update(args: argparse.Namespace) -> int:
    """Compare, decide and install (or not); return the exit status."""
    check_target(args.install)
    current_path = args.current or (args.install if args.install.is_file() else default_policy_path())
    profile = Profile.load(args.profile)
    candidate = TrainedPolicy.load(args.candidate, profile)
    current = TrainedPolicy.load(current_path, profile, check_profile=False)
    if candidate.metadata['reward'] != current.metadata['reward']:
        raise UpdateError(f'the candidate was trained for reward {candidate.metadata["reward"]}, the current policy '
                          f'for {current.metadata["reward"]}: not the same job, so no automatic replacement')
    reward = RewardConfig.from_dict(candidate.metadata['reward'])
    env = EnvConfig.from_dict(candidate.metadata['env'])
    traces = traces_from_bags(args.held_out, env.dt_s, env.latency)
    trained_on = {t['name'] for t in candidate.metadata.get('training', {}).get('train_traces', [])}
    leaked = sorted(trained_on & {t.name for t in traces})
    if leaked:
        raise UpdateError(f'held-out conditions {leaked} were used to train the candidate; hold out other bags')
    rows = {'oracle': evaluate(None, profile, traces, reward, env, args.seeds),
            f'current ({short(current_path)})': evaluate(current, profile, traces, reward, env, args.seeds),
            f'candidate ({short(args.candidate)})': evaluate(candidate, profile, traces, reward, env, args.seeds)}
    cur, cand = list(rows.values())[1]['reward'], list(rows.values())[2]['reward']
    print(f'## held-out: {", ".join(t.name for t in traces)}; {rows["oracle"]["steps"]} decisions per policy '
          f'({len(args.seeds)} seeds); deadline {reward.deadline_ms:g} ms\n\n{format_comparison(rows)}\n', flush=True)
    record = {'candidate': str(args.candidate), 'replaced': str(current_path),
              'held_out': [str(b) for b in args.held_out], 'seeds': list(args.seeds), 'candidate_reward': cand,
              'current_reward': cur}
    if cand >= cur:
        install(candidate, args.install, record)
        print(f'installed {args.candidate} as {args.install}: mean reward {cand:.4f} >= current {cur:.4f}')
        return EXIT_INSTALLED
    print(f'kept {current_path}: the candidate scored {cand:.4f} < {cur:.4f} (current) on the held-out conditions; '
          f'{args.install} was not changed')
    return EXIT_KEPT


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool."""
    args = build_parser().parse_args(argv)
    try:
        return update(args)
    except (UpdateError, PolicyError, ProfileError, BagError, ExtractError) as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr, flush=True)
        return EXIT_ERROR


if __name__ == '__main__':
    sys.exit(main())
