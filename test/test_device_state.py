# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Device bookkeeping: action validity, stale decisions, edge timeouts, edge-down mode and probes."""

import pytest

from coinfer_device.device_state import DecisionKeeper, EdgeTracker, Pending, check_action, is_local
from coinfer_device.profile import Action, action_table

BRANCH_POINTS = (2, 4, 10)


def test_every_action_of_the_table_is_valid_and_local_ones_are_recognized():
    for a in action_table(BRANCH_POINTS, (1, 2, 4, 8, 16, 32)):
        assert check_action(a, BRANCH_POINTS) is None
        assert is_local(a, BRANCH_POINTS) == (a.bits == 0)


@pytest.mark.parametrize('action', [Action(3, 0, 8), Action(-1, 0, 8), Action(0, 3, 8), Action(0, 2, 8),
                                    Action(1, 1, 0), Action(1, 1, 9), Action(2, 0, 12), Action(2, 11, 0)])
def test_invalid_actions_are_explained(action):
    assert check_action(action, BRANCH_POINTS)


def test_decision_goes_stale_after_timeout():
    fallback = Action(2, 10, 0)
    keeper = DecisionKeeper(fallback, timeout_s=1.0)
    assert keeper.current(0.0) == (fallback, False)
    keeper.offer(Action(1, 2, 8), now=10.0)
    assert keeper.current(10.5) == (Action(1, 2, 8), True)
    assert keeper.current(11.01) == (fallback, False)
    assert keeper.age(12.0) == pytest.approx(2.0)


def _pending(seq, t, probe=False):
    return Pending(seq, sent_at=t, stamp_ns=int(t * 1e9) + seq, probe=probe)


def test_timeouts_enter_edge_down_and_an_answer_ends_it():
    tracker = EdgeTracker(timeout_s=0.5, timeouts_to_fallback=2, probe_interval_s=0.3)
    tracker.sent(_pending(0, 0.0))
    tracker.sent(_pending(1, 0.1))
    late, began = tracker.expire(0.55)
    assert [p.seq for p in late] == [0] and not began and not tracker.edge_down
    late, began = tracker.expire(0.65)
    assert [p.seq for p in late] == [1] and began and tracker.edge_down
    assert tracker.expire(0.7) == ([], False)
    probe = _pending(2, 1.0, probe=True)
    tracker.sent(probe)
    assert tracker.answered(2, probe.stamp_ns + 1) == (None, False), 'stale answer with another stamp'
    got, came_back = tracker.answered(2, probe.stamp_ns)
    assert got is probe and came_back and not tracker.edge_down
    assert tracker.answered(2, probe.stamp_ns) == (None, False), 'each frame is answered once'


def test_an_answer_resets_the_consecutive_count():
    tracker = EdgeTracker(timeout_s=0.5, timeouts_to_fallback=2, probe_interval_s=0.0)
    tracker.sent(_pending(0, 0.0))
    tracker.sent(_pending(1, 0.0))
    tracker.expire(0.6)  # two timeouts at once
    assert tracker.edge_down
    tracker.sent(_pending(2, 1.0))
    tracker.answered(2, _pending(2, 1.0).stamp_ns)
    tracker.sent(_pending(3, 2.0))
    tracker.expire(2.6)
    assert not tracker.edge_down


def test_probe_due_after_quiet_interval():
    tracker = EdgeTracker(timeout_s=1.0, timeouts_to_fallback=1, probe_interval_s=0.5)
    assert tracker.probe_due(0.0)
    tracker.sent(_pending(0, 1.0))
    assert not tracker.probe_due(1.4) and tracker.probe_due(1.5)
    assert not EdgeTracker(1.0, 1, probe_interval_s=0.0).probe_due(100.0)
