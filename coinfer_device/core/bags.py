# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Recordings of the coinfer topics as rosbag2 bags, written and read with ``rosbags`` (no ROS needed).

What is recorded (:data:`TOPICS`, relative to each namespace; docs/bags.md has the reasons):
results, decisions, edge answers, ground truth, link and CPU measurements, the measured compute
slowdown when published, and optionally the feature messages (large).

:class:`BagWriter` writes one rosbag2 bag (format version 9, MCAP by default, sqlite3 optional)
that Jazzy's ``ros2 bag info`` reads: ``NAME/metadata.yaml`` plus ``NAME_0.mcap``, ``NAME_1.mcap``,
... when split by size or duration.  The file being written lives in ``NAME/.writing/`` until it
is closed; then it moves into the bag and ``metadata.yaml`` is rewritten (atomically) to list it,
so a crash leaves every closed split a plain part of the bag.  :meth:`BagWriter.flush` (the
recorder calls it every second) pushes the open file's data to disk in complete units, which
:mod:`coinfer_device.core.bag_salvage` reads back after a crash.

:func:`read_bag` returns the raw messages of a bag (closed splits through rosbags, an unclosed one
salvaged) and raises :class:`BagError`, naming the problem, for anything that is not a readable
bag.  :func:`deserialize` turns the CDR bytes into rosbags message objects.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml
from rosbags.rosbag2 import Reader, Writer
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.typesys import Stores, get_typestore

BAG_VERSION = 9  # rosbag2 metadata version of Jazzy and Kilted
STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
STORAGE_SUFFIX = {'mcap': '.mcap', 'sqlite3': '.db3'}
WRITING_DIR = '.writing'
METADATA = 'metadata.yaml'
MAX_STAMP_NS = 2 ** 63  # rosbag2 stamps are int64 nanoseconds
_TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
# rclpy's own serialize_message appends up to 8 bytes of padding; DDS samples have none.
_MAX_TRAILING_BYTES = 8


class BagError(ValueError):
    """A bag cannot be written or read; the message names the bag and the problem."""


def describe(exc: BaseException) -> str:
    """Return ``exc`` as ``Type: message`` on one line (library errors may span several)."""
    return f'{type(exc).__name__}: {" ".join(str(exc).split())}'


@dataclass(frozen=True)
class RecordedTopic:
    """One recorded topic: its name relative to a namespace, type and how to subscribe to it."""

    name: str
    msgtype: str
    reliable: bool
    what: str
    transient_local: bool = False
    depth: int = 100
    optional: bool = True
    large: bool = False


RESULT = 'coinfer/result'
DECISION = 'coinfer/decision'
EDGE_RESULT = 'coinfer/edge_result'
GROUND_TRUTH = 'coinfer/ground_truth'
FEATURES = 'coinfer/features'
BANDWIDTH = 'coinfer/link/bandwidth_mbps'
RTT = 'coinfer/link/rtt_ms'
DEVICE_LOAD = 'coinfer/device/cpu_load'
EDGE_LOAD = 'coinfer/edge/cpu_load'
DEVICE_SLOWDOWN = 'coinfer/device/compute_slowdown'
EDGE_SLOWDOWN = 'coinfer/edge/compute_slowdown'
JOINT_STATE = 'sensor_msgs/msg/JointState'
FLOAT32 = 'std_msgs/msg/Float32'

TOPICS = (
    RecordedTopic(RESULT, JOINT_STATE, True, 'one record per frame: action used, latency breakdown, fallback',
                  optional=False),
    RecordedTopic(DECISION, 'std_msgs/msg/Int32MultiArray', True, 'the policy decisions',
                  transient_local=True, depth=1, optional=False),
    RecordedTopic(EDGE_RESULT, JOINT_STATE, True, "the edge's answers (probes included): feature header fields"),
    RecordedTopic(GROUND_TRUTH, JOINT_STATE, True, 'labels of labelled sources'),
    RecordedTopic(BANDWIDTH, FLOAT32, False, 'measured uplink bandwidth [Mbit/s]', optional=False),
    RecordedTopic(RTT, FLOAT32, False, 'measured round-trip time [ms]', optional=False),
    RecordedTopic(DEVICE_LOAD, FLOAT32, False, 'robot CPU load [0..1]', optional=False),
    RecordedTopic(EDGE_LOAD, FLOAT32, False, 'workstation CPU load [0..1]', optional=False),
    RecordedTopic(DEVICE_SLOWDOWN, FLOAT32, False, 'measured device compute slowdown (when published)'),
    RecordedTopic(EDGE_SLOWDOWN, FLOAT32, False, 'measured edge compute slowdown (when published)'),
    RecordedTopic(FEATURES, 'sensor_msgs/msg/CompressedImage', True, 'feature messages (codec bytes)',
                  depth=10, large=True),
)
TOPIC_BY_NAME = {t.name: t for t in TOPICS}


