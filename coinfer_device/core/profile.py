# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Machine profile of the model and the action table of the split decision.

A profile (JSON, written by ``coinfer-profile``) holds, for one machine:
per-block compute time of the trunk and of every exit branch, codec time and
payload bytes for every (partition, bits), and validation accuracy for every
valid (exit, partition, bits).  The decision environment, the policy node and
the nodes' latency estimates all read this one file.

An :class:`Action` ``(exit, partition, bits)`` is valid when
``partition <= branch_point(exit)``.  ``partition == branch_point(exit)`` means
the whole inference runs on the device; nothing is sent, so bits is
normalized to :data:`LOCAL_BITS` (0) and only that one action exists per exit.
Bits 1..8 are integer quantization, 16 and 32 are float16/float32 pass-through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

PROFILE_FORMAT = 'coinfer-profile'
PROFILE_VERSION = 1
LOCAL_BITS = 0
DEFAULT_BITS_CHOICES = (2, 4, 8, 16, 32)


class ProfileError(ValueError):
    """A profile file is malformed or does not fit the model / action table."""


@dataclass(frozen=True, order=True)
class Action:
    """One split decision: exit point, partition point and bits on the wire."""

    exit: int
    partition: int
    bits: int

    def label(self) -> str:
        """Return a short human label, e.g. ``e2/p4/b8`` or ``e0/local``."""
        if self.bits == LOCAL_BITS:
            return f'e{self.exit}/local'
        return f'e{self.exit}/p{self.partition}/b{self.bits}'

    def to_list(self) -> list[int]:
        """Return ``[exit, partition, bits]``."""
        return [self.exit, self.partition, self.bits]


def action_table(branch_points: Sequence[int],
                 bits_choices: Iterable[int] = DEFAULT_BITS_CHOICES) -> tuple[Action, ...]:
    """Enumerate every valid, non-duplicate action in a fixed order.

    For each exit: every edge-finished split ``partition < branch_point`` with every
    bits choice, then the single all-on-device action.
    """
    bits = sorted(set(int(b) for b in bits_choices))
    for b in bits:
        if not (1 <= b <= 8 or b in (16, 32)):
            raise ValueError(f'bits {b} not in 1..8, 16, 32')
    table = []
    for e, bp in enumerate(branch_points):
        for p in range(bp):
            table.extend(Action(e, p, b) for b in bits)
        table.append(Action(e, bp, LOCAL_BITS))
    return tuple(table)


def is_local(action: Action, branch_points: Sequence[int]) -> bool:
    """Return whether ``action`` finishes on the device (nothing crosses the link)."""
    return action.partition >= branch_points[action.exit]


