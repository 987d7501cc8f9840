# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""``coinfer-bag-extract``: summarize recorded bags and turn them into traces, transitions and per-action latency.

Reads rosbag2 bags (MCAP or sqlite3, from ``coinfer-record`` or ``ros2 bag record``) without ROS,
prints a summary (topics, counts, duration, gaps, namespaces) and writes to ``--out``:

- ``traces/<bag>[_<namespace>].csv``: the measured link and CPU conditions, in the trace CSV format
  the simulator reads (``coinfer-train-policy --train-traces``);
- ``transitions.csv``: the logged policy decisions (state, action, measured latency, accuracy where
  labelled, reward, next state);
- ``action_stats.csv``: measured latency per action (medians of the latency breakdown).

docs/bags.md describes every column.  A bag that is corrupt, truncated (beyond what a killed
recorder leaves), foreign, or lacks a topic an output needs ends the tool with status 2 and one
line naming the problem; outputs are written to a staging folder and renamed at the end, so a failed
run leaves nothing behind and a finished one never leaves a half-written file.

Example::

    coinfer-bag-extract bags/run1 bags/run2 --out extracted
    coinfer-bag-extract bags/run1 --only stats
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from coinfer_device.core import bags
from coinfer_device.core.action_stats import COLUMNS as STATS_COLUMNS, action_stats, format_stats
from coinfer_device.core.profile import Profile, ProfileError
from coinfer_device.core.records import NS_PER_S
from coinfer_device.core.recording import Recording, Streams, load_recording
from coinfer_edge.core.recorded import (ExtractError, TransitionLog, trace_name, trace_of, transitions_of,
                                        write_transitions)
from coinfer_edge.core.traces import write_csv
from coinfer_edge.tools.train_policy import load_settings

PROG = 'coinfer-bag-extract'
OUTPUTS = ('traces', 'transitions', 'stats')
EXIT_ERROR = 2


def gaps(times_ns: Sequence[int], threshold_s: float) -> tuple[float, int]:
    """Return the longest gap between consecutive messages (s) and how many gaps exceed ``threshold_s``."""
    if len(times_ns) < 2:
        return 0.0, 0
    d = np.diff(np.asarray(times_ns, dtype=np.int64)) / NS_PER_S
    return float(d.max()), int(np.count_nonzero(d > threshold_s))


def _series(s: Streams) -> dict[str, list[int]]:
    out = {bags.RESULT: [t for t, _ in s.results], bags.DECISION: [t for t, _ in s.decisions],
           bags.EDGE_RESULT: [t for t, _ in s.edge_results]}
    out.update({topic: [t for t, _ in v] for topic, v in s.scalars.items()})
    return out


def summarize(rec: Recording, gap_s: float) -> str:
    """Return the human summary of one bag: files, topics, and per namespace counts and gaps."""
    info = rec.info
    state = 'closed' if info.closed else 'NOT closed'
    lines = [f'{info.path}: {info.storage}, {len(info.files)} file(s), {state}, {rec.duration_s:.1f} s, '
             f'{sum(c for _, c in info.topics.values())} messages']
    lines += [f'  note: {n}' for n in info.notes]
    width = max((len(t) for t in info.topics), default=10)
    for topic, (msgtype, count) in sorted(info.topics.items()):
        lines.append(f'  {topic:<{width}}  {msgtype:<32} {count:>7}')
    if rec.other_topics:
        lines.append(f'  not coinfer topics (ignored): {", ".join(rec.other_topics)}')
    for ns, s in sorted(rec.streams.items()):
        fallbacks = Counter(r.fallback for _, r in s.results)
        labelled = sum(st in s.ground_truth for st in s.result_stamps)
        lines.append(f'  namespace {ns}: {len(s.results)} results (fallback codes {dict(sorted(fallbacks.items()))}, '
                     f'{labelled} labelled), {len(s.decisions)} decisions, {len(s.edge_results)} edge answers')
        parts = []
        for topic, times in _series(s).items():
            if times:
                longest, over = gaps(times, gap_s)
                parts.append(f'{topic.removeprefix("coinfer/")} {len(times)} (max gap {longest:.2f} s'
                             + (f', {over} over {gap_s:g} s' if over else '') + ')')
            else:
                parts.append(f'{topic.removeprefix("coinfer/")} none')
        lines.append('    ' + '; '.join(parts))
        if s.malformed:
            lines.append(f'    malformed records skipped: {dict(s.malformed)}')
    return '\n'.join(lines)


