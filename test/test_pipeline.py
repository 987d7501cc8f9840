# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The device pipeline without ROS: a fake clock, fake publishers and a fake edge, one thread unless stated."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import coinfer_device.core.pipeline as pl
from coinfer_device.core import records as rec
from coinfer_device.core.action import Action
from coinfer_device.core.codec import decode_features, encoded_size
from coinfer_device.core.data import Preprocessing
from coinfer_device.core.image_conversion import ImageFormatError
from coinfer_device.core.model import ModelSpec, MultiExitAlexNet
from coinfer_device.core.sender import InlineSender, ThreadSender

torch.set_num_threads(1)

FALLBACK = Action(2, 10, 0)
REMOTE = Action(2, 4, 8)  # 64 x 8 x 8 at 8 bits: a large message
SMALL_REMOTE = Action(2, 0, 8)  # the 1 x 32 x 32 input at 8 bits: a small message
PROBES = [2, 0, 8, 2, 0, 32, 2, 2, 8, 2, 2, 16, 2, 1, 8]
CLASSES = tuple(f'class{i}' for i in range(10))
HEAD_MS, TAIL_MS = 2.0, 1.0
FRAME = np.zeros((28, 28), np.uint8)


class Clock:
    """A monotonic clock that only moves when told."""

    def __init__(self) -> None:
        self.ns = 5_000_000_000

    def __call__(self) -> int:
        return self.ns

    def advance(self, ms: float) -> None:
        self.ns += round(ms * 1e6)


class TimedModel(MultiExitAlexNet):
    """A real model whose head and tail take a fixed time on the fake clock."""

    def __init__(self, clock: Clock) -> None:
        torch.manual_seed(0)
        super().__init__(ModelSpec())
        self.eval()
        self.clock = clock

    def head(self, x, partition):
        self.clock.advance(HEAD_MS)
        return super().head(x, partition)

    def tail(self, feature, partition, exit_point):
        self.clock.advance(TAIL_MS)
        return super().tail(feature, partition, exit_point)


