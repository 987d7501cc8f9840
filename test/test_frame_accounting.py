# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Camera frames between camera and device: every announced frame is received, lost, or missed at start."""

from __future__ import annotations

from coinfer_device.core.frame_accounting import FrameAccounting

MS = 1_000_000


def _stamp(seq: int) -> int:
    return 5_000 * MS + seq * 100 * MS  # 10 Hz


def test_frames_before_the_first_announcement_are_missed_at_start_less_those_that_arrived():
    acc = FrameAccounting(grace_s=1.0)
    assert not acc.available and 'unavailable' in acc.values()['frame_accounting']
    now = 0.0
    for seq in range(3, 20):  # frames 0..2 were published before the device listened; image 3 arrived
        now += 0.1
        acc.image(_stamp(seq), now)
        if seq >= 5:  # the ground-truth subscription matched two frames later than the image one
            acc.announce(_stamp(seq), seq, now)
    acc.settle(now + 5.0)
    assert acc.missed_at_start == 3 and acc.received == 17 and acc.lost == 0
    assert acc.camera_frames == 20 and acc.values()['camera_frames'] == 20


def test_an_overwritten_frame_is_lost_and_a_lost_announcement_is_settled_from_the_images():
    acc = FrameAccounting(grace_s=1.0)
    now = 0.0
    for seq in range(50):
        now += 0.1
        if seq not in (17, 40):  # overwritten in the keep-last-1 image queue before the callback
            acc.image(_stamp(seq), now + (0.05 if seq % 3 else -0.05))  # either message may come first
        if seq not in (30, 31, 40):  # announcements lost too: 30 and 31 arrived as images, 40 did not
            acc.announce(_stamp(seq), seq, now)
        acc.settle(now)
    acc.settle(now + 5.0)
    assert (acc.missed_at_start, acc.received, acc.lost) == (0, 48, 2)
    assert acc.camera_frames == 50


def test_only_settled_frames_count_and_old_unannounced_images_are_forgotten():
    acc = FrameAccounting(grace_s=2.0)
    acc.announce(_stamp(0), 0, 0.0)
    acc.image(_stamp(0), 0.5)
    acc.settle(1.0)
    assert acc.camera_frames == 0, 'not settled before the grace time'
    acc.settle(2.5)
    assert (acc.received, acc.lost) == (1, 0)
    acc.image(_stamp(99), 3.0)  # never announced (e.g. an unlabelled frame)
    acc.settle(3.0 + acc.keep_s + 0.1)
    assert acc._images == {}


def test_a_restarted_camera_starts_a_new_count():
    acc = FrameAccounting(grace_s=1.0)
    for seq in range(5):
        acc.image(_stamp(seq), seq * 0.1)
        acc.announce(_stamp(seq), seq, seq * 0.1)
    for seq in range(3):  # the camera restarted: its numbers begin again, with later stamps
        stamp = _stamp(1000 + seq)
        acc.image(stamp, 10 + seq * 0.1)
        acc.announce(stamp, seq, 10 + seq * 0.1)
    acc.settle(100.0)
    assert (acc.missed_at_start, acc.received, acc.lost) == (0, 8, 0)
    assert acc.announce(_stamp(2000), -1, 200.0) is None and acc.camera_frames == 8, 'negative numbers are ignored'


def test_the_ground_truth_record_carries_the_camera_frame_number():
    from std_msgs.msg import Header
    from coinfer_device.ros import messages as m
    gt = m.make_ground_truth_msg(3, Header(frame_id='camera'), frame_seq=41)
    assert list(gt.name) == ['class_id', 'frame_seq'] and m.read_ground_truth(gt) == 3
    assert m.read_ground_truth_frame_seq(gt) == 41
    old = m.make_ground_truth_msg(3, Header(frame_id='camera'))  # as recorded before the field existed
    assert m.read_ground_truth_frame_seq(old) is None and m.read_ground_truth(old) == 3
    gt.position[1] = 4.5
    assert m.read_ground_truth_frame_seq(gt) is None, 'not a frame number'
