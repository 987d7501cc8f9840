# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Reliability on the real-link testbed: a 10 s link cut and a 10 s saturated edge CPU, SAC-d, as root.

Runs ``coinfer-experiment --scenario reliability`` (normal, link cut, restored, edge CPU saturated,
normal again; 10 s each) and prints its report: per step the frames answered, the share answered on
the device, deadline hits and p95 latency, and how long after the link came back the first edge answer
arrived.  Targets (issue 11): during the cut every frame still gets a result from a local exit;
edge answers again within 2 s of restoration; with the edge saturated the policy moves work back to
the device without a deadline storm.

Usage: ``python bench/bench_reliability.py [--out DIR] [--step-s S] [--policies sacd ...]`` (about 1.5 min per policy).
"""

from __future__ import annotations

import sys

from coinfer_edge.demo import experiment

if __name__ == '__main__':
    args = sys.argv[1:]
    defaults = ['--scenario', 'reliability'] + ([] if '--policies' in args else ['--policies', 'sacd'])
    sys.exit(experiment.main(defaults + args))
