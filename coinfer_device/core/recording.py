# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""A bag of the coinfer topics decoded into records, one :class:`Streams` per robot namespace (no ROS).

Times are the bag's receipt times in nanoseconds since the epoch (the recorder's clock).  A
message that decodes as CDR but does not have the documented layout (a foreign publisher on a
coinfer topic) is skipped and counted in :attr:`Streams.malformed`, as the nodes do; bytes that
are not a message of the topic's type make the bag corrupt (:class:`~coinfer_device.core.bags.BagError`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from coinfer_device.core import bags
from coinfer_device.core.action import Action
from coinfer_device.core.records import (NS_PER_S, EdgeResult, MessageError, Result, edge_result_from_names_positions,
                                         named_int, result_from_names_positions)

SCALAR_TOPICS = (bags.BANDWIDTH, bags.RTT, bags.DEVICE_LOAD, bags.EDGE_LOAD, bags.DEVICE_SLOWDOWN, bags.EDGE_SLOWDOWN)


@dataclass
class Streams:
    """The decoded coinfer topics of one namespace, in receipt order."""

    namespace: str
    results: list[tuple[int, Result]] = field(default_factory=list)
    result_stamps: list[int] = field(default_factory=list)  # header stamp (ns) of each result
    edge_results: list[tuple[int, EdgeResult]] = field(default_factory=list)
    decisions: list[tuple[int, Action]] = field(default_factory=list)
    ground_truth: dict[int, int] = field(default_factory=dict)  # image header stamp (ns) -> class id
    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: {t: [] for t in SCALAR_TOPICS})
    features: int = 0
    feature_bytes: int = 0
    malformed: Counter = field(default_factory=Counter)

    def label_of(self, index: int) -> int | None:
        """Return the ground-truth class of result ``index``, or ``None`` when its frame is not labelled."""
        return self.ground_truth.get(self.result_stamps[index])


@dataclass
class Recording:
    """One bag: its description and the streams of every namespace found in it."""

    info: bags.BagInfo
    streams: dict[str, Streams]
    start_ns: int
    end_ns: int
    other_topics: list[str]

    @property
    def name(self) -> str:
        """Return the bag's folder name."""
        return self.info.path.name

    @property
    def duration_s(self) -> float:
        """Return the time between the first and the last message."""
        return (self.end_ns - self.start_ns) / NS_PER_S


def _stamp(header) -> int:
    return int(header.stamp.sec) * NS_PER_S + int(header.stamp.nanosec)


def _add(streams: Streams, relative: str, t_ns: int, msg) -> None:
    """Decode one message into ``streams`` (:class:`MessageError` for a wrong layout)."""
    if relative == bags.RESULT:
        streams.results.append((t_ns, result_from_names_positions(msg.name, msg.position)))
        streams.result_stamps.append(_stamp(msg.header))
    elif relative == bags.EDGE_RESULT:
        streams.edge_results.append((t_ns, edge_result_from_names_positions(msg.name, msg.position)))
    elif relative == bags.GROUND_TRUTH:
        streams.ground_truth[_stamp(msg.header)] = named_int(msg.name, msg.position, 'class_id')
    elif relative == bags.DECISION:
        data = [int(v) for v in msg.data]
        if len(data) != 3:
            raise MessageError(f'decision with {len(data)} values')
        streams.decisions.append((t_ns, Action(*data)))
    elif relative == bags.FEATURES:
        streams.features += 1
        streams.feature_bytes += len(msg.data)
    elif relative in streams.scalars:
        value = float(msg.data)
        if not math.isfinite(value):
            raise MessageError(f'non-finite value {value}')
        streams.scalars[relative].append((t_ns, value))


def load_recording(path: Path | str, topics: Iterable[str] | None = None) -> Recording:
    """Read and decode a bag (``topics``: relative names to read; default all but the feature payloads)."""
    wanted = [t.name for t in bags.recorded_topics(features=False)] if topics is None else list(topics)
    info, messages = bags.read_bag(path, wanted)
    others = sorted(t for t in info.topics if bags.split_topic(t) is None)
    if len(others) == len(info.topics):
        raise bags.BagError(f'{info.path}: no coinfer topics (topics: {others or "none"}); not a coinfer recording')
    streams: dict[str, Streams] = {}
    for topic, (msgtype, _) in info.topics.items():
        parts = bags.split_topic(topic)
        if parts is not None and msgtype != bags.TOPIC_BY_NAME[parts[1]].msgtype:
            raise bags.BagError(f'{info.path}: {topic} has type {msgtype}, coinfer publishes '
                                f'{bags.TOPIC_BY_NAME[parts[1]].msgtype} there (foreign bag?)')
    for m in messages:
        namespace, relative = bags.split_topic(m.topic)
        s = streams.setdefault(namespace, Streams(namespace))
        try:
            msg = bags.deserialize(m.data, m.msgtype)
        except bags.BagError as exc:
            raise bags.BagError(f'{info.path}: corrupt message on {m.topic} at t={m.t_ns} ns: {exc}') from None
        try:
            _add(s, relative, m.t_ns, msg)
        except MessageError:
            s.malformed[relative] += 1
    times = [m.t_ns for m in messages]
    return Recording(info, streams, min(times, default=0), max(times, default=0), others)
