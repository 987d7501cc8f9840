# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Policy node: chooses ``(exit, partition, bits)`` from the measured link and compute state.

Subscribes ``coinfer/link/bandwidth_mbps``, ``coinfer/link/rtt_ms``,
``coinfer/device/compute_slowdown``, ``coinfer/edge/compute_slowdown`` (CPU contention as the
pipeline measures it; the state holds it over the policy's nominal slowdown of each host, 1 until
measured) and ``coinfer/result`` (latency of the newest frame) and publishes ``coinfer/decision``
at ``rate_hz``:

* ``policy: sacd`` (default): the trained discrete SAC policy
  (the default shipped model's ``sacd_policy_alexnet224.safetensors`` unless ``policy_path``) acting greedily on
  :func:`coinfer_edge.core.decision.build_state`;
* ``policy: rule``: model-based exhaustive search over the profile's actions, using the
  latency model of :mod:`coinfer_edge.core.decision` with the measured state;
* ``policy: edgent``: the Edgent-style rule (most accurate exit whose best float32 split is
  predicted to meet the deadline) and ``policy: fixed``: always ``fixed_action`` -- the
  baselines of the live comparison (``coinfer-demo --compare``).

Both are a :class:`coinfer_edge.core.decision.SplitPolicy` fed the same
:class:`~coinfer_edge.core.decision.Observation`.  Nothing here imports torch.

Every policy but ``fixed`` decides among the actions the deadline shield allows
(:mod:`coinfer_edge.core.shield`, ``shield.*``): an action whose recent results on
``coinfer/result`` missed the deadline too often is blocked for a few seconds, so a robot that is
slower than the policy's model does not get the same late action frame after frame.

Until bandwidth and RTT have been measured (``wait_for_link``) no decision is published,
so the device keeps its safe local fallback.  The time to decide is measured and reported.

A lifecycle node (:class:`~coinfer_device.ros.runtime.ManagedNode`): *configure* loads the
profile and policy and creates the publisher, subscriptions and timer; *activate* starts
publishing decisions; *deactivate* stops them (inputs are still recorded); *cleanup* unloads.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32, Int32MultiArray

from coinfer_device.ros import params as rp
from coinfer_device.core.action import Action
from coinfer_device.core.profile import Profile, ProfileError
from coinfer_device.ros.diagnostics import DIAGNOSTIC_PARAMS, Diagnostics, FrequencyStatus, RateMeter, level_of
from coinfer_device.ros.runtime import LIFECYCLE_PARAMS, ManagedNode, StartupError, run_node
from coinfer_device.core import records as rec
from coinfer_device.ros import messages as m
from coinfer_edge.core.decision import (EdgentDecider, FixedDecider, LatencySettings, NeurosurgeonDecider, Observation,
                                        RewardConfig, RuleDecider, SplitPolicy)
from coinfer_edge.core.policy import PolicyError, TrainedPolicy
from coinfer_edge.core.shield import DeadlineShield, ShieldConfig

QOS = (rp.QosDefault('decision', 'coinfer/decision', 'reliable', 1, 'transient_local'),
       rp.QosDefault('telemetry', 'coinfer/link/* and coinfer/*/compute_slowdown', 'best_effort', 1),
       rp.QosDefault('result', 'coinfer/result', 'best_effort', 10))
REPORT_EVERY_S = 30.0
POLICIES = ('sacd', 'rule', 'edgent', 'neurosurgeon', 'fixed')


def _fixed_action_check(value: list[int]) -> str | None:
    return None if len(value) == 3 else f'must be [exit, partition, bits], got {list(value)}'


_REWARD = RewardConfig()
_LATENCY = LatencySettings()
_SHIELD = ShieldConfig()

PARAMS = [
    rp.Param('policy', 'sacd', "'sacd' = trained SAC-d policy, 'rule' = exhaustive search with the latency model, "
             "'edgent' = Edgent-style rule, 'neurosurgeon' = Neurosurgeon-style rule (final exit, float32 or local, "
             "least predicted latency), 'fixed' = always fixed_action", choices=POLICIES),
    rp.Param('fixed_action', [-1, -1, -1], "policy 'fixed': [exit, partition, bits]; a local action is "
             "[exit, the exit's branch point, 0]", check=_fixed_action_check),
    rp.Param('policy_path', '', "Trained policy (.safetensors, or a legacy .pt, with its .json); "
             "'' = the default shipped model's, coinfer_edge/assets/sacd_policy_alexnet224.safetensors"),
    rp.Param('profile_path', '', "Machine profile JSON; '' = the default shipped model's, "
             "coinfer_device/assets/profile_alexnet224_x86_64.json"),
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
    rp.Param('rule.late_weight', _REWARD.late_weight, 'rule: weight of log(latency/deadline) past the deadline',
             lo=0.0, hi=1e3),
    rp.Param('latency.device_slowdown', _LATENCY.device_slowdown, 'rule: robot CPU time / profiling machine time',
             lo=0.01, hi=1e3),
    rp.Param('latency.edge_slowdown', _LATENCY.edge_slowdown, 'rule: edge CPU time / profiling machine time',
             lo=0.01, hi=1e3),
    rp.Param('latency.device_overhead_ms', -1.0, "rule: per-frame device work outside the model; -1 = the "
             "profile's measured value (settings.latency), else 0", lo=-1.0, hi=1e4, unit='ms'),
    rp.Param('latency.remote_overhead_ms', -1.0, "rule: per-frame framework cost of a sent frame; -1 = the "
             "profile's measured value (settings.latency), else 0", lo=-1.0, hi=1e4, unit='ms'),
    rp.Param('shield.enabled', True, "Block an action for a while when its recent results on coinfer/result missed "
             "the deadline too often (every policy but 'fixed'; coinfer_edge/core/shield.py)"),
    rp.Param('shield.max_miss_rate', _SHIELD.max_miss_rate, 'Shield: block an action when more than this share of '
             f'its last {_SHIELD.window} results (at least {_SHIELD.min_results}, none older than '
             f'{_SHIELD.memory_s:g} s) missed the deadline', lo=0.0, hi=0.99),
    rp.Param('shield.hold_s', _SHIELD.hold_s, 'Shield: length of a first block; doubles while the action keeps '
             f'missing after its release, up to {_SHIELD.max_hold_s:g} s', lo=0.1, hi=_SHIELD.max_hold_s, unit='s'),
] + rp.qos_params(QOS) + LIFECYCLE_PARAMS + DIAGNOSTIC_PARAMS


class PolicyNode(ManagedNode):
    """Publish split decisions from the measured state (see module docstring)."""

    def __init__(self) -> None:
        super().__init__('policy_node')
        self.p = rp.declare(self, PARAMS)
        rp.install_set_callback(self, PARAMS)
        self.policy: SplitPolicy | None = None
        self.source = ''
        self.deadline_ms = 0.0
        self.inputs: dict[str, tuple[float, float]] = {}  # name -> (value, receipt time)
        self.prev_index: int | None = None
        self.shield: DeadlineShield | None = None
        self.decisions = RateMeter()
        self.decide_ms: list[float] = []
        self.decide_max_ms = 0.0
        self._deciding = False
        self._report_t = time.monotonic()
        self._report_n = 0
        diagnostics = Diagnostics(self, self._diagnostics, task='decisions')
        self.decision_rate = diagnostics.add_frequency('coinfer/decision rate', FrequencyStatus(
            self.p['rate_hz'], self.p['rate_hz']))

    def configure_node(self) -> None:
        """Load the profile and the policy; create the publisher, subscriptions and the decision timer."""
        try:
            self.profile = Profile.load(self.p['profile_path'] or None)
            self.policy, self.source = self._make_policy()
        except (ProfileError, PolicyError) as exc:
            hint = ' (or run with -p policy:=rule)' if self.p['policy'] == 'sacd' else ''
            raise StartupError(f'{exc}{hint}') from exc
        except ValueError as exc:  # a fixed action the profile does not have
            raise StartupError(f'fixed_action: {exc}') from exc
        self.actions = self.policy.actions
        self.deadline_ms = self.p['deadline_ms'] or self.policy.reward_config.deadline_ms
        if self.p['shield.enabled'] and self.p['policy'] != 'fixed':
            self.shield = DeadlineShield(ShieldConfig(max_miss_rate=self.p['shield.max_miss_rate'],
                                                      hold_s=self.p['shield.hold_s']), self.actions)
        self.pub = self.own(rp.create_publisher(self, Int32MultiArray, 'coinfer/decision', self.p, 'decision'))
        for key, topic in (('bandwidth_mbps', 'coinfer/link/bandwidth_mbps'), ('rtt_ms', 'coinfer/link/rtt_ms'),
                           ('device_slowdown', 'coinfer/device/compute_slowdown'),
                           ('edge_slowdown', 'coinfer/edge/compute_slowdown')):
            self.own(rp.create_subscription(self, Float32, topic, lambda msg, k=key: self._on_input(k, msg.data),
                                            self.p, 'telemetry'))
        self.own(rp.create_subscription(self, JointState, 'coinfer/result', self._on_result, self.p, 'result'))
        self.own(self.create_timer(1.0 / self.p['rate_hz'], self._decide))

    def activate_node(self) -> None:
        """Start publishing decisions."""
        self._deciding = True

    def deactivate_node(self) -> None:
        """Stop publishing decisions (the device falls back after its decision timeout)."""
        self._deciding = False

    def cleanup_node(self) -> None:
        """Unload the policy; destroy the publisher, subscriptions and timer."""
        self._deciding = False
        self.destroy_owned()
        self.policy, self.prev_index, self.shield = None, None, None

    def _make_policy(self) -> tuple[SplitPolicy, str]:
        """Return the decider the ``policy`` parameter names and where it comes from (for the ready line)."""
        if self.p['policy'] == 'sacd':
            policy = TrainedPolicy.load(self.p['policy_path'] or None, self.profile,
                                        check_profile=self.p['check_profile'])
            return policy, str(policy.path)
        if self.p['policy'] == 'fixed' and list(self.p['fixed_action']) == [-1, -1, -1]:
            raise ValueError("policy 'fixed' needs [exit, partition, bits]")
        reward = RewardConfig(deadline_ms=_REWARD.deadline_ms, latency_weight=self.p['rule.latency_weight'],
                              miss_penalty=self.p['rule.miss_penalty'], late_weight=self.p['rule.late_weight'])
        measured = self.profile.settings.get('latency') or {}
        overheads = {k: self.p[f'latency.{k}'] if self.p[f'latency.{k}'] >= 0 else float(measured.get(k, 0.0))
                     for k in ('device_overhead_ms', 'remote_overhead_ms')}
        settings = LatencySettings(device_slowdown=self.p['latency.device_slowdown'],
                                   edge_slowdown=self.p['latency.edge_slowdown'], **overheads)
        if self.p['policy'] == 'fixed':
            action = Action(*(int(v) for v in self.p['fixed_action']))
            return FixedDecider(self.profile, action, reward, settings), f'fixed {action.label()}'
        if self.p['policy'] == 'edgent':
            return EdgentDecider(self.profile, reward, settings), 'Edgent-style rule'
        if self.p['policy'] == 'neurosurgeon':
            return NeurosurgeonDecider(self.profile, reward, settings), 'Neurosurgeon-style rule'
        return RuleDecider(self.profile, reward, settings), 'exhaustive search (rule)'

    def ready_summary(self) -> str:
        """Return the one-line description logged with the ready marker."""
        return (f"policy {self.p['policy']} ({self.source}), {len(self.actions)} actions, "
                f"deadline {self.deadline_ms:g} ms, {self.p['rate_hz']:g} Hz")

    def _on_input(self, key: str, value: float) -> None:
        if math.isfinite(value):
            self.inputs[key] = (float(value), time.monotonic())

    def _on_result(self, msg: JointState) -> None:
        try:
            result = m.read_result(msg)
        except rec.MessageError:
            return
        self._on_input('recent_latency_ms', result.total_ms)
        if self.shield is not None and self.shield.record(result.action, result.deadline_met, time.monotonic()):
            self.get_logger().info(f'shield: {result.action.label()} missed the deadline too often; blocked '
                                   f'for {self.shield.hold_of(result.action):g} s')

    def _value(self, key: str, default: float | None) -> float | None:
        item = self.inputs.get(key)
        return default if item is None else item[0]

    def _decide(self) -> None:
        if not self._deciding:
            return
        t0 = time.perf_counter()
        bw, rtt = self._value('bandwidth_mbps', None), self._value('rtt_ms', None)
        if bw is None or rtt is None:
            if self.p['wait_for_link']:
                return
            bw, rtt = bw or 0.0, rtt or 0.0
        nominal = self.policy.latency_settings
        observation = Observation(bw, rtt, self._value('device_slowdown', nominal.device_slowdown)
                                  / nominal.device_slowdown,
                                  self._value('edge_slowdown', nominal.edge_slowdown) / nominal.edge_slowdown,
                                  self._value('recent_latency_ms', None), self.deadline_ms, self.prev_index)
        action = self._act(observation)
        self.pub.publish(m.make_decision_msg(action))
        self.prev_index = self.policy.index_of(action)
        self._record(action, (time.perf_counter() - t0) * 1e3)

    def _act(self, observation: Observation) -> Action:
        """Return the policy's action among those the shield allows (all, if the policy refuses that set)."""
        if self.shield is not None:
            mask = self.shield.mask(self.actions, self.policy.mask, time.monotonic())
            if not mask.all():
                try:
                    return self.policy.act(observation, mask)
                except (ValueError, PolicyError):  # e.g. a rule whose own candidates are all blocked
                    pass
        return self.policy.act(observation)

    def _record(self, action: Action, ms: float) -> None:
        self.decisions.add()
        self.decision_rate.tick()
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
        if self.shield is not None:
            values['shield_blocked'] = ' '.join(a.label() for a in self.shield.blocked(now)) or 'none'
            values['shield_blocks'] = self.shield.blocks_total
            values['shield_foreign_results'] = self.shield.foreign_results
        stale = []
        for key in ('bandwidth_mbps', 'rtt_ms', 'device_slowdown', 'edge_slowdown', 'recent_latency_ms'):
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