def recorded_topics(features: bool = False) -> tuple[RecordedTopic, ...]:
    """Return the topics a recording subscribes to (the feature messages only with ``features``)."""
    return tuple(t for t in TOPICS if features or not t.large)


def normalize_namespace(namespace: str) -> str:
    """Return ``namespace`` as ``/`` or ``/a/b`` (no trailing slash)."""
    parts = [p for p in namespace.strip().split('/') if p]
    return '/' + '/'.join(parts)


def full_topic(namespace: str, relative: str) -> str:
    """Return the absolute name of ``relative`` in ``namespace``."""
    ns = normalize_namespace(namespace)
    return f'{ns.rstrip("/")}/{relative}'


def split_topic(topic: str) -> tuple[str, str] | None:
    """Return ``(namespace, relative name)`` of a recorded coinfer topic, or ``None`` for any other topic."""
    for t in TOPICS:
        if topic == '/' + t.name:
            return '/', t.name
        if topic.endswith('/' + t.name) and topic.startswith('/'):
            return normalize_namespace(topic[:-len(t.name) - 1]), t.name
    return None


def deserialize(data: bytes | memoryview, msgtype: str) -> Any:
    """Return the rosbags message object of CDR bytes; :class:`BagError` when they do not decode."""
    raw = bytes(data)
    if len(raw) < 4 or raw[:2] not in (b'\x00\x00', b'\x00\x01'):
        raise BagError(f'not a CDR message of {msgtype}')
    msgdef = _TYPESTORE.get_msgdef(msgtype)
    decode = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    try:
        message, pos = decode(raw[4:], 0, msgdef.cls, _TYPESTORE)
    except Exception as exc:  # noqa: BLE001 - rosbags raises struct, Unicode, Index and Value errors
        raise BagError(f'{msgtype} does not decode: {describe(exc)}') from None
    if pos + 4 + _MAX_TRAILING_BYTES < len(raw):
        raise BagError(f'{msgtype}: {len(raw) - pos - 4} bytes after the end of the message')
    return message


# --------------------------------------------------------------------------- writing


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)


