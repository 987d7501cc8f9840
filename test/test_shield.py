# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The deadline shield: which results block an action, for how long, and that it never blocks everything."""

from __future__ import annotations

import numpy as np
import pytest

from coinfer_device.core.action import Action
from coinfer_edge.core.shield import DeadlineShield, ShieldConfig

E1_LOCAL = Action(1, 4, 0)
E0_LOCAL = Action(0, 2, 0)
RAW = Action(2, 0, 8)


def feed(shield: DeadlineShield, action: Action, pattern: str, t0: float, period: float = 0.1) -> float:
    """Record one result per character ('x' = late, '.' = in time) from ``t0``; return the next time."""
    t = t0
    for c in pattern:
        shield.record(action, c == '.', t)
        t += period
    return t


def test_an_action_that_keeps_missing_is_blocked_and_comes_back_after_the_hold():
    shield = DeadlineShield(ShieldConfig(hold_s=3.0))
    t = feed(shield, E1_LOCAL, '.x.xx', 0.0)   # 3 of 5 late > 30 %
    assert shield.is_blocked(E1_LOCAL, t) and shield.blocked(t) == [E1_LOCAL]
    assert not shield.is_blocked(E0_LOCAL, t)
    assert shield.is_blocked(E1_LOCAL, t + 2.5) and not shield.is_blocked(E1_LOCAL, t + 3.0)
    assert shield.hold_of(E1_LOCAL) == 3.0 and shield.blocks_total == 1


def test_a_few_late_frames_do_not_block():
    shield = DeadlineShield()
    feed(shield, E1_LOCAL, '..x......x..x.....x...', 0.0)   # never more than 3 of the last 10
    assert shield.blocks_total == 0
    feed(shield, RAW, 'xxxx', 0.0)                         # fewer than min_results: not judged yet
    assert shield.blocks_total == 0


def test_old_results_are_forgotten():
    shield = DeadlineShield(ShieldConfig(memory_s=5.0))
    feed(shield, E1_LOCAL, 'xxx', 0.0)
    feed(shield, E1_LOCAL, '..', 10.0)   # the misses were 10 s ago: only 2 results count
    assert shield.blocks_total == 0


def test_a_block_doubles_while_the_action_keeps_missing_after_release_and_resets_later():
    cfg = ShieldConfig(hold_s=2.0, max_hold_s=5.0)
    shield = DeadlineShield(cfg)
    t = feed(shield, E1_LOCAL, 'xxxxx', 0.0)
    assert shield.hold_of(E1_LOCAL) == 2.0
    t = feed(shield, E1_LOCAL, 'xxxxx', t + 2.0)        # right after its release: still late
    assert shield.hold_of(E1_LOCAL) == 4.0
    t = feed(shield, E1_LOCAL, 'xxxxx', t + 4.0)
    assert shield.hold_of(E1_LOCAL) == 5.0              # capped
    feed(shield, E1_LOCAL, 'xxxxx', t + 5.0 + 3.0)     # blocked again 3 s after the release: still 5 s
    assert shield.hold_of(E1_LOCAL) == 5.0
    feed(shield, E1_LOCAL, 'xxxxx', t + 60.0)           # a minute later: a new situation, a short block
    assert shield.hold_of(E1_LOCAL) == 2.0


def test_results_of_frames_sent_before_the_block_are_ignored():
    shield = DeadlineShield()
    t = feed(shield, E1_LOCAL, 'xxxxx', 0.0)
    assert not shield.record(E1_LOCAL, False, t)        # in flight when blocked: not a new block
    assert shield.blocks_total == 1


def test_the_mask_removes_blocked_actions_but_never_every_action():
    actions = [E0_LOCAL, E1_LOCAL, RAW]
    shield = DeadlineShield()
    allowed = np.array([True, True, True])
    assert shield.mask(actions, allowed, 0.0).tolist() == [True, True, True]
    t = feed(shield, E1_LOCAL, 'xxxxx', 0.0)
    assert shield.mask(actions, allowed, t).tolist() == [True, False, True]
    assert shield.mask(actions, np.array([False, True, True]), t).tolist() == [False, False, True]
    only_blocked = np.array([False, True, False])
    assert shield.mask(actions, only_blocked, t).tolist() == only_blocked.tolist()


@pytest.mark.parametrize('bad', [dict(min_results=0), dict(min_results=11), dict(max_miss_rate=1.0),
                                 dict(hold_s=0.0), dict(hold_s=40.0), dict(memory_s=0.0)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        ShieldConfig(**bad)
    with pytest.raises(ValueError):
        ShieldConfig.from_dict({'windw': 3})


def test_results_of_actions_outside_the_table_are_counted_and_ignored():
    shield = DeadlineShield(actions=[E0_LOCAL, E1_LOCAL])
    feed(shield, RAW, 'xxxxxxxx', 0.0)            # e.g. a foreign or malformed publisher: no history, no block
    assert shield.foreign_results == 8 and shield.blocks_total == 0 and not shield.is_blocked(RAW, 1.0)
    assert RAW not in shield._results
    feed(shield, E1_LOCAL, 'xxxxx', 2.0)          # the table's actions are judged as before
    assert shield.blocks_total == 1
