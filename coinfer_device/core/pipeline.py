# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The device's per-frame work without ROS: frame -> head of the network -> features to the edge, or a result.

:class:`DevicePipeline` owns everything the device node does per frame; the node
(:mod:`coinfer_device.nodes.device_node`) only converts messages and forwards callbacks.

* **Frames** enter a one-frame mailbox (:meth:`DevicePipeline.submit`); a newer frame replaces a
  waiting one (``dropped_busy``).  One worker thread (:meth:`~DevicePipeline.start`) processes
  the mailbox and the re-runs of timed-out frames; :meth:`~DevicePipeline.step` does the same
  once on the caller's thread (tests).
* **Action**: the newest fresh decision (:class:`DecisionKeeper`), else the configured local
  fallback; a remote action while the edge is down is replaced by the fallback.
* **Remote**: the head runs to the partition point, the feature is encoded, stamped with the
  clock and handed to the :class:`~coinfer_device.core.sender.Sender`.  The edge's answer
  (:meth:`~DevicePipeline.on_edge_result`) becomes the frame's one :class:`Result`: the round
  trip runs from the end of encoding to the answer's receipt, ``transfer = round trip - edge_ms``,
  ``total`` from the frame's receipt.  Unanswered frames expire (:meth:`~DevicePipeline.check_timeouts`)
  and are re-run locally; repeated expiries mean *edge down* (:class:`EdgeTracker`).
* **Probes** keep both size classes of the link measurement coming: a local frame's probe is
  sent at once, a remote frame's when the frame's answer is back, so it never delays the frame.
  Probe answers never produce a result, so a probe's values do not matter: it carries a zero
  tensor of its partition's shape and costs the device no network compute, only the encoding
  (on the emulated Pi a real head ran up to 6 x 21 ms for a small probe, and the frames behind
  it missed the deadline).
* **Slow-CPU emulation** (``compute_slowdown`` k): after the model's part the device waits
  (k - 1) x the measured compute; that wait counts in ``device_ms``, never in ``device_compute_ms``.

Everything is timed with one injected monotonic clock (``clock_ns``); stamps sent to the edge
come from it too, so it must be the clock the link monitor reads (``time.monotonic_ns``).
No ROS import: messages are built and published by injected callables.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch

from coinfer_device.core.action import LOCAL_BITS, Action, check_action, is_local
from coinfer_device.core.codec import encode_features, encoded_size
from coinfer_device.core.data import Preprocessing, frame_to_input
from coinfer_device.core.device_state import DecisionKeeper, EdgeTracker, Pending, choose_probe
from coinfer_device.core.image_conversion import ImageFormatError
from coinfer_device.core.model import MultiExitAlexNet, classify
from coinfer_device.core.records import (FALLBACK_EDGE_DOWN, FALLBACK_EDGE_TIMEOUT, FALLBACK_NO_DECISION,
                                         FALLBACK_NONE, FALLBACK_WORDS, SOURCE_DEVICE, SOURCE_EDGE, EdgeResult,
                                         Result, class_name)
from coinfer_device.core.sender import Sender
from coinfer_device.core.thread_names import INFERENCE_THREAD, name_this_thread

COUNTERS = ('frames_in', 'dropped_busy', 'processed', 'results_local', 'results_edge', 'edge_timeouts_rerun',
            'probes_sent', 'probes_answered', 'deadline_misses', 'rejected_images', 'rejected_decisions',
            'late_edge_results', 'link_drops')
RUNTIME_SETTABLE = ('deadline_ms', 'decision_timeout_s', 'compute_slowdown', 'edge_timeout_ms')
MAX_TIMEOUT_CHECK_S = 0.1


def timeout_check_period_s(edge_timeout_ms: float) -> float:
    """Return how often :meth:`DevicePipeline.check_timeouts` should run: a tenth of the timeout, at most 0.1 s.

    Every check wakes the node's executor, whose wait-set rebuild costs CPU that a robot's slow
    core pays for: at a fixed 20 ms this check was over half of the device node's wake-ups.
    """
    return min(MAX_TIMEOUT_CHECK_S, max(0.001, edge_timeout_ms / 1e4))


NS_PER_MS = 1e6


class Log(Protocol):
    """Where the pipeline logs (an rclpy logger fits)."""

    def debug(self, message: str) -> Any:
        """Log a debug line."""

    def info(self, message: str) -> Any:
        """Log an info line."""

    def warning(self, message: str) -> Any:
        """Log a warning."""

    def error(self, message: str) -> Any:
        """Log an error."""


