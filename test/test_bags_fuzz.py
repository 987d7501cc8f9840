# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Fuzz ``coinfer-bag-extract`` with thousands of truncated and mutated bags (no ROS graph).

One small synthetic recording is written once per storage (a closed MCAP bag, an unclosed one as a
killed recorder leaves it, a closed sqlite3 bag); every case copies it with one random damage:
truncation, flipped bytes, an overwritten range, in the data file or in ``metadata.yaml``.  Each
case must end with status 0 and complete, parseable outputs, or status 2 and one
``coinfer-bag-extract: error:`` line with nothing written; any other exception fails the test, and
so does a case running longer than ``CASE_LIMIT_S`` (a hang).  The loop stops after ``CASES`` cases
or ``BUDGET_S`` seconds, whichever comes first, and must have run ``MIN_CASES``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from bag_support import write_synthetic_bag
from coinfer_device.core import bags
from coinfer_edge.core.recorded import read_transitions
from coinfer_edge.core.traces import load_trace
from coinfer_edge.tools import bag_extract

CASES = 3000
MIN_CASES = 1000
BUDGET_S = 150.0
CASE_LIMIT_S = 10.0
ERROR_PREFIX = 'coinfer-bag-extract: error: '


class CaseTimeout(Exception):
    """A case ran longer than CASE_LIMIT_S."""


def _alarm(signum, frame):
    raise CaseTimeout


@pytest.fixture(scope='module')
def originals(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """Return the files (relative path -> bytes) of the three base bags."""
    root = tmp_path_factory.mktemp('fuzz-base')
    write_synthetic_bag(root / 'closed', duration_s=8.0)
    write_synthetic_bag(root / 'sqlite', duration_s=8.0, storage='sqlite3')
    crashed = root / 'crashed'
    write_synthetic_bag(crashed, duration_s=8.0, split_s=4.0)
    # make the last file look as a killed recorder leaves it: flushed, never closed
    last = sorted(crashed.glob('*.mcap'))[-1]
    writing = crashed / bags.WRITING_DIR / last.stem
    writing.mkdir(parents=True)
    data = last.read_bytes()
    summary_start = int.from_bytes(data[-37 + 9:-37 + 17], 'little')   # the footer's summary offset
    (writing / last.name).write_bytes(data[:summary_start])
    last.unlink()
    doc = yaml.safe_load((crashed / 'metadata.yaml').read_text())
    info = doc['rosbag2_bagfile_information']
    info['files'] = [f for f in info['files'] if f['path'] != last.name]
    info['relative_file_paths'] = [p for p in info['relative_file_paths'] if p != last.name]
    (crashed / 'metadata.yaml').write_text(yaml.safe_dump(doc))
    return {name: {str(p.relative_to(root / name)): p.read_bytes() for p in (root / name).rglob('*') if p.is_file()}
            for name in ('closed', 'sqlite', 'crashed')}


def _damage(files: dict[str, bytes], rng: np.random.Generator) -> tuple[dict[str, bytes], str]:
    files = dict(files)
    name = sorted(files)[int(rng.integers(len(files)))]
    data = bytearray(files[name])
    kind = ('truncate', 'flip', 'overwrite')[int(rng.integers(3))]
    if kind == 'truncate':
        data = data[:int(rng.integers(len(data)))]
    elif kind == 'flip':
        for _ in range(int(rng.integers(1, 9))):
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
    else:
        start = int(rng.integers(len(data)))
        n = int(rng.integers(1, 65))
        data[start:start + n] = rng.integers(0, 256, size=min(n, len(data) - start), dtype=np.uint8).tobytes()
    files[name] = bytes(data)
    return files, f'{kind} {name}'


def _check_outputs(out: Path) -> None:
    """Check that a finished run's outputs are complete: every file parses and nothing is left staged."""
    assert not list(out.glob('.staging-*'))
    for trace in (out / 'traces').glob('*.csv'):
        assert len(load_trace(trace, 0.1)) > 0
    read_transitions(out / 'transitions.csv')
    with open(out / 'action_stats.csv') as f:
        assert list(csv.DictReader(f))


def test_damaged_bags_give_the_documented_error_or_a_complete_result(originals, tmp_path):
    rng = np.random.default_rng(20260)
    outcomes: Counter = Counter()
    errors: Counter = Counter()
    case = tmp_path / 'case'
    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        n = 0
        while n < CASES and time.monotonic() - start < BUDGET_S:
            base = ('closed', 'sqlite', 'crashed')[n % 3]
            files, what = _damage(originals[base], rng)
            shutil.rmtree(case, ignore_errors=True)
            for rel, data in files.items():
                (case / 'bag' / rel).parent.mkdir(parents=True, exist_ok=True)
                (case / 'bag' / rel).write_bytes(data)
            out = case / 'out'
            stdout, stderr = io.StringIO(), io.StringIO()
            signal.setitimer(signal.ITIMER_REAL, CASE_LIMIT_S)
            try:
                with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                    rc = bag_extract.main([str(case / 'bag'), '--out', str(out)])
            except CaseTimeout:
                pytest.fail(f'case {n} ({base}: {what}) ran longer than {CASE_LIMIT_S} s')
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if rc == 0:
                _check_outputs(out)
            else:
                lines = stderr.getvalue().splitlines()
                assert rc == 2 and len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), (base, what, lines)
                assert not out.exists(), (base, what, 'wrote something despite the error')
                errors[lines[0][len(ERROR_PREFIX):].split(':')[-1].strip()[:40]] += 1
            outcomes[(base, rc)] += 1
            n += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    print(f'\n{n} cases in {time.monotonic() - start:.0f} s: {dict(outcomes)}\n'
          f'frequent errors: {errors.most_common(8)}')
    assert n >= MIN_CASES
    for base in ('closed', 'sqlite', 'crashed'):   # the damage reached both outcomes of every kind of bag
        assert outcomes[(base, 0)] and outcomes[(base, 2)], outcomes