class Staging:
    """Files written under a hidden folder in ``out`` and moved into ``out`` by :meth:`commit`."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix='.staging-', dir=out))
        self.files: list[Path] = []

    def path(self, relative: str) -> Path:
        """Return where to write ``relative`` now."""
        p = self.dir / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(Path(relative))
        return p

    def commit(self) -> list[Path]:
        """Move every staged file to its place (each rename is atomic); return the final paths."""
        final = []
        for rel in self.files:
            (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.dir / rel, self.out / rel)
            final.append(self.out / rel)
        shutil.rmtree(self.dir)
        return final

    def abort(self) -> None:
        """Remove the staging folder, and ``out`` itself if this run created it and it is empty."""
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.created and self.out.is_dir() and not any(self.out.iterdir()):
            self.out.rmdir()


def write_stats(rows: list[dict], path: Path) -> None:
    """Write per-action statistics with the bag and namespace of each row."""
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=('bag', 'namespace') + STATS_COLUMNS)
        w.writeheader()
        for row in rows:
            w.writerow({k: (f'{v:.6g}' if isinstance(v, float) else v) for k, v in row.items()})


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('bags', nargs='+', type=Path, help='bag folders')
    p.add_argument('--out', type=Path, default=Path('extracted'), help='output folder')
    p.add_argument('--only', nargs='+', choices=OUTPUTS, default=list(OUTPUTS), help='outputs to write')
    p.add_argument('--summary-only', action='store_true', help='print the summary, write nothing')
    p.add_argument('--profile', default=None, help='profile for the reward (accuracy per action; default: shipped)')
    p.add_argument('--config', default=None, help='settings with the reward and dt_s (default config/sacd_train.yaml)')
    p.add_argument('--dt-s', type=float, default=None, help='trace sample spacing (default: the config env.dt_s)')
    p.add_argument('--deadline-ms', type=float, default=None,
                   help="deadline in the transitions' state and reward (default: the results' deadline_ms)")
    p.add_argument('--gap-s', type=float, default=1.0, help='report gaps between messages longer than this')
    return p


def extract(args: argparse.Namespace) -> int:
    """Read every bag, print the summaries, then stage and commit the outputs."""
    recordings = [load_recording(b) for b in args.bags]
    names = [r.name for r in recordings]
    if len(set(names)) != len(names):
        raise ExtractError(f'bags must have distinct folder names (trace names come from them): {names}')
    for r in recordings:
        print(summarize(r, args.gap_s), flush=True)
    if args.summary_only:
        return 0
    settings = load_settings(args.config)
    dt_s = args.dt_s or settings.env.dt_s
    profile = Profile.load(args.profile) if 'transitions' in args.only else None
    traces, logs, stats_rows = [], [], []
    for r in recordings:
        for ns, streams in sorted(r.streams.items()):
            if 'traces' in args.only:
                traces.append(trace_of(r, ns, dt_s))
            if 'transitions' in args.only:
                logs.append(transitions_of(r, ns, profile, settings.reward, args.deadline_ms))
            if 'stats' in args.only:
                if not streams.results:
                    raise ExtractError(f'{r.info.path}: per-action statistics need {bags.RESULT} in namespace {ns}')
                labels = [streams.label_of(i) for i in range(len(streams.results))]
                stats = action_stats([res for _, res in streams.results], labels)
                print(f'\n{trace_name(r, ns)}: measured latency per action (medians)\n{format_stats(stats)}')
                stats_rows += [{'bag': r.name, 'namespace': ns, **s.to_row()} for s in stats]
    staging = Staging(args.out)
    try:
        for t in traces:
            write_csv(t, staging.path(f'traces/{t.name.replace("/", "_")}.csv'))
        if 'transitions' in args.only:
            write_transitions([t for log in logs for t in log.transitions], staging.path('transitions.csv'))
        if 'stats' in args.only:
            write_stats(stats_rows, staging.path('action_stats.csv'))
        written = staging.commit()
    except BaseException:
        staging.abort()
        raise
    report(traces, logs)
    print(f'wrote {len(written)} file(s) to {args.out}: ' + ', '.join(str(p.relative_to(args.out)) for p in written))
    return 0


def report(traces: list, logs: list[TransitionLog]) -> None:
    """Print what the traces and transitions hold."""
    for t in traces:
        s = t.summary()
        print(f'trace {t.name}: {len(t)} samples of {t.dt_s:g} s, bandwidth mean {s["bw_mean_mbps"]} Mbit/s '
              f'(p10 {s["bw_p10_mbps"]}, p90 {s["bw_p90_mbps"]}), RTT mean {s["rtt_mean_ms"]} ms, '
              f'device load {s["device_load_mean"]}, edge load {s["edge_load_mean"]}')
    for log in logs:
        if log.transitions:
            first = log.transitions[0]
            print(f'transitions {first.bag} {first.namespace}: {len(log.transitions)}'
                  + (f'; decisions left out: {dict(log.skipped)}' if log.skipped else ''))
        elif log.skipped:
            print(f'transitions: none; decisions left out: {dict(log.skipped)}')


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool."""
    args = build_parser().parse_args(argv)
    try:
        return extract(args)
    except (bags.BagError, ExtractError, ProfileError) as exc:
        print(f'{PROG}: error: {" ".join(str(exc).split())}', file=sys.stderr, flush=True)
        return EXIT_ERROR


if __name__ == '__main__':
    sys.exit(main())