@dataclass
class PipelineConfig:
    """The device's settings (node parameters of the same names; docs/parameters.md)."""

    fallback_action: Action
    probe_candidates: Sequence[tuple[Action, int]] = ()  # remote probe actions with their payload bytes
    deadline_ms: float = 20.0
    decision_timeout_s: float = 2.0
    compute_slowdown: float = 1.0
    edge_timeout_ms: float = 1000.0
    edge_fallback_after: int = 2
    probe_interval_s: float = 0.5
    probe_small_bytes: int = 2048
    probe_large_bytes: int = 4096
    probe_target_ms: float = 25.0


def checked_action(triple: Sequence[int], branch_points: Sequence[int], local: bool) -> Action:
    """Return ``triple`` as an action of a model with ``branch_points`` that is local or remote as asked.

    Raises ValueError ``'[e, p, b]: why'``.
    """
    action = Action(*[int(v) for v in triple])
    problem = check_action(action, branch_points)
    if problem is None and is_local(action, branch_points) != local:
        problem = ('must be a local action (partition = branch point, bits 0)' if local
                   else 'must send features (partition < branch point of the exit)')
    if problem:
        raise ValueError(f'{action.to_list()}: {problem}')
    return action


def probe_candidates(model: MultiExitAlexNet, triples: Sequence[int], small_bytes: int, large_bytes: int,
                     need_both: bool = True) -> list[tuple[Action, int]]:
    """Return the remote actions of a flat ``[e, p, b, ...]`` list with their message sizes.

    With ``need_both`` there must be a small (``<= small_bytes``) and a large (``>= large_bytes``)
    one; raises ValueError saying what is missing.
    """
    branch_points = model.spec.exit_branch_points
    candidates = []
    for i in range(0, len(triples), 3):
        action = checked_action(triples[i:i + 3], branch_points, local=False)
        shape = (1,) + tuple(model.feature_shape(action.partition))
        candidates.append((action, encoded_size(shape, action.bits)))
    if need_both:
        sizes = {a.label(): n for a, n in candidates}
        if not any(n <= small_bytes for _, n in candidates):
            raise ValueError(f'has no action of at most probe_small_bytes {small_bytes} (sizes {sizes})')
        if not any(n >= large_bytes for _, n in candidates):
            raise ValueError(f'has no action of at least probe_large_bytes {large_bytes} (sizes {sizes})')
    return candidates


def warm_up(model: MultiExitAlexNet) -> None:
    """Run every exit once, so the first frame does not pay for allocations."""
    s = model.spec
    x = torch.zeros(1, s.in_channels, s.image_size, s.image_size)
    with torch.inference_mode():
        for e, bp in enumerate(s.exit_branch_points):
            model.infer(x, bp, e)


class Counters:
    """Event counts of the device (diagnostics), thread-safe, with rates on the pipeline's clock."""

    def __init__(self, clock_ns: Callable[[], int], names: Sequence[str] = COUNTERS) -> None:
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._totals = dict.fromkeys(names, 0)
        self._t0 = clock_ns()
        self._last: dict[str, tuple[int, int]] = {}

    def add(self, name: str, n: int = 1) -> None:
        """Count ``n`` events of ``name``."""
        with self._lock:
            self._totals[name] += n

    def __getitem__(self, name: str) -> int:
        """Return the total of ``name``."""
        with self._lock:
            return self._totals[name]

    def totals(self) -> dict[str, int]:
        """Return every total, in the order of the names."""
        with self._lock:
            return dict(self._totals)

    def rate(self, name: str) -> float:
        """Return events of ``name`` per second since the previous call (since creation the first time)."""
        now = self._clock_ns()
        with self._lock:
            total = self._totals[name]
            last_t, last_total = self._last.get(name, (self._t0, 0))
            self._last[name] = (now, total)
        return (total - last_total) / max((now - last_t) / 1e9, 1e-6)


@dataclass
class FrameJob:
    """A frame waiting for the worker: the raw input (``convert`` makes it a frame) and its opaque header."""

    raw: Any
    header: Any
    received_ns: int


@dataclass
class SentFrame:
    """What the device keeps about a frame sent to the edge."""

    header: Any
    received_ns: int
    x: torch.Tensor
    action: Action
    fallback: int
    device_ms: float
    compute_ms: float
    payload_bytes: int
    ready_ns: int


@dataclass
class DeferredProbe:
    """A probe waiting for the answer to the frame it was made from."""

    frame_stamp: int
    seq: int
    header: Any
    feature: torch.Tensor
    action: Action


