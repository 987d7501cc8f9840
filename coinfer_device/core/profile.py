# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Machine profile of the model: what each split decision costs and how accurate it is.

A profile (JSON, written by ``coinfer-profile``) holds, for one machine:
per-block compute time of the trunk and of every exit branch, codec time and
payload bytes for every (partition, bits), and validation accuracy for every
valid (exit, partition, bits).  The decision environment, the policy node and
the nodes' latency estimates all read this one file.

Times come in two kinds: a tight loop (``block_ms`` ...: the network run back to
back, warm caches) and, optionally, *per frame* (:class:`FrameTiming`: the work
run once per camera period, as the nodes run it, 1.6-4.7x slower here).  Where
the per-frame figures exist, every derived time (:meth:`Profile.device_compute_ms`
and the rest) uses them: that is what the live pipeline pays.

The profile covers the action table of :mod:`coinfer_device.core.action` for its
branch points and bits choices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coinfer_device.core.action import Action, action_table, is_local
from coinfer_device.core.paths import shipped

PROFILE_FORMAT = 'coinfer-profile'
PROFILE_VERSION = 1


class ProfileError(ValueError):
    """A profile file is malformed or does not fit the model / action table."""


@dataclass
class FrameTiming:
    """Compute measured once per camera period (``period_ms``), as the nodes run it: medians in ms."""

    period_ms: float
    block_ms: list[float]
    exit_ms: list[float]
    encode_ms: dict[tuple[int, int], float]
    decode_ms: dict[tuple[int, int], float]
    frames: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document."""
        return {'period_ms': self.period_ms, 'frames': self.frames,
                'block_compute_ms': [round(v, 5) for v in self.block_ms],
                'exit_compute_ms': [round(v, 5) for v in self.exit_ms],
                'codec': [{'partition': p, 'bits': b, 'encode_ms': round(self.encode_ms[(p, b)], 5),
                           'decode_ms': round(self.decode_ms[(p, b)], 5)} for (p, b) in sorted(self.encode_ms)]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'FrameTiming':
        """Parse :meth:`to_dict` output (``KeyError`` / ``ValueError`` when malformed)."""
        codec = d['codec']
        return cls(period_ms=float(d['period_ms']), frames=int(d.get('frames', 0)),
                   block_ms=[float(v) for v in d['block_compute_ms']],
                   exit_ms=[float(v) for v in d['exit_compute_ms']],
                   encode_ms={(c['partition'], c['bits']): float(c['encode_ms']) for c in codec},
                   decode_ms={(c['partition'], c['bits']): float(c['decode_ms']) for c in codec})

    def scaled(self, factor: float) -> 'FrameTiming':
        """Return every time multiplied by ``factor``."""
        return FrameTiming(self.period_ms, [v * factor for v in self.block_ms], [v * factor for v in self.exit_ms],
                           {k: v * factor for k, v in self.encode_ms.items()},
                           {k: v * factor for k, v in self.decode_ms.items()}, self.frames)


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
    frame: FrameTiming | None = None

    # ----------------------------------------------------------------- derived

    @property
    def timing(self) -> 'Profile | FrameTiming':
        """Return the times the derived figures use: per frame where measured, else the tight loop."""
        return self.frame if self.frame is not None else self

    @property
    def timing_basis(self) -> str:
        """Return ``'per-frame'`` or ``'tight-loop'``: which times :attr:`timing` holds."""
        return 'per-frame' if self.frame is not None else 'tight-loop'

    def actions(self) -> tuple[Action, ...]:
        """Return the action table this profile covers."""
        return action_table(self.branch_points, self.bits_choices)

    def is_local(self, action: Action) -> bool:
        """Return whether the action runs entirely on the device."""
        return is_local(action, self.branch_points)

    def device_compute_ms(self, action: Action) -> float:
        """Device time: head blocks (+ exit branch when local, + encode when sent)."""
        t = self.timing
        if self.is_local(action):
            bp = self.branch_points[action.exit]
            return sum(t.block_ms[:bp]) + t.exit_ms[action.exit]
        key = (action.partition, action.bits)
        return sum(t.block_ms[:action.partition]) + t.encode_ms[key]

    def device_model_ms(self, action: Action) -> float:
        """Return the model's share of :meth:`device_compute_ms`: head blocks (+ exit branch when local), no codec."""
        t = self.timing
        if self.is_local(action):
            bp = self.branch_points[action.exit]
            return sum(t.block_ms[:bp]) + t.exit_ms[action.exit]
        return sum(t.block_ms[:action.partition])

    def edge_model_ms(self, action: Action) -> float:
        """Return the model's share of :meth:`edge_compute_ms`: tail blocks + exit branch, no decoding; 0 when local."""
        if self.is_local(action):
            return 0.0
        t = self.timing
        return sum(t.block_ms[action.partition:self.branch_points[action.exit]]) + t.exit_ms[action.exit]

    def edge_compute_ms(self, action: Action) -> float:
        """Edge time: decode + tail blocks + exit branch; 0 when local."""
        if self.is_local(action):
            return 0.0
        bp = self.branch_points[action.exit]
        key = (action.partition, action.bits)
        t = self.timing
        return t.decode_ms[key] + sum(t.block_ms[action.partition:bp]) + t.exit_ms[action.exit]

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
        if self.frame is not None:
            f = self.frame
            if len(f.block_ms) != n_blocks or len(f.exit_ms) != len(self.exit_ms) \
                    or set(f.encode_ms) != set(self.encode_ms) or set(f.decode_ms) != set(self.decode_ms):
                raise ProfileError('per_frame timings must cover the same blocks, exits and codec entries')

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
            **({'per_frame': self.frame.to_dict()} if self.frame is not None else {}),
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
                frame=FrameTiming.from_dict(d['per_frame']) if d.get('per_frame') is not None else None,
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
        """Load a profile file; ``None`` = the default shipped model's profile."""
        if path is None:
            path = shipped().profile
        try:
            doc = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ProfileError(f'profile {path} not found') from exc
        except json.JSONDecodeError as exc:
            raise ProfileError(f'{path}: invalid JSON: {exc}') from exc
        return cls.from_dict(doc)
