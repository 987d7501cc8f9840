# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The per-frame records of ``coinfer/result`` and ``coinfer/edge_result`` as named scalars (no ROS).

On the wire each record is a list of names and a list of float64 values (docs/topics.md has
every field).  Readers look fields up by name and ignore names they do not know, so fields can
be added; fields added after the first release are optional when reading (:data:`NOT_RECORDED`
when absent, e.g. in old bags).  :mod:`coinfer_device.ros.messages` puts these lists into ROS
messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Iterable, Sequence

from coinfer_device.core.action import Action

CLASS_NAME_PREFIX = 'class_name:'
NS_PER_S = 1_000_000_000
NOT_RECORDED = math.nan  # value of an optional field a record was written without

SOURCE_DEVICE = 0
SOURCE_EDGE = 1
FALLBACK_NONE = 0          # the policy's fresh decision was applied
FALLBACK_NO_DECISION = 1   # no decision yet, or the newest one is older than decision_timeout_s
FALLBACK_EDGE_DOWN = 2     # the edge stopped answering: answered locally, edge is probed
FALLBACK_EDGE_TIMEOUT = 3  # sent to the edge, no answer within edge_timeout_ms: re-run locally
FALLBACK_WORDS = {FALLBACK_NONE: 'policy decision', FALLBACK_NO_DECISION: 'no fresh decision',
                  FALLBACK_EDGE_DOWN: 'edge down', FALLBACK_EDGE_TIMEOUT: 'edge timeout'}


class MessageError(ValueError):
    """A message does not have the documented layout."""


def class_name(names: Sequence[str], class_id: int) -> str:
    """Return the name of ``class_id`` in ``names``, or ``''`` when it has none."""
    return names[class_id] if 0 <= class_id < len(names) else ''


@dataclass(slots=True)
class Result:
    """One frame's classification with its latency breakdown (``coinfer/result``).

    Times are milliseconds on the robot's clock; ``transfer_ms`` and ``round_trip_ms``
    are 0 for frames answered on the device.  ``device_compute_ms`` and ``edge_compute_ms``
    are the model's share of ``device_ms`` and ``edge_ms``, so ``total_ms - device_compute_ms
    - edge_compute_ms`` is what the frame paid for everything but the network itself.
    """

    frame_seq: int
    class_id: int
    confidence: float
    exit: int
    partition: int
    bits: int
    source: int
    fallback: int
    device_ms: float
    transfer_ms: float
    edge_ms: float
    total_ms: float
    round_trip_ms: float
    payload_bytes: int
    deadline_ms: float
    deadline_met: bool
    device_compute_ms: float
    edge_compute_ms: float
    class_name: str = ''

    @property
    def action(self) -> Action:
        """Return the ``(exit, partition, bits)`` that produced the result."""
        return Action(self.exit, self.partition, self.bits)


RESULT_FIELDS = ('frame_seq', 'class_id', 'confidence', 'exit', 'partition', 'bits', 'source', 'fallback',
                 'device_ms', 'transfer_ms', 'edge_ms', 'total_ms', 'round_trip_ms', 'payload_bytes',
                 'deadline_ms', 'deadline_met', 'device_compute_ms', 'edge_compute_ms')
RESULT_OPTIONAL = ('device_compute_ms', 'edge_compute_ms')


@dataclass(slots=True)
class EdgeResult:
    """What the edge sends back for one feature message (``coinfer/edge_result``).

    ``device_stamp_ns`` is the device's monotonic send time echoed from the codec header;
    on the wire it is split into exact float64 fields ``device_stamp_s`` (whole seconds)
    and ``device_stamp_ns`` (nanoseconds within the second).  ``edge_ms`` is all the edge's
    work on the message (decode included), ``edge_compute_ms`` the model's part of it.
    """

    frame_seq: int
    class_id: int
    confidence: float
    exit: int
    partition: int
    bits: int
    device_ms: float
    edge_ms: float
    payload_bytes: int
    device_stamp_ns: int
    edge_compute_ms: float


EDGE_RESULT_FIELDS = ('frame_seq', 'class_id', 'confidence', 'exit', 'partition', 'bits', 'device_ms',
                      'edge_ms', 'payload_bytes', 'device_stamp_s', 'device_stamp_ns', 'edge_compute_ms')