def _identity(raw: Any) -> np.ndarray:
    return raw


class DevicePipeline:
    """Per-frame work of the device (see module docstring).

    ``publish_result(header, result)`` publishes a frame's one result; ``make_features(payload,
    header)`` builds the message handed to ``sender``; ``convert(raw)`` turns what :meth:`submit`
    got into a uint8 frame (raising :class:`ImageFormatError` for a bad one, counted and reported
    through ``warn_rejected``, default ``log.warning``); ``sleep(seconds)`` is the slow-CPU wait.
    """

    def __init__(self, model: MultiExitAlexNet, preprocessing: Preprocessing, class_names: Sequence[str],
                 config: PipelineConfig, *, sender: Sender, publish_result: Callable[[Any, Result], Any],
                 make_features: Callable[[bytes, Any], Any], log: Log,
                 clock_ns: Callable[[], int] = time.monotonic_ns, sleep: Callable[[float], Any] = time.sleep,
                 convert: Callable[[Any], np.ndarray] = _identity,
                 warn_rejected: Callable[[str], Any] | None = None) -> None:
        self.model, self.pre, self.class_names = model, preprocessing, tuple(class_names)
        self.branch_points = tuple(model.spec.exit_branch_points)
        self.config = config
        self.sender = sender
        self._publish_result = publish_result
        self._make_features = make_features
        self._log = log
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._convert = convert
        self._warn_rejected = warn_rejected or log.warning
        self.counters = Counters(clock_ns)
        self.keeper = DecisionKeeper(config.fallback_action, config.decision_timeout_s)
        self.tracker = EdgeTracker(config.edge_timeout_ms / 1e3, config.edge_fallback_after,
                                   config.probe_interval_s, config.probe_small_bytes, config.probe_large_bytes)
        self._last_action: Action | None = None
        self._last_fallback = -1
        self._seq = 0
        self._stamp_lock = threading.Lock()
        self._last_stamp = 0
        self._measured_mbps: float | None = None  # coinfer/link/bandwidth_mbps
        self._measured_rtt_ms = 0.0  # coinfer/link/rtt_ms
        self._probe_mbps: float | None = None  # what the newest large probe's own round trip implies
        self._deferred_lock = threading.Lock()
        self._deferred: DeferredProbe | None = None
        self._encode_ns: dict[tuple[int, int], int] = {}  # newest encoding time per (partition, bits)
        self._probe_features: dict[int, torch.Tensor] = {}  # partition -> the zero tensor a probe carries
        self._cv = threading.Condition()
        self._mailbox: FrameJob | None = None
        self._reruns: list[Pending] = []
        self._stop = False
        self._worker: threading.Thread | None = None

    # ------------------------------------------------------------------ settings and link inputs

    def configure(self, name: str, value: Any) -> None:
        """Apply a runtime change of one of :data:`RUNTIME_SETTABLE`."""
        if name not in RUNTIME_SETTABLE:
            raise ValueError(f'{name} cannot change at runtime')
        setattr(self.config, name, value)
        if name == 'decision_timeout_s':
            self.keeper.timeout_s = value
        elif name == 'edge_timeout_ms':
            self.tracker.timeout_s = value / 1e3

    def set_link_bandwidth(self, mbps: float) -> None:
        """Take the link monitor's bandwidth estimate (sizes the large probe); ignored unless > 0."""
        if mbps > 0:
            self._measured_mbps = float(mbps)

    def set_link_rtt(self, rtt_ms: float) -> None:
        """Take the link monitor's RTT estimate; ignored when negative."""
        if rtt_ms >= 0:
            self._measured_rtt_ms = float(rtt_ms)

    def offer_decision(self, action: Action) -> str | None:
        """Apply a policy decision from now on; return why it was rejected (counted), else ``None``."""
        problem = check_action(action, self.branch_points)
        if problem:
            self.counters.add('rejected_decisions')
            return problem
        if is_local(action, self.branch_points):
            action = Action(action.exit, action.partition, LOCAL_BITS)
        self.keeper.offer(action, self._clock_ns() / 1e9)
        return None

    # ------------------------------------------------------------------ frames in, worker

    def submit(self, raw: Any, header: Any) -> None:
        """Put a frame in the mailbox (replacing one still waiting, counted as ``dropped_busy``)."""
        job = FrameJob(raw, header, self._clock_ns())
        self.counters.add('frames_in')
        with self._cv:
            if self._mailbox is not None:
                self.counters.add('dropped_busy')
            self._mailbox = job
            self._cv.notify()

    def step(self) -> bool:
        """Process one waiting re-run or the mailbox's frame on the caller's thread; return whether there was one."""
        with self._cv:
            job = self._take()
        if job is None:
            return False
        self._run(job)
        return True

    def start(self) -> None:
        """Start the worker thread that processes frames as they come."""
        self._worker = threading.Thread(target=self._work, name='device-inference', daemon=True)
        self._worker.start()

    def close(self) -> None:
        """Stop the worker thread and the sender."""
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
        self.sender.close()

    def _take(self) -> FrameJob | Pending | None:
        if self._reruns:
            return self._reruns.pop(0)
        job, self._mailbox = self._mailbox, None
        return job

    def _work(self) -> None:
        name_this_thread(INFERENCE_THREAD)
        while True:
            with self._cv:
                while not self._stop and self._mailbox is None and not self._reruns:
                    self._cv.wait()
                if self._stop:
                    return
                job = self._take()
            try:
                self._run(job)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the robot
                self._log.error(f'frame processing failed: {type(exc).__name__}: {exc}')

    def _run(self, job: FrameJob | Pending | None) -> None:
        with torch.inference_mode():
            if isinstance(job, Pending):
                self._rerun(job)
            elif job is not None:
                self._process(job)

    # ------------------------------------------------------------------ one frame

    def _choose(self, now_s: float) -> tuple[Action, int, bool]:
        """Return ``(action, fallback code, remote)`` for a frame now, and log when the reason changes."""
        action, fresh = self.keeper.current(now_s)
        fallback = FALLBACK_NONE if fresh else FALLBACK_NO_DECISION
        remote = not is_local(action, self.branch_points)
        if remote and self.tracker.edge_down:
            action, fallback, remote = self.config.fallback_action, FALLBACK_EDGE_DOWN, False
        if fallback != self._last_fallback:
            self._log.info(f'applying {action.label()} ({FALLBACK_WORDS[fallback]})')
            self._last_fallback = fallback
        elif action != self._last_action:
            self._log.debug(f'applying {action.label()}')
        self._last_action = action
        return action, fallback, remote

    def _process(self, job: FrameJob) -> None:
        t0 = self._clock_ns()
        try:
            frame = self._convert(job.raw)
        except ImageFormatError as exc:
            self.counters.add('rejected_images')
            self._warn_rejected(f'rejected image: {exc}')
            return
        now_s = self._clock_ns() / 1e9
        action, fallback, remote = self._choose(now_s)
        seq = self._seq
        self._seq += 1
        self.counters.add('processed')
        x = frame_to_input(frame, self.pre)
        if remote:
            feature, head_ns = self._timed(lambda: self.model.head(x, action.partition))

            def record(device_ms: float, nbytes: int, ready_ns: int) -> SentFrame:
                return SentFrame(job.header, job.received_ns, x, action, fallback, device_ms, head_ns / NS_PER_MS,
                                 nbytes, ready_ns)
            stamp = self._send(seq, job.header, feature, action, probe=False, t0=t0, data=record, compute_ns=head_ns)
            kind = self.tracker.probe_due(now_s)
            if kind:
                self._defer_probe(stamp, seq, job.header, self._probe_action(kind))
            return
        self._answer_locally(seq, job.header, x, action, fallback, job.received_ns, t0)
        kind = self.tracker.probe_due(now_s)
        if kind:
            probe_action = self._probe_action(kind)
            self._send_probe(seq, job.header, self._probe_feature(probe_action), probe_action)

    def _rerun(self, pending: Pending) -> None:
        sent: SentFrame = pending.data
        self.counters.add('edge_timeouts_rerun')
        self._answer_locally(pending.seq, sent.header, sent.x, self.config.fallback_action, FALLBACK_EDGE_TIMEOUT,
                             sent.received_ns, self._clock_ns())

    def _timed(self, compute: Callable[[], Any]) -> tuple[Any, int]:
        """Return ``compute()`` and its duration in nanoseconds."""
        start = self._clock_ns()
        return compute(), self._clock_ns() - start

    def _emulate_slower_cpu(self, compute_ns: int) -> None:
        """Wait (k - 1) x ``compute_ns``: the extra time a ``compute_slowdown`` k times slower CPU would take."""
        extra_s = (self.config.compute_slowdown - 1.0) * compute_ns / 1e9
        if extra_s > 0:
            self._sleep(extra_s)

    def _answer_locally(self, seq: int, header: Any, x: torch.Tensor, action: Action, fallback: int,
                        received_ns: int, t0: int) -> None:
        exit_point = action.exit
        logits, compute_ns = self._timed(lambda: self.model.infer(x, self.branch_points[exit_point], exit_point))
        self._emulate_slower_cpu(compute_ns)
        class_id, confidence = classify(logits)
        now = self._clock_ns()
        total = (now - received_ns) / NS_PER_MS
        self._publish(header, Result(
            frame_seq=seq, class_id=class_id, confidence=confidence, exit=exit_point, partition=action.partition,
            bits=LOCAL_BITS, source=SOURCE_DEVICE, fallback=fallback, device_ms=(now - t0) / NS_PER_MS,
            transfer_ms=0.0, edge_ms=0.0, total_ms=total, round_trip_ms=0.0, payload_bytes=0,
            deadline_ms=self.config.deadline_ms, deadline_met=total <= self.config.deadline_ms,
            device_compute_ms=compute_ns / NS_PER_MS, edge_compute_ms=0.0))
        self.counters.add('results_local')

    def _publish(self, header: Any, result: Result) -> None:
        result.class_name = class_name(self.class_names, result.class_id)
        if not result.deadline_met:
            self.counters.add('deadline_misses')
        self._publish_result(header, result)

    # ------------------------------------------------------------------ to the edge

    def _next_stamp(self) -> int:
        with self._stamp_lock:  # unique: answers are matched by stamp (a frame and its probe share frame_seq)
            self._last_stamp = max(self._clock_ns(), self._last_stamp + 1)
            return self._last_stamp

    def _send(self, seq: int, header: Any, feature: torch.Tensor, action: Action, probe: bool, t0: int,
              data: Callable[[float, int, int], Any], compute_ns: int | None = None) -> int:
        """Encode and hand a feature message to the sender; return its stamp.

        With ``compute_ns`` (the head's time) the slower CPU is emulated for the head and the
        encoding (the latter as measured for the previous message of this size).
        """
        key = (action.partition, action.bits)
        if compute_ns is not None:  # before the stamp: the link monitor's round trip must not contain it
            self._emulate_slower_cpu(compute_ns + self._encode_ns.get(key, 0))
        # The stamp goes into the message, so it is taken before encoding; the round trip is
        # counted from the end of encoding (ready_ns) so device_ms and round_trip_ms do not overlap.
        stamp = self._next_stamp()
        start = self._clock_ns()
        payload = encode_features(feature, bits=action.bits, exit_point=action.exit,
                                  partition_point=action.partition, frame_seq=seq,
                                  device_compute_ms=(start - t0) / NS_PER_MS, device_stamp_ns=stamp)
        ready_ns = self._clock_ns()
        if compute_ns is not None:
            self._encode_ns[key] = ready_ns - start
        nbytes = len(payload)
        self.tracker.sent(Pending(seq, ready_ns / 1e9, stamp, probe, payload_bytes=nbytes,
                                  data=data((ready_ns - t0) / NS_PER_MS, nbytes, ready_ns)))
        self.sender.send(self._make_features(payload, header), nbytes)
        return stamp

    def _probe_action(self, kind: str) -> Action:
        # The link monitor's estimate lags a drop by seconds; the newest probe's own round trip does not,
        # and a probe sized for the old link would hold the slower one (and the frames behind it) for long.
        known = [v for v in (self._measured_mbps, self._probe_mbps) if v is not None]
        c = self.config
        return choose_probe(kind, c.probe_candidates, c.probe_small_bytes, c.probe_large_bytes,
                            min(known) if self._measured_mbps is not None else None, c.probe_target_ms)

    def _probe_feature(self, action: Action) -> torch.Tensor:
        """Return the (cached) zero tensor of ``action``'s partition that a probe carries."""
        feature = self._probe_features.get(action.partition)
        if feature is None:
            feature = torch.zeros((1,) + self.model.feature_shape(action.partition))
            self._probe_features[action.partition] = feature
        return feature

    def _send_probe(self, seq: int, header: Any, feature: torch.Tensor, action: Action) -> None:
        self._send(seq, header, feature, action, probe=True, t0=self._clock_ns(), data=lambda *_: None)
        self.counters.add('probes_sent')

    def _defer_probe(self, frame_stamp: int, seq: int, header: Any, action: Action) -> None:
        """Send a probe once the answer to the frame stamped ``frame_stamp`` is back (at once if it already is)."""
        feature = self._probe_feature(action)
        with self._deferred_lock:
            # The answer may already be back (fast link): then nobody else would send the probe.
            if self.tracker.waiting(frame_stamp):
                self._deferred = DeferredProbe(frame_stamp, seq, header, feature, action)
                return
        self._send_probe(seq, header, feature, action)

    def _send_deferred_probe(self, frame_stamp: int) -> None:
        with self._deferred_lock:
            probe = self._deferred
            if probe is None or probe.frame_stamp != frame_stamp:
                return
            self._deferred = None
        with torch.inference_mode():
            self._send_probe(probe.seq, probe.header, probe.feature, probe.action)

    # ------------------------------------------------------------------ from the edge

    def on_edge_result(self, answer: EdgeResult | None, received_ns: int | None = None) -> None:
        """Complete the frame an edge answer belongs to (``None`` = an unreadable answer, counted as late).

        ``received_ns`` is the receipt time on the pipeline's clock (default: now).  Answers that
        match nothing in flight (late, foreign or already re-run) are counted and dropped.
        """
        now = self._clock_ns() if received_ns is None else received_ns
        if answer is None:
            self.counters.add('late_edge_results')
            return
        pending, came_back = self.tracker.answered(answer.frame_seq, answer.device_stamp_ns)
        if came_back:
            self._log.info('edge answering again: back to the policy decisions')
        if pending is None:
            self.counters.add('late_edge_results')
            return
        if pending.probe:
            self.counters.add('probes_answered')
            if pending.payload_bytes >= self.config.probe_large_bytes:
                serialization_ms = (now / 1e9 - pending.sent_at) * 1e3 - answer.edge_ms - self._measured_rtt_ms
                # Only a clearly slow probe says something (the link monitor's estimate may lag a drop).
                self._probe_mbps = (8.0 * pending.payload_bytes / serialization_ms / 1e3
                                    if serialization_ms > 1.0 else None)
            return
        sent: SentFrame = pending.data
        round_trip = (now - sent.ready_ns) / NS_PER_MS
        total = (now - sent.received_ns) / NS_PER_MS
        self._publish(sent.header, Result(
            frame_seq=answer.frame_seq, class_id=answer.class_id, confidence=answer.confidence, exit=answer.exit,
            partition=answer.partition, bits=answer.bits, source=SOURCE_EDGE, fallback=sent.fallback,
            device_ms=sent.device_ms, transfer_ms=max(round_trip - answer.edge_ms, 0.0), edge_ms=answer.edge_ms,
            total_ms=total, round_trip_ms=round_trip, payload_bytes=sent.payload_bytes,
            deadline_ms=self.config.deadline_ms, deadline_met=total <= self.config.deadline_ms,
            device_compute_ms=sent.compute_ms, edge_compute_ms=answer.edge_compute_ms))
        self.counters.add('results_edge')
        self._send_deferred_probe(pending.stamp_ns)

    def check_timeouts(self) -> None:
        """Expire unanswered frames (queued for a local re-run) and enter edge-down mode when due."""
        expired, began = self.tracker.expire(self._clock_ns() / 1e9)
        if began:
            self._log.warning(
                f'edge not answering ({self.tracker.timeouts_to_fallback} frames timed out after '
                f'{self.tracker.timeout_s * 1e3:g} ms): answering locally with '
                f'{self.config.fallback_action.label()}, probing every {self.config.probe_interval_s:g} s')
        reruns = [p for p in expired if not p.probe]
        if reruns:
            with self._cv:
                self._reruns.extend(reruns)
                self._cv.notify()

    # ------------------------------------------------------------------ diagnostics

    def diagnostic_values(self) -> dict[str, Any]:
        """Return the device's diagnostic values (docs/topics.md, "Diagnostics")."""
        now_s = self._clock_ns() / 1e9
        action, fresh = self.keeper.current(now_s)
        values: dict[str, Any] = dict(self.counters.totals())
        values.update({
            'frame_rate_hz': self.counters.rate('frames_in'), 'processed_rate_hz': self.counters.rate('processed'),
            'decision': action.label(), 'decision_fresh': fresh, 'decision_age_s': self.keeper.age(now_s),
            'decisions_accepted': self.keeper.accepted, 'edge_down': self.tracker.edge_down,
            'edge_fallback_entries': self.tracker.fallback_entries, 'in_flight': self.tracker.in_flight(),
            'sender_queue': self.sender.queued(),
        })
        return values
