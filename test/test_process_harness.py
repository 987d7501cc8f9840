# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Process harness: parallel stop, ready times from the log stamp, complete output, start-up waits.

Plain Python child processes stand in for nodes; no ROS is needed here.
"""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time

import pytest

from coinfer_edge.demo.harness import (Graph, NodeProcess, NodeStartError, StartInterrupted, log_line_time,
                                       ros_env, stop_processes)

# Exits 0 on SIGINT only once every peer got its SIGINT too (each leaves a file): a one-by-one stop
# leaves the first process waiting for peers that are never signalled, until SIGTERM ends it (-15).
WAITS_FOR_PEERS = textwrap.dedent('''
    import os, signal, sys, time
    folder, me, peers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    def on_int(signum, frame):
        open(os.path.join(folder, me), 'w').close()
        deadline = time.monotonic() + 30
        while len(os.listdir(folder)) < peers and time.monotonic() < deadline:
            time.sleep(0.02)
        sys.exit(0)
    signal.signal(signal.SIGINT, on_int)
    print('ready: waiting', flush=True)
    while True:
        time.sleep(0.1)
''')


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, '-c', code, *args]


def test_graph_stop_signals_every_node_at_once(tmp_path):
    folder = tmp_path / 'got-sigint'
    folder.mkdir()
    graph = Graph(dict(os.environ), tmp_path / 'logs')
    for i in range(4):
        graph.nodes[f'n{i}'] = NodeProcess(_python(WAITS_FOR_PEERS, str(folder), f'n{i}', '4'), graph.env,
                                           tmp_path / 'logs' / f'n{i}.log', f'n{i}')
    graph.start(timeout=30.0)
    codes = graph.stop(int_timeout=10.0, term_timeout=2.0)
    assert codes == {f'n{i}': 0 for i in range(4)}, codes
    assert all(not p.alive() for p in graph.nodes.values())


def test_ready_time_comes_from_the_log_stamp_of_the_ready_line(tmp_path):
    # A ROS console line carries its wall-clock stamp; this one claims to be 5 s old.
    code = 'import time; print(f"[INFO] [{time.time() - 5.0:.9f}] [x]: ready: late reader", flush=True); time.sleep(30)'
    proc = NodeProcess(_python(code), dict(os.environ), label='stamped').start()
    try:
        proc.wait_ready(30.0)
        assert proc.ready_at == pytest.approx(time.monotonic() - 5.0, abs=1.0)
    finally:
        assert proc.stop() is not None
    assert log_line_time('no stamp here', now_monotonic=12.0) == 12.0


def test_wait_output_returns_once_everything_printed_was_read(tmp_path):
    code = 'import sys\nfor i in range(20000): print("line", i)\nprint("last line", flush=True)'
    proc = NodeProcess(_python(code), dict(os.environ), tmp_path / 'many.log', 'many').start()
    proc.proc.wait(30)
    assert proc.wait_output(30.0)
    assert proc.output().splitlines()[-1] == 'last line'
    assert (tmp_path / 'many.log').read_text().splitlines()[-1] == 'last line'


def test_wait_ready_reports_an_exit_and_can_be_interrupted(tmp_path):
    graph = Graph(dict(os.environ), tmp_path / 'logs')
    graph.nodes['crash'] = NodeProcess(_python('import sys; print("boom", flush=True); sys.exit(3)'), graph.env,
                                       label='crash')
    graph.nodes['slow'] = NodeProcess(_python('import time; time.sleep(30)'), graph.env, label='slow')
    with pytest.raises(NodeStartError, match=r'crash exited with status 3(.|\n)*boom'):
        graph.start(['crash'], timeout=30.0)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    try:
        with pytest.raises(StartInterrupted, match='slow'):
            graph.start(['slow'], timeout=30.0, stop=stop)
    finally:
        codes = stop_processes([graph['slow']], int_timeout=5.0)
    assert codes['slow'] is not None and not graph['slow'].alive()


def test_ros_env_leaves_the_publication_mode_to_the_caller(tmp_path):
    """Fast DDS's default (synchronous) unless the caller chose: asynchronous made small answers slower."""
    assert 'RMW_FASTRTPS_PUBLICATION_MODE' not in ros_env(7, tmp_path, base={'PATH': '/usr/bin'})
    chosen = ros_env(7, tmp_path, base={'RMW_FASTRTPS_PUBLICATION_MODE': 'ASYNCHRONOUS'})
    assert chosen['RMW_FASTRTPS_PUBLICATION_MODE'] == 'ASYNCHRONOUS' and chosen['ROS_DOMAIN_ID'] == '7'
