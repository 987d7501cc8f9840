# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Benchmark the feature codec on the feature maps that actually cross the link.

For every partition point ``p`` in 1..9 of ``MultiExitAlexNet(ModelSpec())`` and
every bit width, time :func:`encode_features` and :func:`decode_features` on the
model's real (untrained, batch 1) head output and compare with ``np.copy`` of
the same float32 tensor, measured in the same run.  Times are medians over
repeats; copy, encode and decode run back to back in every repeat, and the
ratio (encode + decode) / copy is the median of the per-repeat ratios.

Usage: ``python bench/bench_codec.py [--quick]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable, Sequence

import numpy as np
import torch

from coinfer_device.core.codec import VALID_BITS, decode_features, encode_features
from coinfer_device.core.model import ModelSpec, MultiExitAlexNet

PARTITIONS = tuple(range(1, 10))


def paired_times(fns: Sequence[Callable[[], object]], target_s: float, repeats: int) -> list[list[float]]:
    """Return per-repeat seconds per call of every function.

    Within one repeat the functions run back to back, so a ratio taken per
    repeat compares them under the same machine load.
    """
    loops = []
    for fn in fns:
        start = time.perf_counter()
        fn()
        loops.append(max(1, int(target_s / max(time.perf_counter() - start, 1e-7))))
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, n, out in zip(fns, loops, samples):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            out.append((time.perf_counter() - start) / n)
    return samples


def feature_maps() -> dict[int, np.ndarray]:
    """Return the head output of a seeded random model on a random image, per partition."""
    torch.manual_seed(0)
    spec = ModelSpec()
    model = MultiExitAlexNet(spec).eval()
    image = torch.rand(1, spec.in_channels, spec.image_size, spec.image_size)
    with torch.no_grad():
        maps = {p: model.head(image, p).contiguous().numpy() for p in PARTITIONS}
    for p, x in maps.items():
        assert x.shape[1:] == model.feature_shape(p), (p, x.shape)
    return maps


def main() -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='shorter timing runs (noisier numbers)')
    args = parser.parse_args()
    target_s, repeats = (0.001, 5) if args.quick else (0.002, 15)
    torch.set_num_threads(1)
    maps = feature_maps()

    ratio: dict[tuple[int, int], float] = {}
    micros: dict[tuple[int, int], float] = {}
    totals = {b: [0.0, 0.0, 0, 0.0] for b in VALID_BITS}  # encode s, decode s, message bytes, copy s
    elements = sum(x.size for x in maps.values())
    for p, x in maps.items():
        t = torch.from_numpy(x)
        for b in VALID_BITS:
            msg = encode_features(t, bits=b, exit_point=2, partition_point=p, frame_seq=1)
            copy, enc, dec = paired_times([
                lambda: np.copy(x),
                lambda: encode_features(t, bits=b, exit_point=2, partition_point=p, frame_seq=1),
                lambda: decode_features(msg)], target_s, repeats)
            ratio[(p, b)] = statistics.median((e + d) / c for c, e, d in zip(copy, enc, dec))
            micros[(p, b)] = (statistics.median(enc) + statistics.median(dec)) * 1e6
            tot = totals[b]
            tot[0] += statistics.median(enc)
            tot[1] += statistics.median(dec)
            tot[2] += len(msg)
            tot[3] += statistics.median(copy)

    print(f'coinfer feature codec, {platform.machine()} {platform.processor() or ""}'.rstrip()
          + f', numpy {np.__version__}, torch {torch.__version__}, 1 thread'
          + (', --quick' if args.quick else ''))
    print(f'\nAll 9 partition maps together ({elements} float32 = {4 * elements} bytes per round):\n')
    print('| bits | message bytes | encode us | decode us | enc+dec MB/s | copy us | (enc+dec)/copy |')
    print('|-----:|--------------:|----------:|----------:|-------------:|--------:|---------------:|')
    for b, (enc_s, dec_s, nbytes, copy_s) in totals.items():
        rate = 4 * elements / (enc_s + dec_s) / 1e6
        print(f'| {b:4d} | {nbytes:13d} | {enc_s * 1e6:9.1f} | {dec_s * 1e6:9.1f} | {rate:12.1f} '
              f'| {copy_s * 1e6:7.1f} | {(enc_s + dec_s) / copy_s:14.1f} |')

    header = '| bits | ' + ' | '.join(f'p={p} {"x".join(map(str, maps[p].shape[1:]))}' for p in PARTITIONS) + ' |'
    rule = '|-----:|' + '|'.join('-----:' for _ in PARTITIONS) + '|'
    for title, table in (('(encode + decode) / copy', ratio), ('encode + decode, microseconds per call', micros)):
        print(f'\n{title} per partition point p (feature shape without batch):\n')
        print(header)
        print(rule)
        for b in VALID_BITS:
            print(f'| {b:4d} | ' + ' | '.join(f'{table[(p, b)]:.1f}' for p in PARTITIONS) + ' |')


if __name__ == '__main__':
    main()
