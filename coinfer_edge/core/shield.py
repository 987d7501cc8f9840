# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""A deadline shield: actions that keep missing the deadline on the running graph are blocked for a while.

Every decider plans with a model: the trained policy with the simulator it was trained in, the
rules with the latency model.  When the robot differs from the model (another CPU, a busier
core, a profile taken elsewhere), an action the model calls safe can miss the deadline frame
after frame; on the real-link testbed the on-device exit 1 was predicted at 65 ms and measured at
90 ms median, 50-70 % of its frames late.  The shield watches the results the device publishes
(``coinfer/result``: the action that ran and whether it met the deadline) and removes an action
from the allowed set when more than ``max_miss_rate`` of its recent results were late.  A block
lasts ``hold_s``, twice as long each time the action is blocked again within ``max_hold_s`` of its
release (up to ``max_hold_s``), so a mismatch costs a few late frames per retry and a changed situation (a
faster link, a lighter CPU load) gets the action back.  It never blocks every action.

Pure Python and numpy (no rclpy): the policy node feeds it (:mod:`coinfer_edge.nodes.policy_node`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from coinfer_device.core.action import Action
from coinfer_device.core.config import strict_from_dict


@dataclass(frozen=True)
class ShieldConfig:
    """When an action is blocked and for how long (policy node parameters ``shield.*``)."""

    window: int = 10             # the last results of an action that are judged
    min_results: int = 5         # an action is judged once it has this many results in the window
    max_miss_rate: float = 0.3   # blocked when more than this share of them missed the deadline
    memory_s: float = 5.0        # results older than this are forgotten: the situation may have changed
    hold_s: float = 3.0          # the first block
    max_hold_s: float = 30.0     # blocks double while the action keeps missing after its release, up to this

    def __post_init__(self) -> None:
        if not (1 <= self.min_results <= self.window and 0.0 <= self.max_miss_rate < 1.0 and self.memory_s > 0
                and 0 < self.hold_s <= self.max_hold_s):
            raise ValueError(f'bad shield settings {self}')

    @classmethod
    def from_dict(cls, d: dict) -> ShieldConfig:
        """Build from a dictionary; unknown keys are an error."""
        return strict_from_dict(cls, d, 'shield')


@dataclass
class _Block:
    until_s: float
    hold_s: float


class DeadlineShield:
    """Blocks actions whose recent results missed the deadline too often (see the module docstring)."""

    def __init__(self, config: ShieldConfig | None = None, actions: Sequence[Action] | None = None) -> None:
        """Start with nothing recorded and nothing blocked; results of actions outside ``actions`` are ignored.

        The results come off the wire: without an action table any ``(exit, partition, bits)`` a
        publisher sends would get its own history, so memory would grow with the distinct actions seen.
        """
        self.config = config or ShieldConfig()
        self._known = None if actions is None else frozenset(actions)
        self._results: dict[Action, deque[tuple[float, bool]]] = {}
        self._blocks: dict[Action, _Block] = {}
        self.blocks_total = 0
        self.foreign_results = 0  # results of actions outside the table (ignored)

    def record(self, action: Action, deadline_met: bool, now_s: float) -> bool:
        """Record one result of ``action``; return True when this result blocks the action."""
        cfg = self.config
        if self._known is not None and action not in self._known:
            self.foreign_results += 1
            return False
        if self.is_blocked(action, now_s):
            return False  # results of frames decided before the block: already judged
        results = self._results.setdefault(action, deque(maxlen=cfg.window))
        results.append((now_s, bool(deadline_met)))
        while results and results[0][0] < now_s - cfg.memory_s:
            results.popleft()
        misses = sum(not met for _, met in results)
        if len(results) < cfg.min_results or misses <= cfg.max_miss_rate * len(results):
            return False
        previous = self._blocks.get(action)
        # Blocked again within max_hold_s of the last block's end: the mismatch persists, wait longer.
        soon = previous is not None and now_s - previous.until_s < cfg.max_hold_s
        hold = min(cfg.max_hold_s, 2.0 * previous.hold_s) if soon else cfg.hold_s
        self._blocks[action] = _Block(now_s + hold, hold)
        results.clear()
        self.blocks_total += 1
        return True

    def is_blocked(self, action: Action, now_s: float) -> bool:
        """Return whether ``action`` is blocked at ``now_s``."""
        block = self._blocks.get(action)
        return block is not None and now_s < block.until_s

    def hold_of(self, action: Action) -> float:
        """Return the length of ``action``'s last block in seconds (0 if never blocked)."""
        block = self._blocks.get(action)
        return 0.0 if block is None else block.hold_s

    def blocked(self, now_s: float) -> list[Action]:
        """Return the actions blocked at ``now_s``."""
        return [a for a, b in self._blocks.items() if now_s < b.until_s]

    def mask(self, actions: Sequence[Action], allowed: np.ndarray, now_s: float) -> np.ndarray:
        """Return ``allowed`` (one bool per action) without the blocked actions, or ``allowed`` if none would remain."""
        shielded = allowed & np.array([not self.is_blocked(a, now_s) for a in actions])
        return shielded if shielded.any() else allowed
