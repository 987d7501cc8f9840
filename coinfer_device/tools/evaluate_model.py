# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""``coinfer-evaluate-model``: per-exit top-1 accuracy of a checkpoint on a test set."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from coinfer_device.core.checkpoint import CheckpointError, load_checkpoint
from coinfer_device.core.data import DatasetError, load_dataset
from coinfer_device.core.evaluation import exit_accuracies


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(prog='coinfer-evaluate-model', description=__doc__)
    p.add_argument('--checkpoint', type=Path, default=None, help='checkpoint .pt (default: the shipped one)')
    p.add_argument('--dataset', default=None, choices=['fashion-mnist', 'cifar10', 'folder'],
                   help="data set (default: the checkpoint's own)")
    p.add_argument('--data', type=Path, default=None, help='data set folder')
    p.add_argument('--split', default='test', choices=['train', 'test'])
    p.add_argument('--limit', type=int, default=0, help='evaluate only the first N images')
    p.add_argument('--threads', type=int, default=0, help='torch threads (0 = torch default)')
    p.add_argument('--json', action='store_true', help='print one JSON object instead of a table')
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Evaluate and print a table (or JSON)."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        loaded = load_checkpoint(args.checkpoint)
        dataset = args.dataset or loaded.metadata.get('dataset', 'fashion-mnist')
        ds = load_dataset(dataset, args.data, args.split, folder_size=loaded.preprocessing.content_size)
    except (CheckpointError, DatasetError) as exc:
        print(f'coinfer-evaluate-model: error: {exc}', file=sys.stderr)
        return 2
    if args.limit:
        ds = ds.subset(np.arange(min(args.limit, len(ds))))
    t0 = time.perf_counter()
    acc = exit_accuracies(loaded.model, ds, loaded.preprocessing)
    elapsed = time.perf_counter() - t0
    meta_exits = loaded.metadata.get('exits', [])
    rows = []
    for e, a in enumerate(acc):
        row = {'exit': e, 'branch_point': loaded.model.branch_point(e), 'accuracy': round(a, 4),
               'correct': int(round(a * len(ds)))}
        if e < len(meta_exits):
            row['metadata_test_accuracy'] = meta_exits[e].get('test_accuracy')
        rows.append(row)
    result = {'checkpoint': str(loaded.path), 'dataset': dataset, 'split': args.split,
              'images': len(ds), 'exits': rows, 'seconds': round(elapsed, 2)}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f'{loaded.path.name} on {dataset}/{args.split}: {len(ds)} images ({elapsed:.1f} s)')
    print(f"{'exit':>4} {'branch point':>12} {'accuracy':>9} {'correct':>8} {'metadata':>9}")
    for r in rows:
        meta = r.get('metadata_test_accuracy')
        print(f"{r['exit']:>4} {r['branch_point']:>12} {r['accuracy']:>9.4f} {r['correct']:>8} "
              f"{'' if meta is None else f'{meta:.4f}':>9}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
