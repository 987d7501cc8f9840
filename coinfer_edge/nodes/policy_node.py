# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Policy node: chooses ``(exit, partition, bits)`` from the measured link and CPU state.

Subscribes ``coinfer/link/bandwidth_mbps``, ``coinfer/link/rtt_ms``,
``coinfer/device/cpu_load``, ``coinfer/edge/cpu_load`` and ``coinfer/result`` (latency of
the newest frame) and publishes ``coinfer/decision`` at ``rate_hz``:

* ``policy: sacd`` (default): the trained discrete SAC policy
  (``coinfer_edge/assets/sacd_policy.pt`` unless ``policy_path``) acting greedily on
  :func:`coinfer_edge.core.env.build_state`;
* ``policy: rule``: model-based exhaustive search over the profile's actions, using the
  latency model of :mod:`coinfer_edge.core.env` with the measured state.

Until bandwidth and RTT have been measured (``wait_for_link``) no decision is published,
so the device keeps its safe local fallback.  The time to decide is measured and reported.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32, Int32MultiArray

from coinfer_device.ros import params as rp
from coinfer_device.core.profile import Action, Profile, ProfileError
from coinfer_device.ros.runtime import Diagnostics, RateMeter, StartupError, level_of, run_node
from coinfer_device.ros import messages as m
from coinfer_edge.core.env import LatencyModel, LatencySettings, RewardConfig, SystemState, build_state, oracle_action
from coinfer_edge.core.policy import PolicyError, TrainedPolicy

QOS = (rp.QosDefault('decision', 'coinfer/decision', 'reliable', 1, 'transient_local'),
       rp.QosDefault('telemetry', 'coinfer/link/* and coinfer/*/cpu_load', 'best_effort', 1),
       rp.QosDefault('result', 'coinfer/result', 'best_effort', 10))
REPORT_EVERY_S = 30.0
_REWARD = RewardConfig()
_LATENCY = LatencySettings()

PARAMS = [
    rp.Param('policy', 'sacd', "'sacd' = trained SAC-d policy, 'rule' = exhaustive search with the latency model",
             choices=('sacd', 'rule')),
    rp.Param('policy_path', '', "Trained policy (.pt with its .json); '' = coinfer_edge/assets/sacd_policy.pt"),
    rp.Param('profile_path', '', "Machine profile JSON; '' = the shipped coinfer_device/assets/profile_x86_64.json"),
    rp.Param('check_profile', True, 'Refuse a policy trained on a different profile (sacd)'),
    rp.Param('rate_hz', 5.0, 'Decision rate', lo=0.1, hi=200.0, unit='Hz'),
    rp.Param('deadline_ms', 0.0, "Deadline in the state and the rule's reward; 0 = the policy's training "
             f'deadline (sacd) or {_REWARD.deadline_ms:g} ms (rule)', lo=0.0, hi=1e6, unit='ms'),
    rp.Param('wait_for_link', True, 'Publish nothing until bandwidth and RTT have been measured'),
    rp.Param('telemetry_stale_s', 5.0, 'Diagnostics warn when an input is older than this', lo=0.1, hi=3600.0,
             unit='s'),
    rp.Param('rule.latency_weight', _REWARD.latency_weight, 'rule: weight of latency/deadline in the reward',
             lo=0.0, hi=1e3),
    rp.Param('rule.miss_penalty', _REWARD.miss_penalty, 'rule: penalty of a deadline miss', lo=0.0, hi=1e3),
    rp.Param('rule.latency_cap', _REWARD.latency_cap, 'rule: cap of latency/deadline in the reward', lo=0.0,
             hi=1e3),
    rp.Param('latency.device_slowdown', _LATENCY.device_slowdown, 'rule: robot CPU time / profiling machine time',
             lo=0.01, hi=1e3),
    rp.Param('latency.edge_slowdown', _LATENCY.edge_slowdown, 'rule: edge CPU time / profiling machine time',
             lo=0.01, hi=1e3),
    rp.Param('latency.max_load', _LATENCY.max_load, 'rule: CPU load cap of the slowdown 1/(1-load)', lo=0.0,
             hi=0.99),
] + rp.qos_params(QOS)


