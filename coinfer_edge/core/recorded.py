# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Recorded runs as training material: link/CPU traces and logged policy transitions from a bag (no ROS).

Input is a :class:`coinfer_device.core.recording.Recording` (one bag) and a namespace in it.

- :func:`trace_of`: the measured bandwidth, RTT and CPU loads held (zero-order) on a ``dt_s`` grid
  from the first moment bandwidth and RTT were both known (when the policy could first decide) to the
  last telemetry sample; a load before its first sample takes that first value.  These are the
  conditions the simulator replays (:mod:`coinfer_edge.core.traces`; the CSV format is ``write_csv``).
- :func:`transitions_of`: one :class:`Transition` per decision that has a next decision and at
  least one frame run with it: the state as the policy node built it at the decision (newest
  bandwidth, RTT, loads -- 0 before the first, as the node does -- newest result latency, deadline,
  previous decision), the action, the frames' mean measured latency, their accuracy against ground
  truth where labelled, the reward and the state at the next decision.  The frames of decision ``k``
  are the results received after it and up to decision ``k + 1`` that ran its action as a policy
  decision (``fallback`` 0).  The reward is :meth:`RewardConfig.reward` of the profile's accuracy of
  the action (the simulator's reward; a frame's own 0/1 correctness is far too noisy) and the mean
  latency.  docs/bags.md has the file format.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from coinfer_device.core import bags
from coinfer_device.core.action import Action
from coinfer_device.core.profile import Profile
from coinfer_device.core.records import FALLBACK_NONE, NS_PER_S
from coinfer_device.core.recording import Recording, Streams
from coinfer_edge.core.decision import LatencySettings, RewardConfig, build_states
from coinfer_edge.core.traces import Trace

TRANSITION_TOPICS = (bags.DECISION, bags.RESULT, bags.BANDWIDTH, bags.RTT)
NO_ACTION = (-1, -1, -1)
MAX_TRACE_S = 2 * 24 * 3600  # a longer span of telemetry means broken time stamps


class ExtractError(ValueError):
    """A recording lacks what an output needs; the message names the bag, namespace and topic."""


def trace_name(recording: Recording, namespace: str) -> str:
    """Return ``<bag>`` for the root namespace, ``<bag>/<ns>`` otherwise (unique across bags and robots)."""
    return recording.name if namespace == '/' else f'{recording.name}{namespace}'


def missing_topics(streams: Streams, needed: Iterable[str]) -> list[str]:
    """Return the topics of ``needed`` without a single decoded message in ``streams``."""
    have = {bags.DECISION: streams.decisions, bags.RESULT: streams.results, bags.EDGE_RESULT: streams.edge_results}
    return [t for t in needed if not (have[t] if t in have else streams.scalars.get(t))]


def _require(recording: Recording, namespace: str, needed: Sequence[str], what: str) -> Streams:
    streams = recording.streams.get(namespace)
    if streams is None:
        raise ExtractError(f'{recording.info.path}: no coinfer messages in namespace {namespace} '
                           f'(namespaces: {", ".join(recording.streams) or "none"})')
    missing = missing_topics(streams, needed)
    if missing:
        raise ExtractError(f'{recording.info.path}: {what} need {", ".join(missing)} in namespace {namespace}, '
                           'which the bag does not have (was its publisher running? was it recorded?)')
    return streams


class _Held:
    """Zero-order hold of one ``(t_ns, value)`` series."""

    def __init__(self, series: Sequence[tuple[int, float]], before_first: float | None = None) -> None:
        self.t = [t for t, _ in series]
        self.v = [v for _, v in series]
        self.before_first = before_first

    def at(self, t_ns: int) -> float | None:
        i = bisect.bisect_right(self.t, t_ns) - 1
        return self.v[i] if i >= 0 else self.before_first


