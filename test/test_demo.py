# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The all-in-one demo, run the way a user runs it: ``coinfer-demo`` as a subprocess over real DDS.

One short run (12 s of link schedule) serves every test of the module; its output, exit
status, results folder and the process ids of the nodes it started are checked.
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from coinfer_edge.demo.report import PLOT_FILES, RECORDS_CSV, SUMMARY_JSON
from coinfer_edge.demo.harness import executable
from graph_support import model_checkpoint, policy_file, profile_file

DURATION_S = 12
TIMEOUT_S = 110


@pytest.fixture(scope='module')
def demo(tmp_path_factory, ros_domain_id):
    model, profile = model_checkpoint(), profile_file()
    out = tmp_path_factory.mktemp('demo') / 'results'
    cmd = [executable('coinfer-demo'), '--duration', str(DURATION_S), '--out', str(out),
           '--domain-id', str(ros_domain_id), '--model', str(model), '--profile', str(profile)]
    if not os.environ.get('COINFER_TEST_PROFILE'):
        cmd += ['--policy-file', str(policy_file())]
    if os.environ.get('COINFER_TEST_PROFILE'):  # a shipped SAC-d policy refuses a profile it was not trained on
        cmd += ['--policy', 'rule']
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(proc.stdout), daemon=True)
    reader.start()
    children: dict[int, tuple[psutil.Process, list[str]]] = {}
    deadline = time.monotonic() + TIMEOUT_S
    parent = psutil.Process(proc.pid)
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            for child in parent.children(recursive=True):
                try:  # refreshed on every poll: right after fork a child still shows the parent's command;
                    # an exiting child (a zombie) shows an empty one, which must not hide what it was
                    known = children.get(child.pid, (child, []))
                    children[child.pid] = (known[0], child.cmdline() or known[1])
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    timed_out = proc.poll() is None
    if timed_out:
        for child, _ in children.values():  # the nodes run in their own sessions: kill them too
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        proc.kill()
    proc.wait(10)
    reader.join(10)
    output = ''.join(chunks)
    sys.stdout.write(output)  # shown by pytest when a test fails
    if timed_out:
        pytest.fail(f'coinfer-demo did not finish in {TIMEOUT_S} s; output:\n{output}')
    return {'rc': proc.returncode, 'output': output, 'out': out, 'children': list(children.values()),
            'started': started}


def test_exits_cleanly_without_traceback(demo):
    assert demo['rc'] == 0, demo['output']
    assert 'Traceback' not in demo['output']
    for log in (demo['out'] / 'logs').glob('*.log'):
        assert 'Traceback' not in log.read_text(), log