class PolicyNode(Node):
    """Publish split decisions from the measured state (see module docstring)."""

    def __init__(self) -> None:
        super().__init__('policy_node')
        self.p = rp.declare(self, PARAMS)
        try:
            self.profile = Profile.load(self.p['profile_path'] or None)
            self.policy = None
            if self.p['policy'] == 'sacd':
                self.policy = TrainedPolicy.load(self.p['policy_path'] or None, self.profile,
                                                 check_profile=self.p['check_profile'])
        except (ProfileError, PolicyError) as exc:
            hint = ' (or run with -p policy:=rule)' if self.p['policy'] == 'sacd' else ''
            raise StartupError(f'{exc}{hint}') from exc
        self.actions = self.policy.actions if self.policy else self.profile.actions()
        self.index = {a: i for i, a in enumerate(self.actions)}
        if self.policy is not None:
            self.reward = self.policy.reward_config
            self.mask = self.policy.mask
        else:
            self.reward = RewardConfig(deadline_ms=_REWARD.deadline_ms, latency_weight=self.p['rule.latency_weight'],
                                       miss_penalty=self.p['rule.miss_penalty'],
                                       latency_cap=self.p['rule.latency_cap'])
            self.mask = np.ones(len(self.actions), bool)
            self.latency = LatencyModel(self.profile, LatencySettings(
                device_slowdown=self.p['latency.device_slowdown'], edge_slowdown=self.p['latency.edge_slowdown'],
                max_load=self.p['latency.max_load']), self.actions)
        self.deadline_ms = self.p['deadline_ms'] or self.reward.deadline_ms
        self.inputs: dict[str, tuple[float, float]] = {}  # name -> (value, receipt time)
        self.prev_index: int | None = None
        self.decisions = RateMeter()
        self.decide_ms: list[float] = []
        self.decide_max_ms = 0.0
        self._report_t = time.monotonic()
        self._report_n = 0

        self.pub = self.create_publisher(Int32MultiArray, 'coinfer/decision', rp.qos_from(self.p, 'decision'))
        telemetry = rp.qos_from(self.p, 'telemetry')
        for key, topic in (('bandwidth_mbps', 'coinfer/link/bandwidth_mbps'), ('rtt_ms', 'coinfer/link/rtt_ms'),
                           ('device_load', 'coinfer/device/cpu_load'), ('edge_load', 'coinfer/edge/cpu_load')):
            self.create_subscription(Float32, topic, lambda msg, k=key: self._on_input(k, msg.data), telemetry)
        self.create_subscription(JointState, 'coinfer/result', self._on_result, rp.qos_from(self.p, 'result'))
        self.create_timer(1.0 / self.p['rate_hz'], self._decide)
        rp.install_set_callback(self, PARAMS)
        Diagnostics(self, self._diagnostics)

    def ready_summary(self) -> str:
        """Return the one-line description logged with the ready marker."""
        source = f'{self.policy.path}' if self.policy is not None else 'exhaustive search (rule)'
        return (f"policy {self.p['policy']} ({source}), {len(self.actions)} actions, deadline {self.deadline_ms:g} ms, "
                f"{self.p['rate_hz']:g} Hz")

    def _on_input(self, key: str, value: float) -> None:
        if math.isfinite(value):
            self.inputs[key] = (float(value), time.monotonic())

    def _on_result(self, msg: JointState) -> None:
        try:
            result = m.read_result(msg)
        except m.MessageError:
            return
        self._on_input('recent_latency_ms', result.total_ms)

    def _value(self, key: str, default: float | None) -> float | None:
        item = self.inputs.get(key)
        return default if item is None else item[0]

    def _decide(self) -> None:
        t0 = time.perf_counter()
        bw, rtt = self._value('bandwidth_mbps', None), self._value('rtt_ms', None)
        if bw is None or rtt is None:
            if self.p['wait_for_link']:
                return
            bw, rtt = bw or 0.0, rtt or 0.0
        dev, edge = self._value('device_load', 0.0), self._value('edge_load', 0.0)
        if self.policy is not None:
            state = build_state(bw, rtt, dev, edge, self._value('recent_latency_ms', None), self.deadline_ms,
                                self.prev_index, len(self.actions))
            action = self.policy.act(state)
        else:
            action = oracle_action(self.profile, SystemState(bw, rtt, dev, edge), self.reward, self.latency,
                                   self.deadline_ms, self.mask)
        self.pub.publish(m.make_decision_msg(action))
        self.prev_index = self.index[action]
        self._record(action, (time.perf_counter() - t0) * 1e3)

    def _record(self, action: Action, ms: float) -> None:
        self.decisions.add()
        self.decide_ms.append(ms)
        self.decide_max_ms = max(self.decide_max_ms, ms)
        now = time.monotonic()
        if now - self._report_t >= REPORT_EVERY_S:
            recent = self.decide_ms[self._report_n:]
            self.get_logger().info(f'{len(recent)} decisions in the last {now - self._report_t:.0f} s, now '
                                   f'{action.label()}; decision latency mean {np.mean(recent):.3f} ms, '
                                   f'max {max(recent):.3f} ms')
            self._report_t, self._report_n = now, len(self.decide_ms)
        if len(self.decide_ms) > 100_000:
            self.decide_ms = self.decide_ms[-1000:]
            self._report_n = 0

    def _diagnostics(self) -> tuple[bytes, str, dict[str, Any]]:
        now = time.monotonic()
        values: dict[str, Any] = {'policy': self.p['policy'], 'decisions': self.decisions.total,
                                  'decision_rate_hz': self.decisions.rate(),
                                  'decision_latency_mean_ms': float(np.mean(self.decide_ms[-100:]))
                                  if self.decide_ms else 0.0,
                                  'decision_latency_max_ms': self.decide_max_ms}
        stale = []
        for key in ('bandwidth_mbps', 'rtt_ms', 'device_load', 'edge_load', 'recent_latency_ms'):
            item = self.inputs.get(key)
            values[key] = 'none yet' if item is None else item[0]
            if item is None or now - item[1] > self.p['telemetry_stale_s']:
                stale.append(key)
        if self.prev_index is not None:
            values['decision'] = self.actions[self.prev_index].label()
        waiting = self.p['wait_for_link'] and ('bandwidth_mbps' not in self.inputs or 'rtt_ms' not in self.inputs)
        message = ('waiting for coinfer/link/* (link monitor running? device probing?)' if waiting
                   else f'stale inputs: {", ".join(stale)}' if stale else 'ok')
        return level_of([(bool(stale), DiagnosticStatus.WARN)]), message, values


def main(args: list[str] | None = None) -> int:
    """Console script ``policy_node``."""
    return run_node(PolicyNode, args)


if __name__ == '__main__':
    sys.exit(main())
