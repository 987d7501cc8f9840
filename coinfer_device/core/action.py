# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The split decision ``(exit, partition, bits)``: which ones exist and which are valid.

An :class:`Action` is valid for a model whose exit ``e`` branches off after block
``branch_points[e]`` when ``partition <= branch_points[exit]``:

* ``partition < branch_points[exit]``: the device sends the feature at ``partition`` with one
  of :data:`WIRE_BITS` bits (:data:`QUANT_BITS` = integer quantization, :data:`FLOAT_BITS` =
  float16/float32 pass-through) and the edge finishes the network to the exit;
* ``partition == branch_points[exit]``: the whole inference runs on the device; nothing is
  sent, so bits is :data:`LOCAL_BITS` (0) and only that one action exists per exit.

Pure Python; no numpy, torch or ROS import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

LOCAL_BITS = 0
QUANT_BITS = tuple(range(1, 9))
FLOAT32_BITS = 32
FLOAT_BITS = (16, FLOAT32_BITS)
WIRE_BITS = QUANT_BITS + FLOAT_BITS
DEFAULT_BITS_CHOICES = (2, 4, 8, 16, 32)


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
        if b not in WIRE_BITS:
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


def check_action(action: Action, branch_points: Sequence[int]) -> str | None:
    """Return why ``action`` is not a valid split of a model with ``branch_points``, or ``None``."""
    if not 0 <= action.exit < len(branch_points):
        return f'exit {action.exit} out of range 0..{len(branch_points) - 1}'
    bp = branch_points[action.exit]
    if not 0 <= action.partition <= bp:
        return f'partition {action.partition} out of range 0..{bp} for exit {action.exit}'
    if action.partition == bp:
        if action.bits != LOCAL_BITS:
            return f'a local action (partition {bp} = branch point of exit {action.exit}) must have bits 0'
    elif action.bits not in WIRE_BITS:
        return f'bits {action.bits} not one of {WIRE_BITS}'
    return None
