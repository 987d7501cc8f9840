# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The experiment's report, regenerated from its bags: ``coinfer-experiment-report RUNS [--out docs/results.md]``.

Every run folder of :mod:`coinfer_edge.demo.experiment` (``r<round>/<policy>/``) holds ``run.json``
(scenario, start time, the robot's calibration, the device's frame counters) and ``bag/``.  From
them this module computes, per policy over all its rounds: measured accuracy against the camera's
ground truth, latency p50/p95/p99, deadline hits, the mean reward of the policy objective (mean and
spread over the rounds, and SAC-d against every other policy round by round), the mean reward per
scenario step; for fixed remote actions the ratio of the
measured end-to-end latency to the physical sum (head compute + payload bits / shaped rate + RTT +
tail compute); and the frame accounting (every camera frame: a result or a counted reason).
No ROS import: bags are read with ``rosbags``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from coinfer_device.core import bags
from coinfer_device.core.link_emulator import BandwidthSchedule
from coinfer_device.core.profile import Profile
from coinfer_device.core.recording import Streams, load_recording
from coinfer_edge.core.decision import RewardConfig
from coinfer_edge.core.policy import PolicyObjective
from coinfer_edge.demo.compare import (COMPARISON_PLOTS, PolicyRun, adaptation_cell, adaptation_times, frame_rewards,
                                       live_metrics, worst_adaptation_s, write_comparison_plots)
from coinfer_edge.demo.report import FrameRecord, fmt_num, fmt_pct, frame_records, table

PROG = 'coinfer-experiment-report'
RUN_JSON = 'run.json'
STEADY_AFTER_S = 2.0  # a step's first seconds are the transition: the physical-sum ratio uses the rest
MEMORY_MIN_S = 120.0  # shorter runs have no steady state to report memory growth over
# Where a remote frame's time beyond the physical sum goes (medians, ms): device work besides the model (image
# conversion, encoding, publication, the CPU quota's waits), link time besides serialization and RTT (DDS,
# executors, queueing), edge work besides the model (decoding, hand-offs), and the rest (the frame's wait for
# the worker, the result's publication).
OVERHEAD_PARTS = ('device_extra_ms', 'link_extra_ms', 'edge_extra_ms', 'other_ms')


