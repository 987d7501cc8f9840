# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Device bookkeeping: action validity, stale decisions, edge timeouts, edge-down mode and probes."""

import pytest

from coinfer_device.core.action import Action, action_table, check_action, is_local
from coinfer_device.core.device_state import (PROBE_LARGE, PROBE_SMALL, DecisionKeeper, EdgeTracker, Pending,
                                              choose_probe)

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


def _pending(seq, t, probe=False, nbytes=1000):
    return Pending(seq, sent_at=t, stamp_ns=int(t * 1e9) + seq, probe=probe, payload_bytes=nbytes)


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
    assert tracker.probe_due(0.0) == PROBE_SMALL  # nothing sent yet: the RTT first
    tracker.sent(_pending(0, 1.0, nbytes=1000))
    tracker.sent(_pending(1, 1.0, nbytes=40_000))
    assert tracker.probe_due(1.4) is None and tracker.probe_due(1.5) == PROBE_SMALL
    assert EdgeTracker(1.0, 1, probe_interval_s=0.0).probe_due(100.0) is None


def test_large_probe_due_while_only_small_frames_go_out():
    """Small remote frames keep the RTT measured but never the bandwidth: a large probe is due."""
    tracker = EdgeTracker(timeout_s=1.0, timeouts_to_fallback=1, probe_interval_s=0.5, small_bytes=2048,
                          large_bytes=4096)
    tracker.sent(_pending(0, 0.0, nbytes=40_000))
    for i in range(1, 10):  # 1 kB frames at 10 Hz
        tracker.sent(_pending(i, 0.1 * i, nbytes=1088))
        assert tracker.probe_due(0.1 * i) == (PROBE_LARGE if 0.1 * i >= 0.5 - 1e-9 else None), i
    tracker.sent(_pending(10, 1.0, nbytes=3000))  # between the two classes: counts as neither
    assert tracker.probe_due(1.1) == PROBE_LARGE
    tracker.sent(_pending(11, 1.1, nbytes=4160, probe=True))
    assert tracker.probe_due(1.2) is None
    assert tracker.probe_due(1.45) == PROBE_SMALL  # the last small message left at 0.9 s


def test_a_frame_and_its_probe_share_a_frame_number_but_are_answered_separately():
    tracker = EdgeTracker(timeout_s=1.0, timeouts_to_fallback=1, probe_interval_s=0.5)
    frame = Pending(7, sent_at=0.0, stamp_ns=100, probe=False, payload_bytes=1088)
    probe = Pending(7, sent_at=0.01, stamp_ns=101, probe=True, payload_bytes=4160)
    tracker.sent(frame)
    tracker.sent(probe)
    assert tracker.in_flight() == 2
    assert tracker.answered(7, 101) == (probe, False)
    assert tracker.answered(8, 100) == (None, False), 'frame number must match too'
    assert tracker.answered(7, 100) == (frame, False)
    assert tracker.answered(7, 100) == (None, False)


def test_probe_choice_follows_the_measured_bandwidth():
    candidates = [(Action(2, 0, 8), 1088), (Action(2, 0, 32), 4160), (Action(2, 2, 8), 8256),
                  (Action(2, 2, 16), 16448), (Action(2, 1, 8), 32832)]

    def pick(kind, bw):
        return choose_probe(kind, candidates, 2048, 4096, bw, target_ms=15.0)
    assert pick(PROBE_SMALL, 20.0) == Action(2, 0, 8)
    assert pick(PROBE_LARGE, None) == Action(2, 1, 8)  # nothing measured: the largest, measurable on any link
    assert pick(PROBE_LARGE, 0.5) == Action(2, 0, 32)  # 66 ms at 0.5 Mbit/s, none fits 15 ms
    assert pick(PROBE_LARGE, 10.0) == Action(2, 2, 16)  # 13 ms
    assert pick(PROBE_LARGE, 20.0) == Action(2, 1, 8)  # 13 ms
    assert pick(PROBE_LARGE, 1000.0) == Action(2, 1, 8)