EDGE_RESULT_OPTIONAL = ('edge_compute_ms',)
_INT_FIELDS = frozenset({'frame_seq', 'class_id', 'exit', 'partition', 'bits', 'source', 'fallback',
                         'payload_bytes'})

# One C call returns every value in wire order (per message, no dict of the whole dataclass).
_result_values = attrgetter(*RESULT_FIELDS)
_EDGE_PLAIN_FIELDS = EDGE_RESULT_FIELDS[:9]  # the fields before the split stamp
_edge_plain_values = attrgetter(*_EDGE_PLAIN_FIELDS)


def result_names_positions(r: Result) -> tuple[list[str], list[float]]:
    """Return the ``name`` and ``position`` arrays of a result record."""
    names = [*RESULT_FIELDS, CLASS_NAME_PREFIX + r.class_name]
    positions = [float(v) for v in _result_values(r)]
    positions.append(float(r.class_id))
    return names, positions


def _named(names: Iterable[str], positions: Iterable[float], required: Iterable[str]) -> dict[str, float]:
    names, positions = list(names), list(positions)
    if len(names) != len(positions):
        raise MessageError(f'{len(names)} names but {len(positions)} positions')
    d = dict(zip(names, positions))
    missing = [n for n in required if n not in d]
    if missing:
        raise MessageError(f'missing fields {missing}')
    return d


def _int(d: dict[str, float], name: str) -> int:
    v = d[name]
    if not math.isfinite(v) or v != int(v):
        raise MessageError(f'field {name} must be an integer, got {v!r}')
    return int(v)


def named_int(names: Iterable[str], positions: Iterable[float], name: str) -> int:
    """Return the integer field ``name`` of a named-scalar record (:class:`MessageError` if absent or not whole)."""
    return _int(_named(names, positions, (name,)), name)


_RESULT_REQUIRED = tuple(n for n in RESULT_FIELDS if n not in RESULT_OPTIONAL)
_EDGE_RESULT_REQUIRED = tuple(n for n in EDGE_RESULT_FIELDS if n not in EDGE_RESULT_OPTIONAL)


def result_from_names_positions(names: Iterable[str], positions: Iterable[float]) -> Result:
    """Parse a result record; unknown extra names are ignored (newer writers may add fields)."""
    names = list(names)
    d = _named(names, positions, _RESULT_REQUIRED)
    kwargs: dict[str, Any] = {}
    for n in RESULT_FIELDS:
        if n in _INT_FIELDS:
            kwargs[n] = _int(d, n)
        else:
            kwargs[n] = float(d.get(n, NOT_RECORDED))
    kwargs['deadline_met'] = bool(d['deadline_met'])
    kwargs['class_name'] = next((n[len(CLASS_NAME_PREFIX):] for n in names if n.startswith(CLASS_NAME_PREFIX)), '')
    return Result(**kwargs)


def edge_result_names_positions(r: EdgeResult) -> tuple[list[str], list[float]]:
    """Return the ``name`` and ``position`` arrays of an edge result."""
    stamp_s, stamp_ns = divmod(int(r.device_stamp_ns), NS_PER_S)
    positions = [float(v) for v in _edge_plain_values(r)]
    positions += [float(stamp_s), float(stamp_ns), float(r.edge_compute_ms)]
    return list(EDGE_RESULT_FIELDS), positions


def edge_result_from_names_positions(names: Iterable[str], positions: Iterable[float]) -> EdgeResult:
    """Parse an edge result; the split stamp is joined back into exact nanoseconds."""
    d = _named(names, positions, _EDGE_RESULT_REQUIRED)
    stamp = _int(d, 'device_stamp_s') * NS_PER_S + _int(d, 'device_stamp_ns')
    return EdgeResult(frame_seq=_int(d, 'frame_seq'), class_id=_int(d, 'class_id'),
                      confidence=float(d['confidence']), exit=_int(d, 'exit'),
                      partition=_int(d, 'partition'), bits=_int(d, 'bits'), device_ms=float(d['device_ms']),
                      edge_ms=float(d['edge_ms']), payload_bytes=_int(d, 'payload_bytes'), device_stamp_ns=stamp,
                      edge_compute_ms=float(d.get('edge_compute_ms', NOT_RECORDED)))