@dataclass
class Profile:
    """Measured costs of the model on one machine (see module docstring)."""

    block_ms: list[float]
    exit_ms: list[float]
    branch_points: list[int]
    bits_choices: list[int]
    payload_bytes: dict[tuple[int, int], int]
    encode_ms: dict[tuple[int, int], float]
    decode_ms: dict[tuple[int, int], float]
    accuracy: dict[Action, float]
    machine: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------- derived

    def actions(self) -> tuple[Action, ...]:
        """Return the action table this profile covers."""
        return action_table(self.branch_points, self.bits_choices)

    def is_local(self, action: Action) -> bool:
        """Return whether the action runs entirely on the device."""
        return is_local(action, self.branch_points)

    def device_compute_ms(self, action: Action) -> float:
        """Device time: head blocks (+ exit branch when local, + encode when sent)."""
        if self.is_local(action):
            bp = self.branch_points[action.exit]
            return sum(self.block_ms[:bp]) + self.exit_ms[action.exit]
        key = (action.partition, action.bits)
        return sum(self.block_ms[:action.partition]) + self.encode_ms[key]

    def edge_compute_ms(self, action: Action) -> float:
        """Edge time: decode + tail blocks + exit branch; 0 when local."""
        if self.is_local(action):
            return 0.0
        bp = self.branch_points[action.exit]
        key = (action.partition, action.bits)
        return (self.decode_ms[key] + sum(self.block_ms[action.partition:bp])
                + self.exit_ms[action.exit])

    def payload(self, action: Action) -> int:
        """Bytes on the wire for ``action`` (codec header included); 0 when local."""
        if self.is_local(action):
            return 0
        return self.payload_bytes[(action.partition, action.bits)]

    def accuracy_of(self, action: Action) -> float:
        """Return the validation accuracy of ``action``."""
        return self.accuracy[action]

    def validate(self) -> None:
        """Raise :class:`ProfileError` unless every table covers the action table."""
        n_blocks = len(self.block_ms)
        if not self.branch_points or self.branch_points[-1] != n_blocks:
            raise ProfileError(f'last branch point must be {n_blocks}, got {self.branch_points}')
        if len(self.exit_ms) != len(self.branch_points):
            raise ProfileError('exit_ms needs one entry per exit')
        for a in self.actions():
            if a not in self.accuracy:
                raise ProfileError(f'no accuracy for {a.label()}')
            if not self.is_local(a):
                key = (a.partition, a.bits)
                for name, table in (('payload_bytes', self.payload_bytes),
                                    ('encode_ms', self.encode_ms), ('decode_ms', self.decode_ms)):
                    if key not in table:
                        raise ProfileError(f'no {name} for partition {a.partition} bits {a.bits}')

    # ----------------------------------------------------------------- I/O

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document (units in key names)."""
        return {
            'format': PROFILE_FORMAT,
            'version': PROFILE_VERSION,
            'machine': self.machine,
            'model': self.model,
            'settings': self.settings,
            'exit_branch_points': list(self.branch_points),
            'bits_choices': list(self.bits_choices),
            'block_compute_ms': [round(v, 5) for v in self.block_ms],
            'exit_compute_ms': [round(v, 5) for v in self.exit_ms],
            'codec': [
                {'partition': p, 'bits': b, 'payload_bytes': self.payload_bytes[(p, b)],
                 'encode_ms': round(self.encode_ms[(p, b)], 5),
                 'decode_ms': round(self.decode_ms[(p, b)], 5)}
                for (p, b) in sorted(self.payload_bytes)],
            'accuracy': [
                {'exit': a.exit, 'partition': a.partition, 'bits': a.bits,
                 'accuracy': round(acc, 5)}
                for a, acc in sorted(self.accuracy.items())],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'Profile':
        """Parse and validate a profile document."""
        if d.get('format') != PROFILE_FORMAT:
            raise ProfileError(f"not a {PROFILE_FORMAT} document (format={d.get('format')!r})")
        if d.get('version') != PROFILE_VERSION:
            raise ProfileError(f"unsupported profile version {d.get('version')!r}")
        try:
            codec = d['codec']
            prof = cls(
                block_ms=[float(v) for v in d['block_compute_ms']],
                exit_ms=[float(v) for v in d['exit_compute_ms']],
                branch_points=[int(v) for v in d['exit_branch_points']],
                bits_choices=[int(v) for v in d['bits_choices']],
                payload_bytes={(c['partition'], c['bits']): int(c['payload_bytes']) for c in codec},
                encode_ms={(c['partition'], c['bits']): float(c['encode_ms']) for c in codec},
                decode_ms={(c['partition'], c['bits']): float(c['decode_ms']) for c in codec},
                accuracy={Action(int(a['exit']), int(a['partition']), int(a['bits'])):
                          float(a['accuracy']) for a in d['accuracy']},
                machine=dict(d.get('machine', {})),
                model=dict(d.get('model', {})),
                settings=dict(d.get('settings', {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f'malformed profile: {exc!r}') from exc
        prof.validate()
        return prof

    def save(self, path: Path | str) -> None:
        """Write the profile as JSON."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + '\n')

    @classmethod
    def load(cls, path: Path | str | None = None) -> 'Profile':
        """Load a profile file; ``None`` = the shipped profile."""
        if path is None:
            from coinfer_device.core.checkpoint import assets_dir
            path = assets_dir() / 'profile_x86_64.json'
        try:
            doc = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ProfileError(f'profile {path} not found') from exc
        except json.JSONDecodeError as exc:
            raise ProfileError(f'{path}: invalid JSON: {exc}') from exc
        return cls.from_dict(doc)
