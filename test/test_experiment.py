# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The real-link experiment, short: ``coinfer-experiment`` as root, two policies, two steps, the small model.

Checked: every frame accounted for (a result in the bag, or a counted reason), the report, the
physical-sum ratio of a fixed split on an unsaturated link, and that nothing is left behind
(namespaces, cgroups, processes), also after a Ctrl-C in the middle of a run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from coinfer_edge.demo.harness import executable
from coinfer_edge.demo.results import accounting, load_runs, physical_ratios, unaccounted_frames
from coinfer_edge.testbed.cgroup import CPU_ROOT
from coinfer_edge.testbed.netns import PREFIX, list_namespaces

import testbed_support

STEP_S = 6.0
TIMEOUT_S = 240


def require_root() -> None:
    testbed_support.require_root('the experiment tests (network namespaces, TUN, tc, cgroups)')


def leftovers(out: Path) -> dict[str, list]:
    """Return what the testbed may have left: its namespaces, cgroups and processes of this run."""
    procs = []
    for p in psutil.process_iter(['pid', 'cmdline']):
        if str(out) in ' '.join(p.info['cmdline'] or ()):
            procs.append((p.info['pid'], p.info['cmdline']))
    return {'namespaces': [n for n in list_namespaces() if n.startswith(PREFIX)],
            'cgroups': [p.name for p in CPU_ROOT.glob(f'{PREFIX}*')], 'processes': procs}