def trace_of(recording: Recording, namespace: str, dt_s: float, nominal: LatencySettings | None = None) -> Trace:
    """Return the measured link and CPU conditions of one namespace as a :class:`Trace` (module docstring).

    With ``nominal`` (the latency model's nominal slowdowns), a side whose measured compute slowdown
    was recorded gets the load ``1 - 1 / contention`` of that contention (``slowdown / nominal``,
    clipped to 1..10): the simulator turns it back into the same contention, so training replays
    the contention the pipeline felt rather than the host's CPU-load percentage.
    """
    s = _require(recording, namespace, (bags.BANDWIDTH, bags.RTT), 'traces')
    measured = {}
    if nominal is not None:
        for side, topic, factor in (('device', bags.DEVICE_SLOWDOWN, nominal.device_slowdown),
                                    ('edge', bags.EDGE_SLOWDOWN, nominal.edge_slowdown)):
            if s.scalars.get(topic):
                measured[side] = [(t, 1.0 - 1.0 / min(max(v / factor, 1.0), 10.0)) for t, v in s.scalars[topic]]
    loads = {'device': bags.DEVICE_LOAD, 'edge': bags.EDGE_LOAD}
    _require(recording, namespace, [loads[side] for side in loads if side not in measured], 'traces')
    series = {bags.BANDWIDTH: s.scalars[bags.BANDWIDTH], bags.RTT: s.scalars[bags.RTT]}
    for side, topic in loads.items():
        series[topic] = measured.get(side) or s.scalars[topic]
    start = max(series[bags.BANDWIDTH][0][0], series[bags.RTT][0][0])
    end = max(v[-1][0] for v in series.values())
    step = int(round(dt_s * NS_PER_S))
    if end - start > MAX_TRACE_S * NS_PER_S:
        raise ExtractError(f'{recording.info.path}: the telemetry of namespace {namespace} spans '
                           f'{(end - start) / NS_PER_S:.3g} s, more than {MAX_TRACE_S} s: implausible time stamps '
                           '(corrupt bag?)')
    grid = start + step * np.arange((end - start) // step + 1, dtype=np.int64)
    cols = {}
    for topic, samples in series.items():
        times = np.array([t for t, _ in samples], dtype=np.int64)
        values = np.array([v for _, v in samples])
        cols[topic] = values[np.maximum(np.searchsorted(times, grid, side='right') - 1, 0)]  # before the first: first
    return Trace(trace_name(recording, namespace), dt_s, cols[bags.BANDWIDTH], cols[bags.RTT],
                 np.clip(cols[bags.DEVICE_LOAD], 0.0, 1.0), np.clip(cols[bags.EDGE_LOAD], 0.0, 1.0),
                 source=f'bag:{recording.info.path}:{namespace}')


@dataclass
class Transition:
    """One logged decision (units: Mbit/s, ms, loads 0..1; NaN = not measured, -1 = no previous action)."""

    bag: str
    namespace: str
    time_s: float
    bandwidth_mbps: float
    rtt_ms: float
    device_load: float
    edge_load: float
    device_slowdown: float
    edge_slowdown: float
    recent_latency_ms: float
    deadline_ms: float
    prev_exit: int
    prev_partition: int
    prev_bits: int
    exit: int
    partition: int
    bits: int
    frames: int
    latency_ms: float
    miss_fraction: float
    labelled_frames: int
    accuracy: float
    reward: float
    next_bandwidth_mbps: float
    next_rtt_ms: float
    next_device_load: float
    next_edge_load: float
    next_device_slowdown: float
    next_edge_slowdown: float
    next_recent_latency_ms: float

    @property
    def action(self) -> Action:
        """Return the decision."""
        return Action(self.exit, self.partition, self.bits)

    @property
    def prev_action(self) -> Action | None:
        """Return the previous decision, ``None`` for the first one."""
        prev = (self.prev_exit, self.prev_partition, self.prev_bits)
        return None if prev == NO_ACTION else Action(*prev)


TRANSITION_COLUMNS = tuple(f.name for f in fields(Transition))
_INT_COLUMNS = {f.name for f in fields(Transition) if f.type == 'int'}
_STR_COLUMNS = {'bag', 'namespace'}


@dataclass
class TransitionLog:
    """The transitions of one namespace and how many decisions were left out, by reason."""

    transitions: list[Transition]
    skipped: Counter


def _value(held: _Held, t: int) -> float:
    v = held.at(t)
    return math.nan if v is None else v


def transitions_of(recording: Recording, namespace: str, profile: Profile, reward: RewardConfig,
                   deadline_ms: float | None = None) -> TransitionLog:
    """Return the logged transitions of one namespace (module docstring); ``deadline_ms`` None = the results'."""
    s = _require(recording, namespace, TRANSITION_TOPICS, 'transitions')
    held = {t: _Held(v) for t, v in s.scalars.items()}
    loads = {t: _Held(s.scalars[t], 0.0) for t in (bags.DEVICE_LOAD, bags.EDGE_LOAD)}
    result_t = [t for t, _ in s.results]
    deadline = float(deadline_ms if deadline_ms is not None else np.median([r.deadline_ms for _, r in s.results]))
    accuracy = {a: profile.accuracy_of(a) for a in profile.actions()}
    skipped: Counter = Counter()

    def state(t: int) -> dict[str, float]:
        i = bisect.bisect_right(result_t, t) - 1
        return {'bandwidth_mbps': _value(held[bags.BANDWIDTH], t), 'rtt_ms': _value(held[bags.RTT], t),
                'device_load': loads[bags.DEVICE_LOAD].at(t), 'edge_load': loads[bags.EDGE_LOAD].at(t),
                'device_slowdown': _value(held[bags.DEVICE_SLOWDOWN], t),
                'edge_slowdown': _value(held[bags.EDGE_SLOWDOWN], t),
                'recent_latency_ms': s.results[i][1].total_ms if i >= 0 else math.nan}

    out = []
    for k, ((t, action), (t_next, _)) in enumerate(zip(s.decisions, s.decisions[1:])):
        now = state(t)
        if math.isnan(now['bandwidth_mbps']) or math.isnan(now['rtt_ms']):
            skipped['before the first link measurement'] += 1
            continue
        if action not in accuracy:
            skipped['action not in the profile'] += 1
            continue
        lo, hi = bisect.bisect_right(result_t, t), bisect.bisect_right(result_t, t_next)
        frames = [i for i in range(lo, hi) if s.results[i][1].action == action
                  and s.results[i][1].fallback == FALLBACK_NONE and math.isfinite(s.results[i][1].total_ms)]
        if not frames:
            skipped['no frame ran the decision'] += 1
            continue
        latency = float(np.mean([s.results[i][1].total_ms for i in frames]))
        labelled = [(s.results[i][1].class_id, s.label_of(i)) for i in frames if s.label_of(i) is not None]
        nxt = state(t_next)
        prev = s.decisions[k - 1][1].to_list() if k > 0 else list(NO_ACTION)
        out.append(Transition(
            recording.name, namespace, (t - recording.start_ns) / NS_PER_S, **now, deadline_ms=deadline,
            prev_exit=prev[0], prev_partition=prev[1], prev_bits=prev[2], exit=action.exit,
            partition=action.partition, bits=action.bits, frames=len(frames), latency_ms=latency,
            miss_fraction=float(np.mean([s.results[i][1].total_ms > deadline for i in frames])),
            labelled_frames=len(labelled),
            accuracy=float(np.mean([p == y for p, y in labelled])) if labelled else math.nan,
            reward=float(reward.reward(accuracy[action], latency, deadline)),
            **{f'next_{key}': v for key, v in nxt.items()}))
    return TransitionLog(out, skipped)


def write_transitions(transitions: Sequence[Transition], path: Path | str) -> None:
    """Write transitions as CSV with :data:`TRANSITION_COLUMNS` (NaN written as ``nan``)."""
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=TRANSITION_COLUMNS)
        w.writeheader()
        for t in transitions:
            w.writerow({k: (f'{v:.6g}' if isinstance(v, float) else v) for k, v in asdict(t).items()})


