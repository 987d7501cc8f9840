# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""What the all-in-one demo reports: per-frame records, the summary table, the files and the plots.

Pure Python + numpy (matplotlib only inside :func:`write_plots`); no ROS import, so the
statistics can be checked without a running graph.  Times are seconds since the demo's
origin (the moment the emulated link's bandwidth schedule started).
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from coinfer_device.core import records as rec
from coinfer_device.core.link_emulator import BandwidthSchedule
from coinfer_edge.tools import plots
from coinfer_edge.tools.plots import pyplot

PLOT_FILES = ('latency.png', 'bandwidth.png', 'decisions.png')
RECORDS_CSV = 'frames.csv'
SUMMARY_JSON = 'summary.json'


@dataclass
class FrameRecord:
    """One ``coinfer/result`` as the demo saw it, joined with its ground truth by header stamp."""

    t_s: float
    stamp_ns: int
    frame_seq: int
    class_id: int
    truth: int | None
    confidence: float
    action: str
    exit: int
    partition: int
    bits: int
    source: str
    fallback: str
    device_ms: float
    transfer_ms: float
    edge_ms: float
    total_ms: float
    payload_bytes: int
    deadline_ms: float
    deadline_met: bool
    link_mbps: float | None
    estimated_mbps: float | None

    @property
    def correct(self) -> bool | None:
        """Return whether the class matches the ground truth (``None`` without ground truth)."""
        return None if self.truth is None else self.class_id == self.truth


def value_at(series: Sequence[tuple[float, float]], t: float) -> float | None:
    """Return the newest value of ``series`` (sorted by time) at or before ``t``."""
    lo, hi = 0, len(series)
    while lo < hi:
        mid = (lo + hi) // 2
        if series[mid][0] <= t:
            lo = mid + 1
        else:
            hi = mid
    return series[lo - 1][1] if lo else None


def frame_records(results: Sequence[tuple[float, int, rec.Result]], truth: dict[int, int], t0: float,
                  schedule: BandwidthSchedule, estimates: Sequence[tuple[float, float]]) -> list[FrameRecord]:
    """Turn received ``(receipt time, image stamp, Result)`` into :class:`FrameRecord` rows (times relative to ``t0``).

    ``truth`` maps image stamps to classes, ``estimates`` holds ``(time, Mbit/s)`` of the link estimate.
    """
    rows = []
    for t, stamp, r in results:
        rows.append(FrameRecord(
            t_s=t - t0, stamp_ns=stamp, frame_seq=r.frame_seq, class_id=r.class_id, truth=truth.get(stamp),
            confidence=r.confidence, action=r.action.label(), exit=r.exit, partition=r.partition, bits=r.bits,
            source='edge' if r.source == rec.SOURCE_EDGE else 'device',
            fallback=rec.FALLBACK_WORDS.get(r.fallback, str(r.fallback)), device_ms=r.device_ms,
            transfer_ms=r.transfer_ms, edge_ms=r.edge_ms, total_ms=r.total_ms, payload_bytes=r.payload_bytes,
            deadline_ms=r.deadline_ms, deadline_met=r.deadline_met, link_mbps=schedule.mbps_at(t - t0),
            estimated_mbps=value_at(estimates, t)))
    return rows


def phases(schedule: BandwidthSchedule, end_s: float) -> list[tuple[float, float, float]]:
    """Return ``(start, end, mbps)`` of every step of the emulated link that begins before ``end_s``."""
    out = []
    i = 0
    while i * schedule.step_s < end_s:
        start = i * schedule.step_s
        out.append((start, min(start + schedule.step_s, end_s), schedule.mbps_at(start)))
        i += 1
    return out


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile of the values (linear interpolation), NaN when there are none."""
    return float(np.percentile(values, q)) if len(values) else math.nan


def accuracy(records: Iterable[FrameRecord]) -> tuple[float, int]:
    """Return the share of correct frames and how many had ground truth (NaN share for none)."""
    judged = [r.correct for r in records if r.correct is not None]
    return (sum(judged) / len(judged) if judged else math.nan), len(judged)


def latency_stats(records: Sequence[FrameRecord]) -> dict[str, float]:
    """Return mean, p50, p95, p99 and max of the end-to-end latency (ms)."""
    lat = [r.total_ms for r in records]
    return {'mean': float(np.mean(lat)) if lat else math.nan, 'p50': percentile(lat, 50),
            'p95': percentile(lat, 95), 'p99': percentile(lat, 99), 'max': max(lat) if lat else math.nan}


def deadline_hit_rate(records: Sequence[FrameRecord]) -> float:
    """Return the share of frames answered within their deadline (NaN for none)."""
    return sum(r.deadline_met for r in records) / len(records) if records else math.nan


def action_sort_key(label: str) -> tuple[int, int, int]:
    """Order action labels by exit, then partition (local last), then bits."""
    parts = label.split('/')
    try:
        e = int(parts[0][1:])
        if parts[1] == 'local':
            return e, 1_000, 0
        return e, int(parts[1][1:]), int(parts[2][1:])
    except (IndexError, ValueError):
        return 1_000, 0, 0


def summarize(records: Sequence[FrameRecord], decisions: Sequence[tuple[float, str]],
              schedule: BandwidthSchedule | None, duration_s: float,
              device_load: Sequence[tuple[float, float]] = ()) -> dict[str, Any]:
    """Return the demo's summary (what the final table shows, as plain data for JSON).

    ``device_load`` is the robot CPU load timeline (the policy's input); its mean per link
    phase is reported next to the decisions.
    """
    acc, judged = accuracy(records)
    by_action: dict[str, list[FrameRecord]] = {}
    for r in records:
        by_action.setdefault(r.action, []).append(r)
    decision_counts = Counter(label for _, label in decisions)
    labels = sorted(set(by_action) | set(decision_counts), key=action_sort_key)
    actions = []
    for label in labels:
        rs = by_action.get(label, [])
        a, _ = accuracy(rs)
        actions.append({'action': label, 'policy_decisions': decision_counts.get(label, 0), 'frames': len(rs),
                        'accuracy': a, 'latency_p50_ms': percentile([r.total_ms for r in rs], 50),
                        'deadline_hit': deadline_hit_rate(rs)})
    phase_rows = []
    if schedule is not None:
        for start, end, mbps in phases(schedule, duration_s):
            rs = [r for r in records if start <= r.t_s < end]
            ds = Counter(label for t, label in decisions if start <= t < end)
            fs = Counter(r.action for r in rs)
            a, _ = accuracy(rs)
            loads = [v for t, v in device_load if start <= t < end]
            phase_rows.append({'start_s': start, 'end_s': end, 'link_mbps': mbps, 'frames': len(rs),
                               'device_load': float(np.mean(loads)) if loads else math.nan,
                               'top_decision': ds.most_common(1)[0][0] if ds else '-',
                               'top_action': fs.most_common(1)[0][0] if fs else '-',
                               'accuracy': a, 'latency_p50_ms': percentile([r.total_ms for r in rs], 50),
                               'deadline_hit': deadline_hit_rate(rs)})
    changes = sum(1 for (_, a), (_, b) in zip(decisions, decisions[1:]) if a != b)
    return {
        'duration_s': duration_s,
        'frames': len(records),
        'frames_with_ground_truth': judged,
        'accuracy': acc,
        'latency_ms': latency_stats(records),
        'deadline_ms': records[0].deadline_ms if records else math.nan,
        'deadline_hit': deadline_hit_rate(records),
        'answered_by_edge': sum(r.source == 'edge' for r in records),
        'fallbacks': dict(Counter(r.fallback for r in records)),
        'policy_decisions': len(decisions),
        'decision_changes': changes,
        'actions': actions,
        'phases': phase_rows,
    }


# --------------------------------------------------------------------------- text


def fmt_num(value: float | None, fmt: str) -> str:
    """Return ``value`` formatted with ``fmt``, or ``-`` for None and NaN (a table cell)."""
    return '-' if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def fmt_pct(value: float | None) -> str:
    """Return a fraction as a percentage with one decimal, or ``-`` for None and NaN (a table cell)."""
    if value is None or math.isnan(value):
        return '-'
    return f'{100.0 * value:.1f} %'


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    """Return a Markdown table with padded columns."""
    right = right or [i > 0 for i in range(len(header))]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells: Sequence[str]) -> str:
        return '| ' + ' | '.join(str(c).rjust(w) if r else str(c).ljust(w)
                                 for c, w, r in zip(cells, widths, right)) + ' |'

    rule = '|' + '|'.join(('-' * (w + 1) + ':') if r else (':' + '-' * (w + 1)) for w, r in zip(widths, right)) + '|'
    return '\n'.join([line(header), rule] + [line(r) for r in rows])


def format_summary(summary: dict[str, Any]) -> str:
    """Return the final report: overall figures, actions histogram and one row per link phase."""
    lat = summary['latency_ms']
    overall = table(('frames', 'online accuracy', 'latency mean', 'p50', 'p95', 'p99', 'deadline hit',
                     'answered by edge', 'policy decisions'),
                    [(str(summary['frames']),
                      f"{fmt_num(summary['accuracy'], '.3f')} ({summary['frames_with_ground_truth']} labelled)",
                      fmt_num(lat['mean'], '.1f') + ' ms', fmt_num(lat['p50'], '.1f') + ' ms',
                      fmt_num(lat['p95'], '.1f') + ' ms', fmt_num(lat['p99'], '.1f') + ' ms',
                      f"{fmt_pct(summary['deadline_hit'])} (< {fmt_num(summary['deadline_ms'], 'g')} ms)",
                      str(summary['answered_by_edge']), str(summary['policy_decisions']))])
    parts = [overall]
    if summary['actions']:
        parts.append(table(('action', 'policy decisions', 'frames', 'share', 'accuracy', 'latency p50',
                            'deadline hit'),
                           [(a['action'], str(a['policy_decisions']), str(a['frames']),
                             fmt_pct(a['frames'] / summary['frames'] if summary['frames'] else math.nan),
                             fmt_num(a['accuracy'], '.3f'), fmt_num(a['latency_p50_ms'], '.1f') + ' ms',
                             fmt_pct(a['deadline_hit'])) for a in summary['actions']],
                           right=[False] + [True] * 6))
    if summary['phases']:
        parts.append(table(('time', 'link', 'robot CPU', 'frames', 'main decision', 'main action applied',
                            'accuracy', 'latency p50', 'deadline hit'),
                           [(f"{p['start_s']:.0f}-{p['end_s']:.0f} s", f"{p['link_mbps']:g} Mbit/s",
                             fmt_num(p['device_load'], '.2f'), str(p['frames']), p['top_decision'], p['top_action'],
                             fmt_num(p['accuracy'], '.3f'), fmt_num(p['latency_p50_ms'], '.1f') + ' ms',
                             fmt_pct(p['deadline_hit'])) for p in summary['phases']],
                           right=[False, True, True, True, False, False, True, True, True]))
    fallbacks = ', '.join(f'{k}: {v}' for k, v in sorted(summary['fallbacks'].items()))
    if fallbacks:
        parts.append(f'frames by reason of the action: {fallbacks}')
    return '\n\n'.join(parts)


# --------------------------------------------------------------------------- files


def jsonable(value: Any) -> Any:
    """Return ``value`` with non-finite floats as ``None`` (JSON has no NaN), in nested dicts and lists too."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def write_records(out: Path, records: Sequence[FrameRecord]) -> Path:
    """Write the per-frame records as CSV; return the path."""
    path = out / RECORDS_CSV
    names = [f.name for f in fields(FrameRecord)] + ['correct']
    with open(path, 'w', newline='') as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for r in records:
            row = asdict(r)
            row['correct'] = r.correct
            writer.writerow(['' if row[n] is None else (f'{row[n]:.4f}' if isinstance(row[n], float) else row[n])
                             for n in names])
    return path


def write_summary(out: Path, summary: dict[str, Any], config: dict[str, Any],
                  timelines: dict[str, Sequence[tuple[float, Any]]]) -> Path:
    """Write the summary, the demo settings and the decision/link timelines as JSON; return the path."""
    path = out / SUMMARY_JSON
    doc = {'config': config, 'summary': summary,
           'timelines': {k: [[round(t, 3), v] for t, v in items] for k, items in timelines.items()}}
    path.write_text(json.dumps(jsonable(doc), indent=1) + '\n')
    return path


def write_plots(out: Path, records: Sequence[FrameRecord], decisions: Sequence[tuple[float, str]],
                estimated_mbps: Sequence[tuple[float, float]], schedule: BandwidthSchedule | None,
                duration_s: float) -> list[Path]:
    """Write latency, bandwidth and decision plots (PNG, matplotlib Agg); return the paths."""
    plt = pyplot()

    paths = [out / name for name in PLOT_FILES]
    deadline = records[0].deadline_ms if records else None

    fig, ax = plt.subplots(figsize=(9, 3.6), layout='constrained')
    for source, colour in (('edge', 'tab:blue'), ('device', 'tab:orange')):
        rs = [r for r in records if r.source == source]
        ax.scatter([r.t_s for r in rs], [r.total_ms for r in rs], s=6, color=colour,
                   label=f'answered by {source} ({len(rs)})')
    if deadline:
        ax.axhline(deadline, color='tab:red', linestyle='--', linewidth=1, label=f'deadline {deadline:g} ms')
    _phase_marks(ax, schedule, duration_s)
    _log_axis(ax)
    ax.set_xlim(0, duration_s)
    ax.set_xlabel('time [s]')
    ax.set_ylabel('end-to-end latency [ms]')
    ax.set_title('Per-frame latency (camera stamp to result, device clock)')
    _legend(ax)
    plots.save(fig, paths[0], tight=False)

    fig, ax = plt.subplots(figsize=(9, 3.2), layout='constrained')
    if schedule is not None:
        ph = phases(schedule, duration_s)
        xs = [p[0] for p in ph] + [ph[-1][1]]
        ys = [p[2] for p in ph] + [ph[-1][2]]
        ax.step(xs, ys, where='post', color='black', linewidth=1.5, label='emulated link (schedule)')
    if estimated_mbps:
        ax.plot([t for t, _ in estimated_mbps], [v for _, v in estimated_mbps], '.-', color='tab:green',
                markersize=3, linewidth=0.8, label='link monitor estimate')
    _log_axis(ax)
    ax.set_xlim(0, duration_s)
    ax.set_xlabel('time [s]')
    ax.set_ylabel('bandwidth [Mbit/s]')
    ax.set_title('Link bandwidth: emulated vs measured from round trips')
    _legend(ax)
    plots.save(fig, paths[1], tight=False)

    labels = sorted({label for _, label in decisions} | {r.action for r in records}, key=action_sort_key)
    row = {label: i for i, label in enumerate(labels)}
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * max(len(labels), 2)), layout='constrained')
    if records:
        ax.scatter([r.t_s for r in records], [row[r.action] for r in records], s=5, color='tab:gray',
                   label='action applied to the frame')
    if decisions:
        ax.scatter([t for t, _ in decisions], [row[label] + 0.2 for _, label in decisions], s=8, marker='|',
                   color='tab:purple', label='policy decision')
    _phase_marks(ax, schedule, duration_s)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(-0.6, max(len(labels) - 0.4, 1.0))
    ax.set_xlim(0, duration_s)
    ax.set_xlabel('time [s]')
    ax.set_title('Split decisions (exit / partition / bits) over time')
    _legend(ax)
    plots.save(fig, paths[2], tight=False)
    return paths


def _log_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter
    ax.set_yscale('log')
    plain = FuncFormatter(lambda v, _pos: f'{v:g}')
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: f'{v:g}' if f'{v:g}'.lstrip('0.')[:1] in ('2', '5')
                                               else ''))


def _legend(ax: Any) -> None:
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _phase_marks(ax: Any, schedule: BandwidthSchedule | None, duration_s: float) -> None:
    if schedule is None:
        return
    for start, _, mbps in phases(schedule, duration_s):
        ax.axvline(start, color='0.8', linewidth=0.8, zorder=0)
        ax.annotate(f'{mbps:g} Mbit/s', (start, 1.0), xycoords=('data', 'axes fraction'), xytext=(3, -10),
                    textcoords='offset points', fontsize=7, color='0.4')