def start(out: Path, *args: str) -> tuple[subprocess.Popen, list[str]]:
    cmd = [executable('coinfer-experiment'), '--shipped', 'small', '--out', str(out), '--step-s', str(STEP_S), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'), start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return proc, lines


@pytest.fixture(scope='module')
def experiment(tmp_path_factory):
    require_root()
    out = tmp_path_factory.mktemp('experiment') / 'runs'
    # A fixed robot factor: the small model's frames (1-3 ms) are shorter than the kernel's scheduler tick, at which
    # quotas are enforced, so its time under a quota is a step function of k; the Ctrl-C test below runs the
    # closed-loop calibration, and test_testbed_robot_cpu.py checks it.
    proc, lines = start(out, '--policies', 'sacd', 'e2/p1/b16', '--steps', '2', '--device-factor', '4')
    try:
        status = proc.wait(TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    return {'out': out, 'status': status, 'output': ''.join(lines)}


def test_the_experiment_runs_every_policy_and_writes_the_report(experiment):
    assert experiment['status'] == 0, experiment['output']
    report = (experiment['out'] / 'results.md').read_text()
    for heading in ('## Per policy', '## Mean reward per step', '## Measured latency over the physical sum',
                    '## Frame accounting'):
        assert heading in report
    assert 'SAC-d' in report and 'e2/p1/b16' in report
    runs = load_runs(experiment['out'])
    assert [r.policy.name for r in runs] == ['sacd', 'e2/p1/b16']
    for run in runs:
        assert len(run.records) >= 2 * STEP_S * 10 * 0.5, run.policy.name   # 10 Hz camera, at least half answered
        assert run.doc['exit_codes'] and set(run.doc['exit_codes'].values()) <= {0}


def test_every_frame_has_a_result_or_a_counted_reason(experiment):
    for run in load_runs(experiment['out']):
        acc = accounting(run)
        assert acc['camera_frames'] and acc['frames_in'], acc
        assert unaccounted_frames(acc) == 0, (run.policy.name, acc)
        assert acc['results_recorded'] == acc['results_sent'], acc   # every result the device sent is in the bag


def test_a_fixed_split_on_an_unsaturated_link_costs_little_beyond_the_physical_sum(experiment):
    run = next(r for r in load_runs(experiment['out']) if r.policy.name == 'e2/p1/b16')
    # 64 kB features: serialization (10-44 ms) dominates the small model's 1-2 ms of compute
    rows = [r for r in physical_ratios(run) if r['link_load'] < 0.5]
    assert rows, physical_ratios(run)
    # The target (docs/results.md) is <= 1.15 at steady state; a loaded 2-core test machine gets a looser bound.
    assert all(1.0 <= r['ratio'] <= 1.6 for r in rows), [(r['step'], r['ratio'], r['measured_ms']) for r in rows]


def test_nothing_is_left_behind(experiment):
    assert leftovers(experiment['out']) == {'namespaces': [], 'cgroups': [], 'processes': []}


def test_ctrl_c_mid_run_cleans_up(tmp_path):
    require_root()
    out = tmp_path / 'runs'
    proc, lines = start(out, '--policies', 'e0/local', '--steps', '3')
    try:
        deadline = time.monotonic() + TIMEOUT_S / 2
        while not any('step 1/3' in line for line in lines) and time.monotonic() < deadline:  # calibrated first
            assert proc.poll() is None, ''.join(lines)
            time.sleep(0.2)
        assert any('step 1/3' in line for line in lines), ''.join(lines)
        os.killpg(proc.pid, signal.SIGINT)   # what a Ctrl-C at the terminal does
        status = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status == 130, ''.join(lines)
    assert 'interrupted' in ''.join(lines)
    assert any('robot CPU: k = ' in line for line in lines), ''.join(lines)   # the closed-loop calibration ran
    assert leftovers(out) == {'namespaces': [], 'cgroups': [], 'processes': []}


def test_not_root_is_one_clear_line(monkeypatch, capsys):
    from coinfer_edge.demo import experiment
    from coinfer_edge.testbed import netns
    monkeypatch.setattr(netns.os, 'geteuid', lambda: 1000)
    assert experiment.main(['--policies', 'sacd']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('coinfer-experiment: error:') and 'root' in err and '\n' not in err


def test_the_books_balance_only_when_every_frame_has_a_result_or_a_reason():
    from coinfer_edge.demo.results import unaccounted_frames
    balanced = {'frames_in': 100, 'processed': 91, 'results_sent': 90, 'results_recorded': 90, 'in_flight': 1,
                'dropped_busy': 8, 'rejected_images': 1}
    assert unaccounted_frames(balanced) == 0
    assert unaccounted_frames({**balanced, 'frames_in': 101}) == 0      # one frame may wait in the mailbox at stop
    assert unaccounted_frames({**balanced, 'frames_in': 101, 'processed': 92}) == 0   # and one be computed
    assert unaccounted_frames({**balanced, 'frames_in': 104}) == 3      # three frames vanished before processing
    assert unaccounted_frames({**balanced, 'frames_in': 104, 'processed': 95}) == 3   # ... or after it
    assert unaccounted_frames({**balanced, 'results_recorded': 88}) == 2   # two results never reached the bag


def test_rss_growth_is_measured_after_the_warm_up():
    from types import SimpleNamespace
    from coinfer_edge.demo.results import rss_growth
    run = SimpleNamespace(doc={'rss_mb': [{'t_s': 0.0, 'edge': 50.0}, {'t_s': 60.0, 'edge': 200.0},
                                          {'t_s': 300.0, 'edge': 210.0}, {'t_s': 600.0, 'edge': 204.0}]})
    g = rss_growth(run, warmup_s=60.0)['edge']
    assert (g['start_mb'], g['end_mb'], g['max_mb']) == (200.0, 204.0, 210.0)
    assert g['growth_pct'] == pytest.approx(2.0)
    assert rss_growth(run, warmup_s=700.0) == {}


def test_rounds_are_grouped_per_policy_and_sacd_is_paired_with_each_policy_by_round():
    from types import SimpleNamespace
    from coinfer_edge.demo import results

    def run(name: str, repeat: int) -> SimpleNamespace:
        return SimpleNamespace(policy=SimpleNamespace(name=name, label=name.upper()), doc={'repeat': repeat})

    runs = [run('sacd', 1), run('e0/local', 1), run('rule', 1), run('sacd', 2), run('e0/local', 2), run('rule', 2)]
    groups = results.by_policy(runs)
    assert list(groups) == ['sacd', 'e0/local', 'rule']
    assert [r.doc['repeat'] for r in groups['e0/local']] == [1, 2]
    rewards = {'sacd': {1: 0.80, 2: 0.70}, 'e0/local': {1: 0.75, 2: 0.72}, 'rule': {1: 0.60, 2: 0.65}}
    duels = {d['policy']: d for d in results.head_to_head(groups, rewards)}
    assert duels['E0/LOCAL']['won'] == 1 and duels['E0/LOCAL']['rounds'] == 2
    assert duels['E0/LOCAL']['mean_diff'] == pytest.approx(0.015)
    assert duels['E0/LOCAL']['worst_diff'] == pytest.approx(-0.02)
    assert duels['RULE']['won'] == 2 and duels['RULE']['worst_diff'] == pytest.approx(0.05)
    assert results.head_to_head({'rule': groups['rule']}, rewards) == []   # no SAC-d run: nothing to pair


def test_a_trace_step_replays_a_mahimahi_trace_every_half_second(tmp_path):
    from coinfer_edge.demo.experiment import MIN_TRACE_MBPS, trace_step
    # 8 packets of 1500 B in each of the first two 0.5 s windows (0.192 Mbit/s), none in the third, 40 in the fourth
    stamps = [10] * 8 + [600] * 8 + [1600] * 40
    trace = tmp_path / 'link.up'
    trace.write_text('\n'.join(map(str, stamps)) + '\n')
    step = trace_step(trace, offset_s=0.0, duration_s=2.0, rtt_ms=40.0)
    assert step.trace_mbps == pytest.approx((0.192, 0.192, 0.0, 0.96))
    assert step.mbps == pytest.approx((0.192 * 2 + 0.96) / 4) and step.rtt_ms == 40.0 and 'link.up' in step.name
    assert step.rate_at(0.2) == pytest.approx(0.192) and step.rate_at(1.7) == pytest.approx(0.96)
    assert step.rate_at(1.2) == MIN_TRACE_MBPS          # no capacity: a trickle, tbf needs a rate
    assert step.rate_at(9.0) == pytest.approx(0.96)     # past the end: the last window
    assert trace_step(trace, offset_s=1.0, duration_s=1.0, rtt_ms=40.0).trace_mbps == pytest.approx((0.0, 0.96))
    with pytest.raises(ValueError, match='cannot replay'):
        trace_step(trace, offset_s=1.0, duration_s=2.0, rtt_ms=40.0)


def test_a_bad_link_trace_is_one_clear_line(monkeypatch, capsys, tmp_path):
    from coinfer_edge.demo import experiment
    from coinfer_edge.testbed import netns
    monkeypatch.setattr(netns.os, 'geteuid', lambda: 0)
    missing = tmp_path / 'nothing.up'
    assert experiment.main(['--policies', 'sacd', '--link-trace', str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('coinfer-experiment: error: --link-trace:') and '\n' not in err
