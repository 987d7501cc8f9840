# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Soak on the real-link testbed: SAC-d at 30 Hz for 10 minutes on a steady 25 Mbit/s link, as root.

Runs ``coinfer-experiment --scenario soak --rate-hz 30 --step-s 600`` and prints its report: the
resident memory of every node from the end of the warm-up (60 s) to the end (target: at most 5 %
growth), and the frame accounting (every frame: a result, or a counted reason such as a busy drop).

Usage: ``python bench/bench_soak.py [--out DIR] [--step-s S]`` (``--step-s 120`` for a 2-minute check).
"""

from __future__ import annotations

import sys

from coinfer_edge.demo import experiment

if __name__ == '__main__':
    sys.exit(experiment.main(['--scenario', 'soak', '--policies', 'sacd', '--rate-hz', '30', '--step-s', '600']
                             + sys.argv[1:]))