def test_started_every_node_as_its_own_process_and_left_none(demo):
    scripts = [Path(arg).name for _, cmdline in demo['children'] for arg in cmdline[:2]]
    for name in ('camera_node', 'device_node', 'edge_node', 'link_monitor', 'policy_node'):
        assert scripts.count(name) == 1, (name, scripts)
    assert scripts.count('cpu_monitor') == 2, scripts  # robot and workstation
    alive = [cmdline for child, cmdline in demo['children']
             if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    assert not alive, alive


def test_prints_the_final_table_with_plausible_accuracy(demo):
    out = demo['output']
    assert re.search(r'^\| frames +\| +online accuracy', out, re.M), out
    row = re.search(r'^\| (\d+) +\| +([0-9.]+) \((\d+) labelled\) +\| +([0-9.]+) ms', out, re.M)
    assert row, out
    frames, acc, labelled = int(row.group(1)), float(row.group(2)), int(row.group(3))
    assert frames >= 5 * DURATION_S  # 10 Hz camera: at least half of the frames are answered
    assert labelled >= frames // 2
    assert acc > 0.7
    assert re.search(r'^\| action +\| policy decisions', out, re.M)
    assert re.search(r'^\| \d+-\d+ s +\| +50 Mbit/s +\| +[0-9.]+ \|', out, re.M)  # the link phases table
    assert str(demo['out']) in out


def test_device_emulates_the_robot_cpu_the_policy_assumes(demo):
    """The device's compute_slowdown makes per-frame compute equal the policy's model (profile x its slowdown)."""
    config = json.loads((demo['out'] / SUMMARY_JSON).read_text())['config']
    assumed = _policy_device_slowdown(config['policy'])
    assert config['policy_device_slowdown'] == assumed
    calibration = config['calibration']
    expected = max(1.0, assumed * calibration['profiled_ms'] / calibration['per_frame_ms'])
    assert config['compute_slowdown'] == pytest.approx(expected, abs=0.01)
    if config['compute_slowdown'] > 1.0:
        device_log = (demo['out'] / 'logs' / 'device.log').read_text()
        assert f"CPU emulated {config['compute_slowdown']:g}x slower" in device_log


def _policy_device_slowdown(policy):
    import yaml
    from coinfer_edge.demo.harness import config_file
    if policy == 'sacd':
        return json.loads(policy_file().with_suffix('.json').read_text())['latency_model']['device_slowdown']
    return yaml.safe_load(config_file('policy.yaml').read_text())['/**/policy_node']['ros__parameters'][
        'latency.device_slowdown']


def test_writes_records_summary_and_plots(demo):
    out = demo['out']
    for name in PLOT_FILES + (RECORDS_CSV, SUMMARY_JSON):
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, path
    for name in PLOT_FILES:
        assert (out / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with open(out / RECORDS_CSV) as fh:
        rows = list(csv.DictReader(fh))
    summary = json.loads((out / SUMMARY_JSON).read_text())
    assert len(rows) == summary['summary']['frames'] > 0
    judged = [r for r in rows if r['truth'] != '']
    acc = sum(r['class_id'] == r['truth'] for r in judged) / len(judged)
    assert math.isclose(acc, summary['summary']['accuracy'], abs_tol=1e-9)
    assert all(float(r['total_ms']) > 0 for r in rows)
    assert {r['source'] for r in rows} <= {'device', 'edge'}
    assert summary['config']['domain_id'] > 0


def _unlocked(path: Path) -> bool:
    """Return whether a Fast DDS lock file is free, i.e. its owner is gone (as ``fastdds shm clean`` checks)."""
    try:
        with open(path, 'ab') as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def test_no_stale_shared_memory_segments(demo):
    stale = []
    for lock in Path('/dev/shm').glob('fastrtps_*_el'):
        try:
            created = lock.stat().st_ctime
        except FileNotFoundError:
            continue
        if created >= demo['started'] - 1.0 and _unlocked(lock):
            stale.append(lock.name)
    assert not stale, f'stale Fast DDS segments created during the demo: {stale}'


def test_ctrl_c_while_the_nodes_start_is_quiet(tmp_path, ros_domain_id):
    """Ctrl-C while the device and camera are still importing: every node ends quietly, exit status 0."""
    out = tmp_path / 'interrupted'
    cmd = [executable('coinfer-demo'), '--duration', '30', '--out', str(out), '--domain-id', str(ros_domain_id),
           '--model', str(model_checkpoint()), '--profile', str(profile_file()), '--policy', 'rule', '--no-plots']
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'))
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith('starting cpu_monitor'):  # the second start-up phase has just begun
                time.sleep(0.3)
                proc.send_signal(signal.SIGINT)
                break
        lines.extend(proc.stdout)
        assert proc.wait(60) == 0, ''.join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = ''.join(lines)
    assert 'interrupted: stopping the nodes' in output, output
    assert 'Traceback' not in output and 'note: node exit statuses' not in output, output
    logs = list((out / 'logs').glob('*.log'))
    assert len(logs) == 7
    for log in logs:
        text = log.read_text()
        assert 'Traceback' not in text and 'KeyboardInterrupt' not in text, f'{log.name}:\n{text}'


# --------------------------------------------------------------------------- the report, without ROS


def _record(t, action, total_ms, truth, class_id, source='edge', deadline_ms=20.0):
    from coinfer_edge.demo.report import FrameRecord
    e, rest = action.split('/', 1)
    local = rest == 'local'
    p, b = (10, 0) if local else (int(rest.split('/')[0][1:]), int(rest.split('/')[1][1:]))
    return FrameRecord(t_s=t, stamp_ns=int(t * 1e9), frame_seq=int(t * 10), class_id=class_id, truth=truth,
                       confidence=0.9, action=action, exit=int(e[1:]), partition=p, bits=b, source=source,
                       fallback='policy', device_ms=1.0, transfer_ms=0.0, edge_ms=0.0, total_ms=total_ms,
                       payload_bytes=0, deadline_ms=deadline_ms, deadline_met=total_ms <= deadline_ms,
                       link_mbps=None, estimated_mbps=None)


def test_phases_follow_the_device_emulators_schedule():
    from coinfer_device.core.link_emulator import BandwidthSchedule
    from coinfer_edge.demo.report import phases
    schedule = BandwidthSchedule((20.0, 2.0, 0.5), 4.0, loop=True)
    rows = phases(schedule, 14.0)
    assert [(a, b) for a, b, _ in rows] == [(0.0, 4.0), (4.0, 8.0), (8.0, 12.0), (12.0, 14.0)]
    assert [v for _, _, v in rows] == [20.0, 2.0, 0.5, 20.0]
    for start, end, mbps in rows:
        assert schedule.mbps_at((start + end) / 2) == mbps


def test_summary_joins_truth_and_counts_actions_and_phases():
    from coinfer_device.core.link_emulator import BandwidthSchedule
    from coinfer_edge.demo.report import format_summary, summarize
    records = [_record(0.5, 'e2/p0/b8', 5.0, 3, 3), _record(1.5, 'e2/p0/b8', 30.0, 4, 1),
               _record(2.5, 'e0/local', 2.0, 5, 5, source='device'), _record(3.5, 'e0/local', 3.0, None, 7,
                                                                             source='device')]
    decisions = [(0.4, 'e2/p0/b8'), (1.0, 'e2/p0/b8'), (2.2, 'e0/local')]
    s = summarize(records, decisions, BandwidthSchedule((20.0, 0.5), 2.0), 4.0, [(0.5, 0.2), (1.5, 0.4), (3.0, 0.9)])
    assert s['frames'] == 4 and s['frames_with_ground_truth'] == 3
    assert math.isclose(s['accuracy'], 2 / 3)
    assert math.isclose(s['deadline_hit'], 3 / 4)
    assert math.isclose(s['latency_ms']['p50'], 4.0)
    assert s['answered_by_edge'] == 2 and s['policy_decisions'] == 3 and s['decision_changes'] == 1
    by = {a['action']: a for a in s['actions']}
    assert by['e2/p0/b8']['frames'] == 2 and by['e2/p0/b8']['policy_decisions'] == 2
    assert math.isclose(by['e2/p0/b8']['accuracy'], 0.5) and by['e0/local']['accuracy'] == 1.0
    assert [(p['link_mbps'], p['frames'], p['top_decision']) for p in s['phases']] == [
        (20.0, 2, 'e2/p0/b8'), (0.5, 2, 'e0/local')]
    assert [round(p['device_load'], 6) for p in s['phases']] == [0.3, 0.9]
    text = format_summary(s)
    assert re.search(r'^\| 4 +\| +0\.667 \(3 labelled\) +\|', text, re.M), text
    assert re.search(r'^\| e0/local +\| +1 \| +2 \| +50\.0 % \|', text, re.M), text


def test_report_files_are_written(tmp_path):
    from coinfer_device.core.link_emulator import BandwidthSchedule
    from coinfer_edge.demo.report import summarize, write_plots, write_records, write_summary
    records = [_record(0.1 * i, 'e2/p0/b8' if i < 20 else 'e0/local', 3.0 + i % 7, i % 10, (i * 3) % 10)
               for i in range(40)]
    schedule = BandwidthSchedule((20.0, 2.0), 2.0)
    decisions = [(0.1 * i, 'e2/p0/b8' if i < 20 else 'e0/local') for i in range(0, 40, 2)]
    summary = summarize(records, decisions, schedule, 4.0)
    csv_path = write_records(tmp_path, records)
    json_path = write_summary(tmp_path, summary, {'policy': 'rule'}, {'decisions': decisions})
    pngs = write_plots(tmp_path, records, decisions, [(0.5, 18.0), (2.5, 2.2)], schedule, 4.0)
    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 40 and rows[0]['action'] == 'e2/p0/b8' and rows[0]['correct'] == 'True'
    doc = json.loads(json_path.read_text())
    assert doc['summary']['frames'] == 40 and doc['config']['policy'] == 'rule'
    assert len(doc['timelines']['decisions']) == 20
    for png in pngs:
        assert png.read_bytes()[:4] == b'\x89PNG' and png.stat().st_size > 5000


def test_domain_in_use_sees_a_bound_discovery_port():
    import socket
    from coinfer_edge.demo.graph import choose_domain_id, domain_in_use
    d = choose_domain_id()
    assert not domain_in_use(d)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 7410 + 250 * d))
        assert domain_in_use(d)


