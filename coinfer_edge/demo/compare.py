# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The demo's comparison mode: the same link schedule once per policy, one table, comparison plots.

``coinfer-demo --compare`` runs the graph once per :class:`PolicyRun` (SAC-d, fixed splits,
the Edgent-style rule) with the same emulated link schedule, CPU emulation and frames, and
this module turns the per-run frame records into the comparison: measured accuracy against
ground truth, latency p50/p95/p99, deadline hits and the mean reward of the policy's objective
(:class:`~coinfer_edge.core.decision.RewardConfig` of the profile's accuracy of the action each
frame ran and the frame's measured latency), and how fast each policy followed a bandwidth
step (:func:`adaptation_times`).  Pure Python + numpy (matplotlib only in
:func:`write_comparison_plots`); no ROS import.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from coinfer_device.core.action import Action
from coinfer_device.core.link_emulator import BandwidthSchedule
from coinfer_device.core.profile import Profile
from coinfer_device.core.records import FALLBACK_NONE, FALLBACK_WORDS
from coinfer_edge.core.decision import RewardConfig
from coinfer_edge.demo.report import FrameRecord, accuracy, deadline_hit_rate, latency_stats, phases, table
from coinfer_edge.tools import plots
from coinfer_edge.tools.plots import pyplot

DEFAULT_POLICIES = ('sacd', 'device-final', 'device-earliest', 'raw-input', 'best-fixed', 'edgent')
# The policies that react to the measured state, with their table labels.
ADAPTIVE = {'sacd': 'SAC-d', 'edgent': 'Edgent-style', 'neurosurgeon': 'Neurosurgeon-style',
            'rule': 'rule (model search)'}
COMPARISON_PLOTS = ('compare_latency.png', 'compare_decisions.png', 'compare_latency_cdf.png')


class CompareError(ValueError):
    """A policy name of ``--compare`` cannot be run; the message is one line for the user."""


@dataclass(frozen=True)
class PolicyRun:
    """One run of the comparison: its name, a label for tables and the policy node's parameters."""

    name: str
    label: str
    node_params: dict[str, Any] = field(default_factory=dict)

    @property
    def adaptive(self) -> bool:
        """Return whether the policy reacts to the measured state (not a fixed split)."""
        return self.node_params.get('policy') in ADAPTIVE


def policy_runs(names: Sequence[str], profile: Profile, best_fixed: Action | None) -> list[PolicyRun]:
    """Return the runs for ``names`` (:data:`DEFAULT_POLICIES` and ``rule``; ``e2/p5/b8``-style labels fix an action).

    ``best_fixed`` is the SAC-d policy's best fixed action on its training traces (its metadata).
    """
    last = len(profile.branch_points) - 1
    fixed = {'device-final': Action(last, profile.branch_points[last], 0),
             'device-earliest': Action(0, profile.branch_points[0], 0),
             'raw-input': Action(last, 0, 8)}
    if best_fixed is not None:
        fixed['best-fixed'] = best_fixed
    by_label = {a.label(): a for a in profile.actions()}
    runs = []
    for name in names:
        if name in ADAPTIVE:
            runs.append(PolicyRun(name, ADAPTIVE[name], {'policy': name}))
        elif name in fixed or name in by_label:
            action = fixed.get(name) or by_label[name]
            if action not in by_label.values():
                raise CompareError(f'{name} = {action.label()} is not an action of the profile')
            runs.append(PolicyRun(name, f'{name} ({action.label()})' if name in fixed else action.label(),
                                  {'policy': 'fixed', 'fixed_action': action.to_list()}))
        elif name == 'best-fixed':
            raise CompareError('best-fixed needs a SAC-d policy file whose metadata names its best fixed action')
        else:
            raise CompareError(f'unknown policy {name!r} for --compare: one of {", ".join(DEFAULT_POLICIES)}, '
                               f'rule, neurosurgeon, or an action label such as {profile.actions()[0].label()}')
    if len({r.name for r in runs}) != len(runs):
        raise CompareError('--compare lists a policy twice')
    return runs


# --------------------------------------------------------------------------- measures


def frame_rewards(records: Sequence[FrameRecord], reward: RewardConfig,
                  accuracy_of: Callable[[Action], float]) -> np.ndarray:
    """Return each frame's reward: the objective of the profile's accuracy of its action and its measured latency."""
    return np.array([float(reward.reward(accuracy_of(Action(r.exit, r.partition, r.bits)), r.total_ms,
                                         r.deadline_ms or reward.deadline_ms)) for r in records])


def live_metrics(records: Sequence[FrameRecord], reward: RewardConfig,
                 accuracy_of: Callable[[Action], float]) -> dict[str, Any]:
    """Return frames, measured accuracy, latency p50/p95/p99, deadline-hit rate and mean reward of one run."""
    acc, judged = accuracy(records)
    lat = latency_stats(records)
    rewards = frame_rewards(records, reward, accuracy_of)
    return {'frames': len(records), 'judged': judged, 'accuracy': acc, 'p50_ms': lat['p50'], 'p95_ms': lat['p95'],
            'p99_ms': lat['p99'], 'deadline_hit': deadline_hit_rate(records),
            'mean_reward': float(rewards.mean()) if len(rewards) else math.nan,
            'fallback_frames': sum(r.fallback != FALLBACK_WORDS[FALLBACK_NONE] for r in records)}


def settled_decision(decisions: Sequence[tuple[float, str]], start: float, end: float) -> str | None:
    """Return the most frequent decision of the second half of ``[start, end)`` (the regime's choice)."""
    late = [label for t, label in decisions if (start + end) / 2 <= t < end]
    return Counter(late).most_common(1)[0][0] if late else None


def adaptation_times(decisions: Sequence[tuple[float, str]], schedule: BandwidthSchedule,
                     duration_s: float) -> list[dict[str, Any]]:
    """Return, per bandwidth step, how long after it the policy first decided the step's settled choice.

    The settled choice is :func:`settled_decision` of the step; a step whose settled choice equals
    the previous step's needs no adaptation (``seconds`` None, ``changed`` False); a step the policy
    never settled in has ``seconds`` NaN.
    """
    out = []
    steps = phases(schedule, duration_s)
    for (p_start, p_end, p_mbps), (start, end, mbps) in zip(steps, steps[1:]):
        before, after = settled_decision(decisions, p_start, p_end), settled_decision(decisions, start, end)
        row = {'at_s': start, 'from_mbps': p_mbps, 'to_mbps': mbps, 'before': before, 'after': after,
               'changed': before != after, 'seconds': None}
        if before != after:
            first = next((t for t, label in decisions if start <= t < end and label == after), None)
            row['seconds'] = math.nan if first is None else first - start
        out.append(row)
    return out


def worst_adaptation_s(rows: Sequence[dict[str, Any]]) -> float | None:
    """Return the longest adaptation of the steps that needed one (None when none did)."""
    times = [r['seconds'] for r in rows if r['changed']]
    return max(times) if times else None


# --------------------------------------------------------------------------- table and plots


def _cell(value: float | None, fmt: str, scale: float = 1.0) -> str:
    return '-' if value is None or (isinstance(value, float) and math.isnan(value)) else format(value * scale, fmt)


def adaptation_cell(adaptive: bool, seconds: float | None) -> str:
    """Return the "adapts in" cell: ``-`` for a fixed policy, None = no step needed, NaN = did not settle."""
    if not adaptive:
        return '-'
    if seconds is None:
        return 'no step needed'
    return 'did not settle' if math.isnan(seconds) else _cell(seconds, '.1f') + ' s'


def format_comparison(rows: Sequence[tuple[PolicyRun, dict[str, Any]]]) -> str:
    """Return the comparison table (one row per policy) with the best mean reward marked."""
    best = max((m['mean_reward'] for _, m in rows if not math.isnan(m['mean_reward'])), default=math.nan)
    header = ('policy', 'frames', 'accuracy', 'p50 ms', 'p95 ms', 'p99 ms', 'deadline hits', 'mean reward',
              'adapts in')
    body = []
    for run, m in rows:
        adapt = m.get('adaptation_s')
        body.append((run.label + (' *' if m['mean_reward'] == best else ''), str(m['frames']),
                     _cell(m['accuracy'], '.3f'), _cell(m['p50_ms'], '.1f'), _cell(m['p95_ms'], '.1f'),
                     _cell(m['p99_ms'], '.1f'), _cell(m['deadline_hit'], '.1f', 100) + ' %',
                     _cell(m['mean_reward'], '.4f'), adaptation_cell(run.adaptive, adapt)))
    return (table(header, body, [False] + [True] * (len(header) - 1))
            + '\n* = best mean reward. Reward = the policy objective of the profile accuracy of the action each frame '
              'ran and its measured latency; "adapts in" = the longest time from a bandwidth step to the first '
              "decision of the step's settled choice.")


RunRecords = tuple[PolicyRun, Sequence[FrameRecord], Sequence[tuple[float, str]]]


def write_comparison_plots(out: Path, runs: Sequence[RunRecords],
                           schedule: BandwidthSchedule, duration_s: float, deadline_ms: float) -> list[Path]:
    """Write latency over time (bandwidth under it), decisions over time and latency CDFs per policy."""
    plt = pyplot()
    paths = [out / name for name in COMPARISON_PLOTS]
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    ph = phases(schedule, duration_s)
    fig, (ax, bw) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=(3, 1), layout='constrained')
    for i, (run, records, _) in enumerate(runs):
        ax.plot([r.t_s for r in records], [r.total_ms for r in records], '.', markersize=2.5,
                color=colours[i % len(colours)], label=run.label)
    ax.axhline(deadline_ms, color='tab:red', linestyle='--', linewidth=1, label=f'deadline {deadline_ms:g} ms')
    ax.set_yscale('log')
    ax.set_ylabel('end-to-end latency [ms]')
    ax.set_title('Per-frame latency of every policy over the same link schedule')
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    bw.step([p[0] for p in ph] + [ph[-1][1]], [p[2] for p in ph] + [ph[-1][2]], where='post', color='black')
    bw.set_yscale('log')
    bw.set_ylabel('link [Mbit/s]')
    bw.set_xlabel('time [s]')
    bw.set_xlim(0, duration_s)
    plots.save(fig, paths[0], tight=False)

    labels = sorted({label for _, _, decisions in runs for _, label in decisions}
                    | {r.action for _, records, _ in runs for r in records})
    row = {label: i for i, label in enumerate(labels)}
    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 1.0 + 0.25 * max(len(labels), 2) * len(runs)), sharex=True,
                             layout='constrained', squeeze=False)
    for ax, (run, records, _) in zip(axes[:, 0], runs):
        ax.scatter([r.t_s for r in records], [row[r.action] for r in records], s=4, color='tab:gray')
        for start, _, _ in ph:
            ax.axvline(start, color='0.8', linewidth=0.8, zorder=0)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_ylabel(run.label, fontsize=7, rotation=0, ha='right', va='center')
    axes[-1, 0].set_xlabel('time [s]')
    axes[-1, 0].set_xlim(0, duration_s)
    axes[0, 0].set_title('Action each frame ran, per policy (grey lines: bandwidth steps)')
    plots.save(fig, paths[1], tight=False)

    fig, ax = plt.subplots(figsize=(7, 4), layout='constrained')
    for i, (run, records, _) in enumerate(runs):
        lat = np.sort([r.total_ms for r in records])
        if len(lat):
            ax.plot(lat, np.arange(1, len(lat) + 1) / len(lat), color=colours[i % len(colours)], label=run.label)
    ax.axvline(deadline_ms, color='tab:red', linestyle='--', linewidth=1)
    ax.set_xscale('log')
    ax.set_xlabel('end-to-end latency [ms]')
    ax.set_ylabel('share of frames')
    ax.set_title('Latency CDF per policy')
    ax.legend(fontsize=8)
    plots.save(fig, paths[2], tight=False)
    return paths