class Log:
    """Collect log lines by level."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level):
        return lambda text: self.lines.append((level, text))


class Rig:
    """A pipeline wired to fakes: ``sent`` holds ``(payload, header)`` messages, ``results`` ``(header, Result)``."""

    def __init__(self, **settings) -> None:
        self.clock = Clock()
        self.model = TimedModel(self.clock)
        self.sent: list[tuple[bytes, object]] = []
        self.results: list[tuple[object, rec.Result]] = []
        self.sleeps: list[float] = []
        self.log = Log()
        self.on_send = None  # a fake edge answering inside send
        candidates = pl.probe_candidates(self.model, PROBES, 2048, 4096)
        settings.setdefault('probe_interval_s', 0.0)
        self.pipe = pl.DevicePipeline(
            self.model, Preprocessing(), CLASSES, pl.PipelineConfig(FALLBACK, candidates, **settings),
            sender=InlineSender(self._send), publish_result=lambda h, r: self.results.append((h, r)),
            make_features=lambda payload, header: (payload, header), log=self.log, clock_ns=self.clock,
            sleep=self._sleep)

    def _send(self, item) -> None:
        self.sent.append(item)
        if self.on_send is not None:
            self.on_send(item)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds * 1e3)

    def frame(self, header='h', wait_ms: float = 0.0) -> None:
        """Submit a frame, let it wait ``wait_ms`` in the mailbox and process it."""
        self.pipe.submit(FRAME, header)
        self.clock.advance(wait_ms)
        assert self.pipe.step()

    def answer(self, item, edge_ms=4.0, edge_compute_ms=3.0, class_id=7, seq=None, stamp=None) -> None:
        """Let the fake edge answer a sent message now."""
        header, _ = decode_features(item[0])
        self.pipe.on_edge_result(rec.EdgeResult(
            frame_seq=header.frame_seq if seq is None else seq, class_id=class_id, confidence=0.75,
            exit=header.exit_point, partition=header.partition_point, bits=header.bits,
            device_ms=header.device_compute_ms, edge_ms=edge_ms, payload_bytes=len(item[0]),
            device_stamp_ns=header.device_stamp_ns if stamp is None else stamp, edge_compute_ms=edge_compute_ms))

    def count(self, name: str) -> int:
        return self.pipe.counters[name]


def _action_of(item) -> Action:
    header, _ = decode_features(item[0])
    return Action(header.exit_point, header.partition_point, header.bits)


def test_fresh_decision_applies_and_a_stale_one_falls_back():
    rig = Rig(decision_timeout_s=1.0)
    assert rig.pipe.offer_decision(Action(1, 4, 0)) is None
    rig.frame('a')
    rig.clock.advance(1001.0)
    rig.frame('b')
    (h1, r1), (h2, r2) = rig.results
    assert (h1, r1.action, r1.fallback, r1.source) == ('a', Action(1, 4, 0), rec.FALLBACK_NONE, rec.SOURCE_DEVICE)
    assert (h2, r2.action, r2.fallback) == ('b', FALLBACK, rec.FALLBACK_NO_DECISION)
    assert [r.frame_seq for _, r in rig.results] == [0, 1] and not rig.sent
    assert ('info', 'applying e1/local (policy decision)') in rig.log.lines
    assert ('info', 'applying e2/local (no fresh decision)') in rig.log.lines


def test_invalid_decisions_are_rejected_counted_and_change_nothing():
    rig = Rig()
    assert 'exit 3 out of range' in rig.pipe.offer_decision(Action(3, 0, 8))
    assert rig.count('rejected_decisions') == 1 and rig.pipe.keeper.accepted == 0
    rig.frame()
    assert rig.results[0][1].fallback == rec.FALLBACK_NO_DECISION


def test_local_answer_has_the_device_latency_breakdown():
    rig = Rig(deadline_ms=5.0)
    rig.frame(wait_ms=3.0)
    r = rig.results[0][1]
    assert r.device_compute_ms == pytest.approx(HEAD_MS + TAIL_MS) and r.device_ms == pytest.approx(HEAD_MS + TAIL_MS)
    assert r.total_ms == pytest.approx(3.0 + HEAD_MS + TAIL_MS) and not r.deadline_met
    assert (r.transfer_ms, r.edge_ms, r.round_trip_ms, r.payload_bytes, r.edge_compute_ms) == (0, 0, 0, 0, 0)
    assert r.class_name == CLASSES[r.class_id] and 0 < r.confidence <= 1
    assert rig.count('deadline_misses') == 1 and rig.count('results_local') == 1


def test_edge_answer_becomes_the_frames_result_with_round_trip_arithmetic():
    rig = Rig(deadline_ms=20.0)
    rig.pipe.offer_decision(REMOTE)
    rig.frame('cam', wait_ms=1.0)
    assert not rig.results and len(rig.sent) == 1
    payload, header = rig.sent[0]
    codec_header, _ = decode_features(payload)
    assert header == 'cam' and codec_header.frame_seq == 0 and codec_header.device_compute_ms == pytest.approx(HEAD_MS)
    assert codec_header.device_stamp_ns == rig.clock.ns  # stamped after the head, right before encoding
    rig.clock.advance(7.0)
    rig.answer(rig.sent[0], edge_ms=4.0, edge_compute_ms=3.0, class_id=7)
    (h, r), = rig.results
    assert h == 'cam' and (r.source, r.fallback, r.action, r.class_id, r.class_name) == (
        rec.SOURCE_EDGE, rec.FALLBACK_NONE, REMOTE, 7, 'class7')
    assert r.round_trip_ms == pytest.approx(7.0) and r.transfer_ms == pytest.approx(3.0)
    assert r.edge_ms == 4.0 and r.edge_compute_ms == 3.0
    assert r.device_ms == pytest.approx(HEAD_MS) and r.device_compute_ms == pytest.approx(HEAD_MS)
    assert r.total_ms == pytest.approx(1.0 + HEAD_MS + 7.0) and r.deadline_met
    assert r.payload_bytes == len(payload) == encoded_size((1, 64, 8, 8), 8)
    assert rig.count('results_edge') == 1 and rig.pipe.tracker.in_flight() == 0


def test_transfer_is_never_negative():
    rig = Rig()
    rig.pipe.offer_decision(REMOTE)
    rig.frame()
    rig.clock.advance(2.0)
    rig.answer(rig.sent[0], edge_ms=2.5)
    assert rig.results[0][1].transfer_ms == 0.0 and rig.results[0][1].round_trip_ms == pytest.approx(2.0)


def test_late_and_foreign_answers_are_counted_and_ignored():
    rig = Rig(edge_timeout_ms=100.0, edge_fallback_after=5)
    rig.pipe.offer_decision(REMOTE)
    rig.frame()
    item = rig.sent[0]
    stamp = decode_features(item[0])[0].device_stamp_ns
    rig.answer(item, stamp=stamp + 1)  # an answer meant for another run of the device
    rig.answer(item, seq=3)  # right stamp, wrong frame
    rig.pipe.on_edge_result(None)  # unreadable
    assert rig.count('late_edge_results') == 3 and not rig.results
    rig.clock.advance(101.0)
    rig.pipe.check_timeouts()
    assert rig.pipe.step()  # the local re-run
    rig.answer(item)  # the real answer, after the re-run
    assert rig.count('late_edge_results') == 4
    assert [(r.frame_seq, r.fallback) for _, r in rig.results] == [(0, rec.FALLBACK_EDGE_TIMEOUT)]


def test_unanswered_frame_is_rerun_locally_with_the_fallback():
    rig = Rig(edge_timeout_ms=100.0, edge_fallback_after=2)
    rig.pipe.offer_decision(REMOTE)
    rig.frame('x', wait_ms=1.0)
    rig.clock.advance(99.0)
    rig.pipe.check_timeouts()
    assert not rig.pipe.step(), 'not expired before the timeout'
    rig.clock.advance(2.0)
    rig.pipe.check_timeouts()
    assert rig.pipe.step() and not rig.pipe.tracker.edge_down
    (h, r), = rig.results
    assert h == 'x' and (r.frame_seq, r.action, r.fallback, r.source) == (
        0, FALLBACK, rec.FALLBACK_EDGE_TIMEOUT, rec.SOURCE_DEVICE)
    assert r.device_ms == pytest.approx(HEAD_MS + TAIL_MS)  # the re-run only
    assert r.total_ms == pytest.approx(1.0 + HEAD_MS + 101.0 + HEAD_MS + TAIL_MS)  # from the frame's receipt
    assert rig.count('edge_timeouts_rerun') == 1


def test_repeated_timeouts_mean_edge_down_until_a_probe_is_answered():
    rig = Rig(edge_timeout_ms=100.0, edge_fallback_after=2, probe_interval_s=0.5)
    rig.pipe.offer_decision(REMOTE)
    rig.frame()
    rig.frame()
    assert [_action_of(i) for i in rig.sent] == [REMOTE, REMOTE]  # each frame's probe waits for its answer
    rig.clock.advance(150.0)
    rig.pipe.check_timeouts()
    assert rig.pipe.tracker.edge_down
    assert any(level == 'warning' and text.startswith('edge not answering (2 frames timed out after 100 ms): '
                                                      'answering locally with e2/local, probing every 0.5 s')
               for level, text in rig.log.lines)
    assert rig.pipe.step() and rig.pipe.step() and not rig.pipe.step()
    rig.frame('down')  # the policy still says REMOTE: answered locally, and probed
    h, r = rig.results[-1]
    assert h == 'down' and (r.action, r.fallback, r.source) == (FALLBACK, rec.FALLBACK_EDGE_DOWN, rec.SOURCE_DEVICE)
    assert len(rig.sent) == 3 and rig.count('probes_sent') == 1
    assert ('info', 'applying e2/local (edge down)') in rig.log.lines
    results_before = len(rig.results)
    rig.answer(rig.sent[2])
    assert not rig.pipe.tracker.edge_down and rig.count('probes_answered') == 1
    assert len(rig.results) == results_before, 'a probe answer is not a result'
    assert ('info', 'edge answering again: back to the policy decisions') in rig.log.lines
    rig.frame()
    assert _action_of(rig.sent[-1]) == REMOTE and len(rig.results) == results_before


def test_local_frames_probe_small_then_large_when_due():
    rig = Rig(probe_interval_s=0.5)
    rig.frame()
    rig.frame()
    rig.frame()
    sizes = [len(p) for p, _ in rig.sent]
    assert len(sizes) == 2 and sizes[0] <= 2048 and sizes[1] >= 4096
    assert _action_of(rig.sent[1]) == Action(2, 1, 8), 'the largest probe while no bandwidth is measured'
    assert [h for _, h in rig.sent] == ['h', 'h'] and len(rig.results) == 3
    assert rig.count('probes_sent') == 2
    rig.clock.advance(500.0)
    rig.frame()
    assert len(rig.sent) == 3 and len(rig.sent[2][0]) <= 2048, 'small was sent longest ago: it goes first'


def test_a_probe_carries_zeros_of_its_partition_and_costs_the_device_no_network_compute():
    rig = Rig(probe_interval_s=0.5, compute_slowdown=3.0)
    rig.frame()  # local, small probe
    rig.pipe.offer_decision(SMALL_REMOTE)
    rig.frame()  # remote, large probe after the answer
    rig.answer(rig.sent[1])
    assert rig.count('probes_sent') == 2 and len(rig.sent) == 3
    # one slow-CPU wait per frame for its own compute (the local frame's head and tail, the remote one's head)
    assert rig.sleeps[0] == pytest.approx(2 * (HEAD_MS + TAIL_MS) / 1e3) and len(rig.sleeps) == 2
    for payload, _ in (rig.sent[0], rig.sent[2]):
        header, feature = decode_features(payload)
        assert tuple(feature.shape[1:]) == rig.model.feature_shape(header.partition_point)
        assert not feature.any()


def test_large_probe_is_sized_by_the_lower_of_the_measured_and_its_own_bandwidth():
    rig = Rig(probe_interval_s=0.5)
    rig.pipe.set_link_bandwidth(100.0)
    rig.pipe.set_link_rtt(5.0)
    rig.frame()  # small probe
    rig.frame()  # large probe: 32 kB fits 25 ms at 100 Mbit/s
    large = rig.sent[1]
    assert _action_of(large) == Action(2, 1, 8)
    nbytes = len(large[0])
    serialization_ms = 8.0 * nbytes / 10e3  # the probe's own round trip says 10 Mbit/s
    rig.clock.advance(serialization_ms + 5.0 + 4.0)
    rig.answer(large, edge_ms=4.0)
    rig.clock.advance(500.0)
    rig.frame()  # small again
    rig.frame()  # large: at 10 Mbit/s only 16 kB (13 ms) fits 25 ms
    assert _action_of(rig.sent[3]) == Action(2, 2, 16)


def test_remote_frames_probe_after_their_answer_and_the_probe_makes_no_result():
    rig = Rig(probe_interval_s=0.5)
    rig.pipe.offer_decision(SMALL_REMOTE)
    rig.frame()
    assert len(rig.sent) == 1, 'the probe waits for the frame answer'
    rig.clock.advance(5.0)
    rig.answer(rig.sent[0])
    assert len(rig.results) == 1 and len(rig.sent) == 2
    probe = rig.sent[1]
    assert len(probe[0]) >= 4096 and decode_features(probe[0])[0].frame_seq == 0
    rig.answer(probe)
    assert len(rig.results) == 1 and rig.count('probes_answered') == 1 and rig.count('late_edge_results') == 0


def test_deferred_probe_still_goes_out_when_the_answer_came_first():
    rig = Rig(probe_interval_s=0.5)
    rig.pipe.offer_decision(SMALL_REMOTE)
    rig.on_send = lambda item: rig.answer(item) if len(rig.sent) == 1 else None  # the edge answers at once
    rig.frame()
    assert len(rig.results) == 1 and len(rig.sent) == 2 and len(rig.sent[1][0]) >= 4096
    assert rig.count('probes_sent') == 1


def test_slow_cpu_emulation_waits_k_minus_1_times_the_compute(monkeypatch):
    rig = Rig(compute_slowdown=3.0)
    rig.frame()
    assert rig.sleeps == [pytest.approx(2 * (HEAD_MS + TAIL_MS) / 1e3)]
    r = rig.results[0][1]
    assert r.device_compute_ms == pytest.approx(HEAD_MS + TAIL_MS)
    assert r.device_ms == pytest.approx(3 * (HEAD_MS + TAIL_MS)), 'the wait counts in device_ms only'
    encode = pl.encode_features

    def slow_encode(*args, **kwargs):
        rig.clock.advance(1.0)
        return encode(*args, **kwargs)
    monkeypatch.setattr(pl, 'encode_features', slow_encode)
    rig.pipe.offer_decision(REMOTE)
    rig.frame()
    rig.frame()
    # The encoding is emulated as measured for the previous message of that size, before the stamp.
    assert rig.sleeps[1:] == [pytest.approx(2 * HEAD_MS / 1e3), pytest.approx(2 * (HEAD_MS + 1.0) / 1e3)]
    stamp = decode_features(rig.sent[1][0])[0].device_stamp_ns
    rig.answer(rig.sent[1])
    r = rig.results[-1][1]
    assert r.device_compute_ms == pytest.approx(HEAD_MS) and r.device_ms == pytest.approx(3 * HEAD_MS + 2 * 1.0 + 1.0)
    assert stamp == rig.clock.ns - round(1.0e6), 'stamped after the wait, before encoding'
    rig.pipe.configure('compute_slowdown', 1.0)
    rig.frame()
    assert len(rig.sleeps) == 3


def test_mailbox_keeps_the_newest_frame_and_counts_the_dropped_one():
    rig = Rig()
    for header in ('first', 'second', 'third'):
        rig.pipe.submit(FRAME, header)
    assert rig.pipe.step() and not rig.pipe.step()
    assert [(h, r.frame_seq) for h, r in rig.results] == [('third', 0)]
    assert (rig.count('frames_in'), rig.count('dropped_busy'), rig.count('processed')) == (3, 2, 1)


def test_rejected_images_are_counted_and_take_no_frame_number():
    def convert(raw):
        if raw is None:
            raise ImageFormatError('unsupported encoding')
        return raw
    rig = Rig()
    warned = []
    rig.pipe = pl.DevicePipeline(rig.model, Preprocessing(), CLASSES, rig.pipe.config, sender=rig.pipe.sender,
                                 publish_result=lambda h, r: rig.results.append((h, r)),
                                 make_features=lambda p, h: (p, h), log=rig.log, clock_ns=rig.clock, convert=convert,
                                 warn_rejected=warned.append)
    rig.pipe.submit(None, 'bad')
    assert rig.pipe.step()
    rig.frame('good')
    assert warned == ['rejected image: unsupported encoding'] and rig.count('rejected_images') == 1
    assert [(h, r.frame_seq) for h, r in rig.results] == [('good', 0)]


def test_worker_thread_processes_frames_and_stops():
    rig = Rig()
    done = threading.Event()
    rig.pipe._publish_result = lambda h, r: done.set()
    rig.pipe.start()
    try:
        rig.pipe.submit(FRAME, 'h')
        assert done.wait(10.0)
    finally:
        rig.pipe.close()
    assert not rig.pipe._worker.is_alive()


def test_diagnostic_values_are_the_documented_ones():
    rig = Rig()
    rig.frame()
    values = rig.pipe.diagnostic_values()
    assert list(values) == [*pl.COUNTERS, 'frame_rate_hz', 'processed_rate_hz', 'decision', 'decision_fresh',
                            'decision_age_s', 'decisions_accepted', 'edge_down', 'edge_fallback_entries',
                            'in_flight', 'sender_queue']
    assert values['processed'] == 1 and values['decision'] == 'e2/local' and values['decision_fresh'] is False


def test_counter_rates_use_the_pipeline_clock():
    clock = Clock()
    counters = pl.Counters(clock)
    counters.add('frames_in', 5)
    clock.advance(500.0)
    assert counters.rate('frames_in') == pytest.approx(10.0)
    clock.advance(1000.0)
    assert counters.rate('frames_in') == 0.0


def test_settings_are_checked_with_the_reason():
    model = MultiExitAlexNet(ModelSpec())
    assert pl.checked_action([1, 4, 0], (2, 4, 10), local=True) == Action(1, 4, 0)
    with pytest.raises(ValueError, match=r'\[2, 4, 8\]: must be a local action'):
        pl.checked_action([2, 4, 8], (2, 4, 10), local=True)
    with pytest.raises(ValueError, match='must send features'):
        pl.checked_action([2, 10, 0], (2, 4, 10), local=False)
    with pytest.raises(ValueError, match='no action of at least probe_large_bytes'):
        pl.probe_candidates(model, [2, 0, 8], 2048, 4096)
    assert len(pl.probe_candidates(model, [2, 0, 8], 2048, 4096, need_both=False)) == 1
    with pytest.raises(ValueError, match='cannot change at runtime'):
        Rig().pipe.configure('probe_interval_s', 1.0)


def test_senders_publish_inline_or_from_their_thread_in_order():
    seen = []
    inline = InlineSender(lambda item: seen.append((item, threading.current_thread())))
    assert inline.send('a', 1) and inline.queued() == 0
    assert seen == [('a', threading.current_thread())]
    threaded_seen = []
    threaded = ThreadSender(lambda item: threaded_seen.append((item, threading.current_thread())))
    for i in range(5):
        assert threaded.send(i, 1)
    threaded.close()
    assert [i for i, _ in threaded_seen] == list(range(5))
    assert all(t is not threading.current_thread() for _, t in threaded_seen)


def test_the_timeout_check_runs_ten_times_per_timeout_at_most_every_100_ms():
    assert pl.timeout_check_period_s(1000.0) == pytest.approx(0.1)
    assert pl.timeout_check_period_s(60000.0) == pytest.approx(0.1)
    assert pl.timeout_check_period_s(200.0) == pytest.approx(0.02)
    assert pl.timeout_check_period_s(1.0) == pytest.approx(0.001)