def merge_metadata(parts: Sequence[dict[str, Any]], custom_data: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the ``rosbag2_bagfile_information`` of a bag made of the files of ``parts`` (one per split)."""
    first = parts[0]
    counts: dict[str, int] = {}
    topics: dict[str, dict[str, Any]] = {}
    for part in parts:
        for entry in part['topics_with_message_count']:
            name = entry['topic_metadata']['name']
            topics.setdefault(name, entry['topic_metadata'])
            counts[name] = counts.get(name, 0) + int(entry['message_count'])
    files = [f for part in parts for f in part['files']]
    timed = [f for f in files if f['message_count']]
    start = min((f['starting_time']['nanoseconds_since_epoch'] for f in timed), default=0)
    end = max((f['starting_time']['nanoseconds_since_epoch'] + f['duration']['nanoseconds'] for f in timed),
              default=start)
    return {
        'version': first['version'],
        'storage_identifier': first['storage_identifier'],
        'relative_file_paths': [f['path'] for f in files],
        'duration': {'nanoseconds': end - start},
        'starting_time': {'nanoseconds_since_epoch': start},
        'message_count': sum(counts.values()),
        'topics_with_message_count': [{'topic_metadata': meta, 'message_count': counts[name]}
                                      for name, meta in topics.items()],
        'compression_format': first['compression_format'],
        'compression_mode': first['compression_mode'],
        'files': files,
        'custom_data': dict(custom_data) if custom_data else None,
        'ros_distro': first['ros_distro'],
    }


@dataclass
class _Split:
    writer: Writer
    folder: Path
    connections: dict[str, Any] = field(default_factory=dict)
    first_ns: int | None = None
    bytes: int = 0


class BagWriter:
    """One rosbag2 bag, split by size and/or duration (see module docstring).

    ``split_bytes`` / ``split_s``: start a new file once the open one holds that many message bytes
    or spans that many seconds (0 = never).  Topics are added with :meth:`add_topic` before or while
    writing; every file lists every topic added so far.
    """

    def __init__(self, path: Path | str, storage: str = 'mcap', split_bytes: int = 0, split_s: float = 0.0,
                 custom_data: dict[str, str] | None = None) -> None:
        if storage not in STORAGES:
            raise BagError(f'unknown storage {storage!r}; choose from {", ".join(STORAGES)}')
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'{self.path} exists already; a recording never overwrites one')
        self.storage = storage
        self.split_bytes = int(split_bytes)
        self.split_ns = int(split_s * 1e9)
        self.custom_data = dict(custom_data or {})
        self.topics: dict[str, str] = {}
        self.parts: list[dict[str, Any]] = []
        self.messages = 0
        self._split: _Split | None = None
        self.path.mkdir(parents=True)
        (self.path / WRITING_DIR).mkdir()

    @property
    def files(self) -> int:
        """Return how many files the bag has so far (the open one included)."""
        return len(self.parts) + (self._split is not None)

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare a topic (absolute name) and its rosbag2 type."""
        if self.topics.setdefault(topic, msgtype) != msgtype:
            raise BagError(f'{topic} was added as {self.topics[topic]}, not {msgtype}')
        if self._split is not None:
            self._connect(self._split, topic)

    def _connect(self, split: _Split, topic: str) -> None:
        if topic not in split.connections:
            split.connections[topic] = split.writer.add_connection(topic, self.topics[topic], typestore=_TYPESTORE)

    def _open(self) -> _Split:
        folder = self.path / WRITING_DIR / f'{self.path.name}_{len(self.parts)}'
        writer = Writer(folder, version=BAG_VERSION, storage_plugin=STORAGES[self.storage])
        writer.open()
        split = _Split(writer, folder)
        for topic in self.topics:
            self._connect(split, topic)
        return split

    def write(self, topic: str, t_ns: int, data: bytes) -> None:
        """Write one serialized message received at ``t_ns`` (nanoseconds since the epoch)."""
        if topic not in self.topics:
            raise BagError(f'topic {topic} was not added')
        split = self._split
        if split is not None and ((self.split_bytes and split.bytes >= self.split_bytes)
                                  or (self.split_ns and t_ns - split.first_ns >= self.split_ns)):
            self._close_split()
            split = None
        if split is None:
            split = self._split = self._open()
        if split.first_ns is None:
            split.first_ns = t_ns
        split.writer.write(split.connections[topic], t_ns, data)
        split.bytes += len(data)
        self.messages += 1

    def flush(self) -> None:
        """Push what was written to disk in complete units (an MCAP chunk, an sqlite3 transaction).

        Relies on the storage internals of the pinned rosbags 0.11.9; ``test/test_bags.py`` kills a
        recorder and reads its bag back, so a change there fails a test.
        """
        split = self._split
        if split is None or split.writer.storage is None:
            return
        storage = split.writer.storage
        if self.storage == 'mcap':
            if storage.chunk.bio.tell():
                storage.close_chunk()
            storage.bio.flush()
            os.fsync(storage.bio.fileno())
        else:
            storage.conn.commit()

    def _close_split(self) -> None:
        split, self._split = self._split, None
        split.writer.close()
        meta = yaml.safe_load((split.folder / METADATA).read_text())['rosbag2_bagfile_information']
        for f in meta['files']:
            os.replace(split.folder / f['path'], self.path / f['path'])
        self.parts.append(meta)
        info = merge_metadata(self.parts, self.custom_data)
        _write_atomically(self.path / METADATA, yaml.safe_dump({'rosbag2_bagfile_information': info},
                                                               default_flow_style=False, sort_keys=False))
        shutil.rmtree(split.folder)

    def close(self) -> None:
        """Close the open file and complete the bag (an empty recording still gets a valid empty bag)."""
        if self._split is None and not self.parts:
            self._split = self._open()
        if self._split is not None:
            self._close_split()
        shutil.rmtree(self.path / WRITING_DIR, ignore_errors=True)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class BagMessage:
    """One recorded message: receipt time (ns since the epoch), absolute topic, type and CDR bytes."""

    t_ns: int
    topic: str
    msgtype: str
    data: bytes


@dataclass
class BagInfo:
    """What a bag holds: its storage, files, topics with their types and message counts."""

    path: Path
    storage: str
    files: list[str]
    topics: dict[str, tuple[str, int]]
    closed: bool = True
    notes: list[str] = field(default_factory=list)


def _read_closed(path: Path, wanted: Any) -> tuple[BagInfo, list[BagMessage]]:
    try:
        with Reader(path) as reader:
            topics = {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
            if not all(isinstance(t, str) and isinstance(m, str) and isinstance(n, int) and n >= 0
                       for t, (m, n) in topics.items()):
                raise BagError(f'{path}: {METADATA} lists topics without a name, type or message count')
            conns = [c for c in reader.connections if wanted(c.topic)]
            # rosbags reads every connection when given none
            messages = [BagMessage(t, c.topic, c.msgtype, bytes(d)) for c, t, d in reader.messages(conns)] \
                if conns else []
        meta = yaml.safe_load((path / METADATA).read_text())['rosbag2_bagfile_information']
        storage = str(meta['storage_identifier'])
        files = [str(p) for p in meta['relative_file_paths']]
    except BagError:
        raise
    except Exception as exc:  # noqa: BLE001 - rosbags and the storages raise many types for damaged files
        raise BagError(f'{path}: unreadable bag: {describe(exc)}') from None
    info = BagInfo(path, storage, files, topics)
    read = {}
    for m in messages:
        read[m.topic] = read.get(m.topic, 0) + 1
    differ = sorted(t for t, n in read.items() if n != topics[t][1])
    if differ:
        info.notes.append(f'{METADATA} message counts differ from the files for {", ".join(differ)}')
    return info, messages


def read_bag(path: Path | str, topics: Iterable[str] | None = None) -> tuple[BagInfo, list[BagMessage]]:
    """Return a bag's description and its messages in time order (``topics``: relative names to read).

    A recording that was not closed (recorder killed) is read up to its last flushed unit; the
    description then has ``closed=False`` and a note.  Raises :class:`BagError` for anything else
    that is not a readable rosbag2 bag.
    """
    from coinfer_device.core.bag_salvage import salvage  # only needed for unclosed recordings

    path = Path(path)
    relative = None if topics is None else set(topics)

    def wanted(topic: str) -> bool:
        parts = split_topic(topic)
        return relative is None or (parts is not None and parts[1] in relative)

    if not path.exists():
        raise BagError(f'{path}: no such bag')
    if not path.is_dir():
        raise BagError(f'{path}: not a rosbag2 bag (a bag is a folder with {METADATA})')
    open_parts = sorted((path / WRITING_DIR).glob('*')) if (path / WRITING_DIR).is_dir() else []
    if (path / METADATA).is_file():
        info, messages = _read_closed(path, wanted)
    elif open_parts:
        info, messages = BagInfo(path, '', [], {}), []
    else:
        raise BagError(f'{path}: not a rosbag2 bag (no {METADATA})')
    for part in open_parts:
        part_info, part_messages = salvage(part, wanted)
        info.closed = False
        info.storage = info.storage or part_info.storage
        info.files += part_info.files
        for topic, (msgtype, count) in part_info.topics.items():
            old = info.topics.get(topic, (msgtype, 0))
            info.topics[topic] = (old[0], old[1] + count)
        info.notes += part_info.notes
        messages += part_messages
    bad = next((m for m in messages if not 0 <= m.t_ns < MAX_STAMP_NS), None)
    if bad is not None:
        raise BagError(f'{path}: {bad.topic} has a message stamped {bad.t_ns} ns, outside int64 nanoseconds '
                       '(corrupt bag?)')
    messages.sort(key=lambda m: m.t_ns)
    return info, messages


# --------------------------------------------------------------------------- ros2 bag record


def qos_overrides(namespaces: Sequence[str], features: bool = False) -> dict[str, dict[str, Any]]:
    """Return ``ros2 bag record --qos-profile-overrides-path`` content for the recorded topics.

    ``ros2 bag record`` takes the publishers' depth (1 for telemetry); these ask for the recorder's
    own deeper queues and the QoS :data:`TOPICS` subscribe with.
    """
    out = {}
    for ns in namespaces:
        for t in recorded_topics(features):
            out[full_topic(ns, t.name)] = {
                'history': 'keep_last', 'depth': t.depth,
                'reliability': 'reliable' if t.reliable else 'best_effort',
                'durability': 'transient_local' if t.transient_local else 'volatile'}
    return out


def ros2_record_command(output: str, namespaces: Sequence[str], storage: str = 'mcap', features: bool = False,
                        overrides_path: str = 'bag_qos_overrides.yaml') -> list[str]:
    """Return the ``ros2 bag record`` command line that records what ``coinfer-record`` records."""
    topics = [full_topic(ns, t.name) for ns in namespaces for t in recorded_topics(features)]
    return ['ros2', 'bag', 'record', '-s', storage, '-o', output, '--qos-profile-overrides-path', overrides_path,
            *topics]