def read_transitions(path: Path | str) -> list[Transition]:
    """Read a transitions CSV written by :func:`write_transitions` (:class:`ExtractError` when malformed)."""
    out = []
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != TRANSITION_COLUMNS:
            raise ExtractError(f'{path}: not a transitions file (columns {reader.fieldnames})')
        try:
            for row in reader:
                out.append(Transition(**{k: v if k in _STR_COLUMNS else int(v) if k in _INT_COLUMNS else float(v)
                                         for k, v in row.items()}))
        except (TypeError, ValueError) as exc:
            raise ExtractError(f'{path}: line {reader.line_num}: {exc}') from None
    return out


def contention(slowdown: Sequence[float], nominal: float) -> np.ndarray:
    """Return measured compute slowdowns over the nominal one (not measured = 1, as the policy node does)."""
    c = np.asarray(slowdown, dtype=np.float64) / nominal
    return np.where(np.isfinite(c), c, 1.0)


def replay_arrays(transitions: Sequence[Transition], actions: Sequence[Action], reward: RewardConfig,
                  profile: Profile, latency: LatencySettings | None = None) -> dict[str, np.ndarray]:
    """Return states, action indices, rewards and next states for a replay buffer.

    States are :func:`~coinfer_edge.core.decision.build_states` of the logged observations (the
    contention is the logged compute slowdown over ``latency``'s nominal one); rewards are
    recomputed with ``reward`` (the objective being trained) from the profile's accuracy and the
    measured latency.  Transitions whose action is not in ``actions`` are left out.
    """
    index = {a: i for i, a in enumerate(actions)}
    kept = [t for t in transitions if t.action in index]
    n = len(actions)
    prev = [index.get(t.prev_action, -1) if t.prev_action else -1 for t in kept]
    act = np.array([index[t.action] for t in kept], dtype=np.int64)

    latency = latency or LatencySettings()

    def states(prefix: str, prev_index: Sequence[int]) -> np.ndarray:
        col = {k: [getattr(t, prefix + k) for t in kept] for k in
               ('bandwidth_mbps', 'rtt_ms', 'device_slowdown', 'edge_slowdown', 'recent_latency_ms')}
        return build_states(col['bandwidth_mbps'], col['rtt_ms'],
                            contention(col['device_slowdown'], latency.device_slowdown),
                            contention(col['edge_slowdown'], latency.edge_slowdown),
                            col['recent_latency_ms'], [t.deadline_ms for t in kept], prev_index, n)

    acc = np.array([profile.accuracy_of(t.action) for t in kept])
    return {'obs': states('', prev), 'actions': act, 'next_obs': states('next_', act),
            'rewards': reward.reward(acc, [t.latency_ms for t in kept], [t.deadline_ms for t in kept])
            .astype(np.float32)}