@dataclass
class Run:
    """One policy's run: its ``run.json``, the frames it answered and the decisions it took."""

    doc: dict[str, Any]
    policy: PolicyRun
    records: list[FrameRecord]
    decisions: list[tuple[float, str]]
    streams: Streams

    @property
    def schedule(self) -> BandwidthSchedule:
        """Return the link rates of the scenario as a schedule, one value per step."""
        return BandwidthSchedule(tuple(s['mbps'] for s in self.doc['steps']), self.doc['step_s'], loop=False)

    @property
    def duration_s(self) -> float:
        """Return how long the scenario ran."""
        planned = len(self.doc['steps']) * self.doc['step_s']
        return min(float(self.doc.get('ran_s') or planned), planned)

    def step_at(self, t_s: float) -> dict[str, Any]:
        """Return the scenario step in force ``t_s`` seconds after the start."""
        steps = self.doc['steps']
        return steps[min(max(int(t_s // self.doc['step_s']), 0), len(steps) - 1)]


def load_run(folder: Path) -> Run:
    """Read one run folder (``run.json`` and its bag) into frame records relative to the scenario's start."""
    doc = json.loads((folder / RUN_JSON).read_text())
    if 't0_ns' not in doc:
        raise ValueError(f'{folder}: the run did not start its scenario (no t0_ns in {RUN_JSON})')
    recording = load_recording(Path(doc['bag']) if Path(doc['bag']).exists() else folder / 'bag')
    s = recording.streams.get('/') or Streams('/')
    t0 = doc['t0_ns']
    schedule = BandwidthSchedule(tuple(st['mbps'] for st in doc['steps']), doc['step_s'], loop=False)
    records = frame_records([(t_ns / 1e9, stamp, r) for (t_ns, r), stamp in zip(s.results, s.result_stamps)],
                            s.ground_truth, t0 / 1e9, schedule,
                            [(t_ns / 1e9, v) for t_ns, v in s.scalars[bags.BANDWIDTH]])
    decisions = [((t_ns - t0) / 1e9, a.label()) for t_ns, a in s.decisions]
    policy = PolicyRun(doc['policy'], doc['label'], doc['node_params'])
    return Run(doc, policy, records, decisions, s)


def in_scenario(run: Run) -> list[FrameRecord]:
    """Return the frames answered while the scenario ran."""
    return [r for r in run.records if 0.0 <= r.t_s <= run.duration_s]


def step_details(runs: Sequence[Run], reward: RewardConfig, profile: Profile) -> list[dict[str, Any]]:
    """Return per scenario step, over the frames of all ``runs`` (one policy's rounds), what the step table shows.

    That is: frames, share answered on the device, deadline hits, p95 latency, mean reward and the
    most frequent actions.
    """
    scored = [(run, r, x) for run in runs
              for r, x in zip(in_scenario(run), frame_rewards(in_scenario(run), reward, profile.accuracy_of))]
    out = []
    doc = runs[0].doc
    for i, step in enumerate(doc['steps']):
        lo, hi = i * doc['step_s'], (i + 1) * doc['step_s']
        chosen = [(r, x) for _, r, x in scored if lo <= r.t_s < hi]
        lat = [r.total_ms for r, _ in chosen]
        out.append({'step': step['name'], 'frames': len(chosen),
                    'local': float(np.mean([r.source == 'device' for r, _ in chosen])) if chosen else math.nan,
                    'hits': float(np.mean([r.deadline_met for r, _ in chosen])) if chosen else math.nan,
                    'p95_ms': float(np.percentile(lat, 95)) if lat else math.nan,
                    'reward': float(np.mean([x for _, x in chosen])) if chosen else math.nan,
                    'actions': ', '.join(f'{a} {n}' for a, n in Counter(r.action for r, _ in chosen).most_common(3))})
    return out


def recovery_s(run: Run) -> list[dict[str, Any]]:
    """Return, for every step that follows a link cut, when the robot heard the edge again and got an edge result.

    ``answer_s``: the first answer of the edge (a probe's or a frame's, ``coinfer/edge_result``) the
    recorder on the robot received after the link came back; ``result_s``: the first frame result
    computed on the edge (None while the policy keeps every frame on the device).
    """
    out = []
    steps, t0 = run.doc['steps'], run.doc['t0_ns']
    answers = sorted((t_ns - t0) / 1e9 for t_ns, _ in run.streams.edge_results)
    for i in range(1, len(steps)):
        if steps[i - 1].get('link_up', True) or not steps[i].get('link_up', True):
            continue
        start = i * run.doc['step_s']
        answer = next((t for t in answers if t >= start), None)
        result = next((r.t_s for r in run.records if r.source == 'edge' and r.t_s >= start), None)
        out.append({'step': steps[i]['name'], 'answer_s': None if answer is None else answer - start,
                    'result_s': None if result is None else result - start})
    return out


def rss_growth(run: Run, warmup_s: float) -> dict[str, dict[str, float]]:
    """Return per node: RSS [MB] at the first sample after ``warmup_s``, at the end, and the growth in %."""
    samples = [row for row in run.doc.get('rss_mb') or [] if row['t_s'] >= warmup_s]
    if len(samples) < 2:
        return {}
    out = {}
    for label in samples[0]:
        if label == 't_s' or label not in samples[-1]:
            continue
        a, b = samples[0][label], samples[-1][label]
        out[label] = {'start_mb': a, 'end_mb': b, 'max_mb': max(row.get(label, 0.0) for row in samples),
                      'growth_pct': 100.0 * (b - a) / a}
    return out


def physical_ratios(run: Run) -> list[dict[str, Any]]:
    """Return, per step, the median of measured / physical latency of the steady-state remote frames.

    Physical sum = head compute (measured on the throttled device) + payload bits / shaped rate + RTT
    + tail compute (measured on the edge): what the frame would take with no framework in the way.
    ``link_load`` is the offered load (payload bits x camera rate / link rate): at 1 or more the link
    cannot carry every frame, frames queue, and the ratio measures the queue, not the framework.
    ``device_load`` is the same for the robot's inference thread (device time x camera rate): at 1 or
    more a frame waits for the previous one's head.
    """
    out = []
    for i, step in enumerate(run.doc['steps']):
        if step.get('trace_mbps'):  # the rate changes within the step: no steady state
            continue
        lo, hi = i * run.doc['step_s'] + STEADY_AFTER_S, (i + 1) * run.doc['step_s']
        ratios, totals, physical, sizes, parts, device = [], [], [], [], [], []
        for r, (_, raw) in zip(run.records, run.streams.results):
            if r.source != 'edge' or not lo <= r.t_s < min(hi, run.duration_s):
                continue
            phys = (raw.device_compute_ms + 8.0 * r.payload_bytes / (step['mbps'] * 1e3) + step['rtt_ms']
                    + raw.edge_compute_ms)
            ratios.append(r.total_ms / phys)
            totals.append(r.total_ms)
            physical.append(phys)
            sizes.append(r.payload_bytes)
            device.append(r.device_ms)
            serialization = 8.0 * r.payload_bytes / (step['mbps'] * 1e3)
            parts.append((r.device_ms - raw.device_compute_ms, r.transfer_ms - serialization - step['rtt_ms'],
                          r.edge_ms - raw.edge_compute_ms, r.total_ms - r.device_ms - r.transfer_ms - r.edge_ms))
        if ratios:
            offered = 8.0 * float(np.median(sizes)) * run.doc['rate_hz'] / (step['mbps'] * 1e6)
            out.append({'step': step['name'], 'mbps': step['mbps'], 'rtt_ms': step['rtt_ms'], 'frames': len(ratios),
                        'link_load': offered, 'device_load': float(np.median(device)) * run.doc['rate_hz'] / 1e3,
                        **dict(zip(OVERHEAD_PARTS, np.median(np.array(parts), axis=0))),
                        'measured_ms': float(np.median(totals)), 'physical_ms': float(np.median(physical)),
                        'ratio': float(np.median(ratios))})
    return out


def pooled_physical_ratios(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Return :func:`physical_ratios` over one fixed action's rounds: per step the median of the rounds' values."""
    per_step: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for row in physical_ratios(run):
            per_step.setdefault(row['step'], []).append(row)
    out = []
    for rows in per_step.values():
        merged = {k: float(np.median([r[k] for r in rows]))
                  for k in ('link_load', 'device_load', 'measured_ms', 'physical_ms', 'ratio', *OVERHEAD_PARTS)}
        ratios = sorted(r['ratio'] for r in rows)
        merged.update(step=rows[0]['step'], mbps=rows[0]['mbps'], rtt_ms=rows[0]['rtt_ms'],
                      frames=sum(r['frames'] for r in rows),
                      ratio_range=f'{ratios[0]:.2f}-{ratios[-1]:.2f}' if len(ratios) > 1 else '-')
        out.append(merged)
    return out


def robot_sentence(runs: Sequence[Run]) -> str:
    """Return how the robot's CPU was set in these runs (calibrated factor and measured time, or fixed factor)."""
    cals = [run.doc.get('robot_calibration') for run in runs]
    cpus = runs[0].doc.get('robot_cpus')
    core = f'alone on core {",".join(map(str, cpus))}' if cpus else 'sharing the cores with every other process'
    if all(cals):
        ks = [c['slowdown'] for c in cals]
        measured = [c['measured_ms'] for c in cals]
        return (f'the device node runs {core}, in a cgroup CPU quota calibrated before every run so that the full '
                f'network takes the policy\'s Pi time, {cals[0]["target_ms"]:.1f} ms per frame (measured '
                f'{min(measured):.1f}-{max(measured):.1f} ms at k = {min(ks):.2f}-{max(ks):.2f})')
    return f'the device node runs {core}, in a cgroup CPU quota {runs[0].doc["device_factor"]:.2f}x slower'


def accounting(run: Run) -> dict[str, Any]:
    """Return the frame accounting of a run: camera frames, results, and the device's counted reasons."""
    counts = run.doc.get('device_counts') or {}
    results = len(run.streams.results)
    reasons = {k: counts.get(k, 0) for k in ('dropped_busy', 'rejected_images', 'camera_frames_lost',
                                             'camera_frames_missed_at_start', 'in_flight')}
    received = counts.get('camera_frames_received')
    return {'camera_frames': counts.get('camera_frames'), 'received': received, 'frames_in': counts.get('frames_in'),
            'processed': counts.get('processed'), 'results_recorded': results,
            'results_sent': counts.get('results_local', 0) + counts.get('results_edge', 0), **reasons}


def unaccounted_frames(acc: dict[str, Any]) -> int:
    """Return how many frames have neither a result nor a counted reason (0 when the books balance).

    ``frames_in = processed + dropped_busy + rejected_images + (at most one waiting in the mailbox at
    the stop)``, ``processed = results + in_flight + (at most one being computed at the stop)``, and
    every result the device sent must be in the bag.
    """
    frames_in, processed = acc['frames_in'] or 0, acc['processed'] or 0
    waiting = frames_in - processed - acc['dropped_busy'] - acc['rejected_images']
    computing = processed - acc['results_sent'] - acc['in_flight']
    return (max(waiting - 1, 0) + max(-waiting, 0) + max(computing - 1, 0) + max(-computing, 0)
            + abs(acc['results_sent'] - acc['results_recorded']))


def load_runs(folder: Path) -> list[Run]:
    """Return every run under ``folder`` (``r<round>/<policy>/``, in the order they ran)."""
    runs = [load_run(p.parent) for p in sorted(folder.rglob(RUN_JSON))]
    if not runs:
        raise FileNotFoundError(f'no runs ({RUN_JSON}) under {folder}')
    return sorted(runs, key=lambda r: r.doc.get('t0_ns', 0))


def by_policy(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Return the runs grouped by policy, policies in the order they first ran, each policy's rounds in order."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.policy.name, []).append(run)
    return groups


def round_rewards(runs: Sequence[Run], reward: RewardConfig, profile: Profile) -> dict[int, float]:
    """Return one policy's mean reward per round."""
    return {run.doc.get('repeat', 1): live_metrics(in_scenario(run), reward, profile.accuracy_of)['mean_reward']
            for run in runs}


def policy_summary(groups: dict[str, list[Run]], rewards: dict[str, dict[int, float]], reward: RewardConfig,
                   profile: Profile) -> str:
    """Return the per-policy table over all rounds: pooled frames, mean reward per round (mean, sd, range).

    ``rewards`` is every policy's :func:`round_rewards`.
    """
    rows = []
    for name, runs in groups.items():
        pooled = live_metrics([r for run in runs for r in in_scenario(run)], reward, profile.accuracy_of)
        adapt = [worst_adaptation_s(adaptation_times(run.decisions, run.schedule, run.duration_s)) for run in runs]
        rows.append((runs[0].policy, pooled, list(rewards[name].values()), adapt))
    best = max(float(np.mean(r)) for _, _, r, _ in rows)
    body = []
    for policy, m, per_round, adapt in rows:
        mean = float(np.mean(per_round))
        spread = (f'{np.std(per_round, ddof=1):.4f}' if len(per_round) > 1 else '-')
        settled = [a for a in adapt if a is not None]
        worst = None if not settled else math.nan if any(math.isnan(a) for a in settled) else max(settled)
        body.append((policy.label + (' *' if mean == best else ''), str(len(per_round)),
                     str(round(m['frames'] / len(per_round))), fmt_num(m['accuracy'], '.3f'),
                     fmt_num(m['p50_ms'], '.1f'), fmt_num(m['p95_ms'], '.1f'), fmt_num(m['p99_ms'], '.1f'),
                     fmt_pct(m['deadline_hit']), f'{mean:.4f}', spread,
                     f'{min(per_round):.4f}-{max(per_round):.4f}', adaptation_cell(policy.adaptive, worst)))
    return (table(('policy', 'rounds', 'frames per round', 'accuracy', 'p50 ms', 'p95 ms', 'p99 ms', 'deadline hits',
                   'mean reward', 'sd over rounds', 'range over rounds', 'adapts in'),
                  body, [False] + [True] * 10 + [False])
            + '\n\n* = best mean reward (the mean of the rounds\' mean rewards). Accuracy, latency and deadline hits '
              'pool the frames of all rounds. Reward = the policy objective of the profile accuracy of the action '
              'each frame ran and its measured latency; "adapts in" = the longest time, over the rounds, from a '
              "bandwidth step to the first decision of the step's settled choice.")


def head_to_head(groups: dict[str, list[Run]], rewards: dict[str, dict[int, float]],
                 contender: str = 'sacd') -> list[dict[str, Any]]:
    """Return ``contender`` against every other policy, paired by round: rounds won, mean and worst difference.

    ``rewards`` is every policy's :func:`round_rewards`.
    """
    if contender not in groups:
        return []
    mine = rewards[contender]
    out = []
    for name, runs in groups.items():
        if name == contender:
            continue
        theirs = rewards[name]
        diffs = [mine[k] - theirs[k] for k in sorted(mine.keys() & theirs.keys())]
        if diffs:
            out.append({'policy': runs[0].policy.label, 'rounds': len(diffs), 'won': sum(d > 0 for d in diffs),
                        'mean_diff': float(np.mean(diffs)), 'worst_diff': min(diffs)})
    return out


def write_report(folder: Path, report: Path, profile: Profile | None = None) -> Path:
    """Write the markdown report of the runs under ``folder`` (and its plots beside it, in ``img/``)."""
    runs = load_runs(folder)
    groups = by_policy(runs)
    first = runs[0].doc
    profile = profile or Profile.load(first['profile'])
    reward = PolicyObjective.read(first['policy_file']).reward
    steps = first['steps']
    rounds = max(len(g) for g in groups.values())
    details = {name: step_details(group, reward, profile) for name, group in groups.items()}
    rewards = {name: round_rewards(group, reward, profile) for name, group in groups.items()}
    lines = [
        '# Results: every policy end to end on two emulated hosts',
        '',
        f'Generated by `{PROG} {folder}` from the bags of `coinfer-experiment` '
        f'({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC). Robot and workstation are two network namespaces; '
        f'the link between them is shaped by `tc tbf` and delayed by the TUN delay line; {robot_sentence(runs)} '
        f'([testbed.md](testbed.md)). Camera {first["rate_hz"]:g} Hz, deadline {reward.deadline_ms:g} ms, '
        f'{len(groups)} policies, {rounds} round{"s" if rounds > 1 else ""} over them (in each round every policy '
        f'runs once, in the same order), each run the same scenario of {len(steps)} steps of {first["step_s"]:g} s:',
        '',
        table(('step', 'link Mbit/s', 'RTT ms', 'robot CPU load', 'edge CPU load'),
              [(s['name'], ('cut' if not s.get('link_up', True) else f'{s["mbps"]:.3g} (trace mean)'
                            if s.get('trace_mbps') else f'{s["mbps"]:g}'), f'{s["rtt_ms"]:g}',
                f'{s["device_load"]:g}', f'{s.get("edge_load", 0.0):g}') for s in steps],
              [False, True, True, True, True]),
        '',
        '## Per policy',
        '',
        policy_summary(groups, rewards, reward, profile),
        '',
    ]
    duels = head_to_head(groups, rewards)
    if duels:
        lines += ['SAC-d against every other policy, round by round (the runs of one round are minutes apart):', '',
                  table(('policy', 'rounds SAC-d earned more', 'mean difference', 'smallest difference'),
                        [(d['policy'], f"{d['won']} of {d['rounds']}", f"{d['mean_diff']:+.4f}",
                          f"{d['worst_diff']:+.4f}") for d in duels]), '']
    lines += [
        '## Mean reward per step',
        '',
        'Over the frames of all rounds.',
        '',
        table(('policy',) + tuple(s['name'] for s in steps),
              [(group[0].policy.label,) + tuple(fmt_num(d['reward'], '.3f') for d in details[name])
               for name, group in groups.items()],
              [False] + [True] * len(steps)),
        '',
        '## Measured latency over the physical sum (fixed remote actions, steady state)',
        '',
        'Physical sum = head compute on the throttled device + payload bits / shaped rate + RTT + tail compute on '
        f'the edge (all measured per frame); frames from {STEADY_AFTER_S:g} s after a step start; medians.',
        '',
    ]
    phys_rows = [(group[0].policy.label, r['step'], f'{r["mbps"]:g}', f'{r["rtt_ms"]:g}', f'{r["link_load"]:.2f}',
                  f'{r["device_load"]:.2f}', str(r['frames']), f'{r["measured_ms"]:.1f}', f'{r["physical_ms"]:.1f}',
                  f'{r["ratio"]:.2f}', r['ratio_range']) + tuple(f'{r[k]:.1f}' for k in OVERHEAD_PARTS)
                 for group in groups.values() if group[0].policy.node_params.get('policy') == 'fixed'
                 for r in pooled_physical_ratios(group)]
    lines += [table(('action', 'step', 'Mbit/s', 'RTT ms', 'link load', 'device load', 'frames', 'measured ms',
                     'physical ms', 'ratio', 'ratio per round', 'device extra', 'link extra', 'edge extra', 'other'),
                    phys_rows, [False, False] + [True] * 8 + [False] + [True] * 4)
              if phys_rows else 'No fixed remote action ran.',
              '', 'Per action and step: the median over the rounds of each round\'s median (frames: all rounds). '
              'Link load = payload bits x camera rate / link rate: from 1 on the link cannot carry every frame and '
              'the ratio measures the queue; device load = the device\'s time per frame x camera rate: from 1 on a '
              'frame waits for the previous one\'s head (in *other*). Where the rest goes (medians, ms): '
              '*device extra* = device time besides the model (image conversion, encoding, publication, the CPU '
              'quota\'s waits); *link extra* = round trip besides serialization and RTT (DDS, executors, queueing); '
              '*edge extra* = edge time besides the model (decoding, hand-offs); *other* = the frame\'s wait for the '
              'device worker and the rest.', '']
    acc_rows = []
    for run in runs:
        a = accounting(run)
        acc_rows.append((run.policy.label, str(run.doc.get('repeat', 1)), str(a['camera_frames']),
                         str(a['frames_in']), str(a['results_sent']),
                         str(a['results_recorded']), str(a['dropped_busy']), str(a['camera_frames_lost']),
                         str(a['camera_frames_missed_at_start']), str(a['in_flight']), str(unaccounted_frames(a))))
    lines += ['## Frame accounting', '',
              'Per run, from the device node\'s counters (logged when it stops) and the bag: frames the camera '
              'announced, frames the device took in, results it sent and the bag holds, and the counted reasons for '
              'the rest.', '',
              table(('policy', 'round', 'camera frames', 'device in', 'results sent', 'in bag', 'dropped (busy)',
                     'lost on the way', 'missed at start', 'in flight at stop', 'unaccounted'),
                    acc_rows, [False] + [True] * 10), '']
    for name, group in groups.items():
        if not group[0].policy.adaptive:
            continue
        lines += [f'## {group[0].policy.label}, step by step', '', 'Over the frames of all rounds.', '',
                  table(('step', 'frames', 'on device', 'deadline hits', 'p95 ms', 'mean reward',
                         'most frequent actions'),
                        [(d['step'], str(d['frames']), fmt_pct(d['local']), fmt_pct(d['hits']),
                          fmt_num(d['p95_ms'], '.1f'), fmt_num(d['reward'], '.3f'), d['actions'])
                         for d in details[name]],
                        [False, True, True, True, True, True, False]), '']
        recoveries = [(run.doc.get('repeat', 1), r) for run in group for r in recovery_s(run)]
        if recoveries:
            lines += ['After the link came back (' + '; '.join(
                f"round {k}, {r['step']}: the robot heard the edge again after {fmt_num(r['answer_s'], '.2f')} s, "
                f"the first frame result computed on the edge came after {fmt_num(r['result_s'], '.2f')} s"
                for k, r in recoveries) + ').', '']
    warmup = round(min(60.0, runs[0].duration_s / 4))
    rss_rows = [(run.policy.label, label, f"{g['start_mb']:.1f}", f"{g['end_mb']:.1f}", f"{g['max_mb']:.1f}",
                 f"{g['growth_pct']:+.1f} %") for run in runs if run.duration_s >= MEMORY_MIN_S
                for label, g in rss_growth(run, warmup).items()]
    if rss_rows:
        lines += ['## Memory', '', f'Resident memory of every node process, sampled every few seconds; from '
                  f'{warmup:g} s (after warm-up) to the end of the run.', '',
                  table(('policy', 'node', f'RSS at {warmup:g} s MB', 'RSS at end MB', 'max MB', 'growth'), rss_rows,
                        [False, False, True, True, True, True]), '']
    img = report.parent / 'img'
    img.mkdir(parents=True, exist_ok=True)
    first_round = [group[0] for group in groups.values()]
    written = write_comparison_plots(folder, [(r.policy, in_scenario(r), r.decisions) for r in first_round],
                                     runs[0].schedule, runs[0].duration_s, reward.deadline_ms)
    names = []
    for path, name in zip(written, COMPARISON_PLOTS):
        target = img / f'results_{name}'
        shutil.copyfile(path, target)
        names.append(target.name)
    lines += ['## Plots', '', 'From the first round.' if rounds > 1 else '', '']
    lines += [f'![{n}](img/{n})' for n in names] + ['']
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text('\n'.join(lines))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``coinfer-experiment-report``."""
    p = argparse.ArgumentParser(prog=PROG, description='Regenerate the experiment report from its bags.')
    p.add_argument('runs', type=Path, help='the runs folder of coinfer-experiment (one sub-folder per policy)')
    p.add_argument('--out', type=Path, default=None, help='report file (default RUNS/results.md)')
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        path = write_report(args.runs, args.out or args.runs / 'results.md')
    except (FileNotFoundError, ValueError, bags.BagError) as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return 1
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