def test_compare_runs_every_policy_on_the_same_schedule_and_tabulates_them(tmp_path, ros_domain_id):
    """``--compare`` on a short schedule: one run per policy, one table, the fixed split really fixed."""
    out = tmp_path / 'compare'
    cmd = [executable('coinfer-demo'), '--shipped', 'small', '--compare', 'sacd', 'device-earliest', '--duration', '8',
           '--link-mbps', '20', '0.5', '--out', str(out), '--domain-id', str(ros_domain_id)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * TIMEOUT_S,
                          env=dict(os.environ, PYTHONUNBUFFERED='1'))
    output = proc.stdout + proc.stderr
    sys.stdout.write(output)
    assert proc.returncode == 0 and 'Traceback' not in output
    assert 'coinfer demo comparison: 2 policies' in output
    doc = json.loads((out / 'comparison.json').read_text())
    rows = {p['name']: p for p in doc['policies']}
    assert set(rows) == {'sacd', 'device-earliest'} and doc['schedule_mbps'] == [20.0, 0.5]
    for name, row in rows.items():
        assert row['frames'] >= 3 * 8, (name, row)     # 10 Hz camera, 8 s: most frames answered
        assert 0.0 <= row['deadline_hit'] <= 1.0 and math.isfinite(row['mean_reward'])
        assert re.search(rf'^\| {re.escape(row["label"])}( \*)? +\| +{row["frames"]} +\|', output, re.M), output
    with open(out / 'device-earliest' / RECORDS_CSV) as f:   # before the first decision: the device's fallback
        actions = {r['action'] for r in csv.DictReader(f) if r['fallback'] == 'policy decision'}
    assert actions == {'e0/local'}, actions
    assert rows['sacd']['adaptation'] and rows['device-earliest']['adaptation_s'] is None
    for name in ('comparison.md', 'compare_latency.png', 'compare_decisions.png', 'compare_latency_cdf.png'):
        assert (out / name).stat().st_size > 0, name
