# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""``coinfer-profile``: measure the model on this machine and write a profile JSON.

Measured: per-block compute time of the trunk and of every exit branch (median of
``--runs`` after ``--warmup``, batch 1, ``--threads`` torch threads), codec
encode/decode time and payload bytes for every (partition, bits), and validation
accuracy of every valid (exit, partition, bits) on the held-out validation split
(quantization at the partition point is applied per frame, as on the wire).

The same times are then measured *per frame* (``--frame-period-ms``, default one 10 Hz camera
period): the whole network, block by block, and one (partition, bits) of the codec in turn, once
per period with the CPU idle in between, as the nodes run it.  Caches are cold then, so these
figures are larger; the latency model uses them (``per_frame`` in the file; ``--frame-period-ms 0``
skips them).

``--from-bag BAG...`` measures nothing: it refreshes the latency part of ``--base`` (default: the
shipped profile) from the per-frame results recorded on the robot and keeps its accuracy part
(:mod:`coinfer_device.core.profile_refresh`; docs/bags.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from coinfer_device.core.checkpoint import CheckpointError, load_checkpoint
from coinfer_device.core.codec import decode_features, encode_features
from coinfer_device.core.data import DatasetError, batch_to_input, load_dataset
from coinfer_device.core.evaluation import train_validation_indices
from coinfer_device.core.action import DEFAULT_BITS_CHOICES, Action
from coinfer_device.core.action_stats import action_stats, format_stats
from coinfer_device.core.bags import RESULT, BagError, normalize_namespace
from coinfer_device.core.profile import FrameTiming, Profile, ProfileError
from coinfer_device.core.profile_refresh import refresh_profile
from coinfer_device.core.recording import load_recording


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(prog='coinfer-profile', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', type=Path, default=None, help='checkpoint (default: the shipped one)')
    p.add_argument('--out', type=Path, default=Path('runs/profile.json'))
    p.add_argument('--runs', type=int, default=100, help='timed runs per block (median)')
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--threads', type=int, default=1, help='torch.set_num_threads for timing')
    p.add_argument('--bits', type=int, nargs='+', default=list(DEFAULT_BITS_CHOICES))
    p.add_argument('--frame-period-ms', type=float, default=100.0,
                   help='per-frame timing: one frame per this period, as a camera drives the nodes (0 = skip)')
    p.add_argument('--frame-samples', type=int, default=4,
                   help='per-frame timing: frames per codec (partition, bits) entry; blocks get all frames')
    p.add_argument('--dataset', default=None, help="data set for accuracy (default: the checkpoint's)")
    p.add_argument('--data', type=Path, default=None)
    p.add_argument('--val-images', type=int, default=5000, help='validation images for accuracy')
    p.add_argument('--skip-accuracy', action='store_true',
                   help="copy accuracy from --accuracy-from instead of measuring (e.g. on a slow Pi)")
    p.add_argument('--accuracy-from', type=Path, default=None, help='profile to take accuracy from')
    p.add_argument('--from-bag', type=Path, nargs='+', default=None, metavar='BAG',
                   help='refresh the timings of --base from recorded bags instead of measuring')
    p.add_argument('--base', type=Path, default=None, help='with --from-bag: profile to refresh (default: shipped)')
    p.add_argument('--namespace', default=None,
                   help='with --from-bag: the robot namespace to use (default: the only one with results)')
    p.add_argument('--min-frames', type=int, default=5, help='with --from-bag: frames an action needs to count')
    return p.parse_args(argv)


def refresh_from_bags(args: argparse.Namespace, argv: list[str]) -> int:
    """Write ``--base`` with its latency part refreshed from the results in ``--from-bag`` bags."""
    try:
        base = Profile.load(args.base)
        results = []
        for path in args.from_bag:
            rec = load_recording(path, [RESULT])
            spaces = sorted(ns for ns, s in rec.streams.items() if s.results)
            ns = normalize_namespace(args.namespace) if args.namespace else (spaces[0] if len(spaces) == 1 else None)
            if ns is None or ns not in spaces:
                raise BagError(f'{path}: {"choose one of" if spaces else "no results in any"} namespaces with '
                               f'results {spaces} (--namespace)')
            results += [r for _, r in rec.streams[ns].results]
        stats = action_stats(results)
        profile = refresh_profile(base, stats, args.min_frames, [str(p) for p in args.from_bag])
    except (BagError, ProfileError) as exc:
        print(f'coinfer-profile: error: {exc}', file=sys.stderr)
        return 2
    profile.settings['command'] = 'coinfer-profile ' + shlex.join(argv)
    profile.save(args.out)
    refresh, latency = profile.settings['refresh'], profile.settings['latency']
    print(f'{len(results)} frames; measured per action (medians):\n{format_stats(stats)}')
    edge = (f"{refresh['edge_overhead_ms']} ms + {refresh['edge_scale']} x the base profile" if refresh['edge_scale']
            else 'not measured (no frame was sent)')
    print(f"device work per frame = {refresh['device_overhead_ms']} ms + {refresh['device_scale']} x the base profile; "
          f"edge work = {edge}; wrote {args.out} with block/exit/codec times x {refresh['device_scale']} and "
          f"settings.latency {latency} (coinfer-train-policy applies them)")
    return 0


def _median_ms(fn: Callable[[], object], runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith(('model name', 'Model')):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return {'arch': platform.machine(), 'cpu': cpu, 'logical_cpus': os.cpu_count(),
            'system': platform.system(), 'python': platform.python_version(),
            'torch': torch.__version__}


@torch.no_grad()
def measure_compute(model, x: torch.Tensor, runs: int, warmup: int,
                    progress: tqdm) -> tuple[list[float], list[float]]:
    """Return median ms of each trunk block and of each exit branch at batch 1."""
    block_ms, feats = [], [x]
    for i, block in enumerate(model.trunk):
        inp = feats[-1]
        block_ms.append(_median_ms(lambda b=block, t=inp: b(t), runs, warmup))
        feats.append(block(inp))
        progress.update(1)
    exit_ms = []
    for e, branch in enumerate(model.exits):
        inp = feats[model.branch_point(e)]
        exit_ms.append(_median_ms(lambda b=branch, t=inp: b(t), runs, warmup))
        progress.update(1)
    return block_ms, exit_ms


@torch.no_grad()
def measure_codec(model, x: torch.Tensor, bits_choices: list[int], runs: int, warmup: int,
                  progress: tqdm) -> tuple[dict, dict, dict]:
    """Return payload bytes, encode ms and decode ms for every (partition, bits) sent to the edge."""
    payload, enc, dec = {}, {}, {}
    max_p = max(model.spec.exit_branch_points)
    for p in range(max_p):
        feat = model.head(x, p)
        for b in bits_choices:
            kwargs = dict(bits=b, exit_point=model.num_exits - 1, partition_point=p, frame_seq=1)
            data = encode_features(feat, **kwargs)
            payload[(p, b)] = len(data)
            enc[(p, b)] = _median_ms(lambda f=feat, k=kwargs: encode_features(f, **k), runs, warmup)
            dec[(p, b)] = _median_ms(lambda d=data: decode_features(d), runs, warmup)
            progress.update(1)
    return payload, enc, dec


@torch.no_grad()
def measure_frame_timing(model, x: torch.Tensor, codec_keys: list[tuple[int, int]], period_ms: float,
                         samples: int, progress: tqdm) -> FrameTiming:
    """Return per-frame medians: every block and exit, and the codec, run once per ``period_ms``.

    Frame ``k`` runs the whole network block by block (and every exit branch) and the codec of
    ``codec_keys[k % len(codec_keys)]``, then idles until the next period, so every entry gets
    ``samples`` codec frames and the blocks ``samples * len(codec_keys)``.
    """
    blocks: list[list[float]] = [[] for _ in model.trunk]
    exits: list[list[float]] = [[] for _ in model.exits]
    enc: dict[tuple[int, int], list[float]] = {k: [] for k in codec_keys}
    dec: dict[tuple[int, int], list[float]] = {k: [] for k in codec_keys}
    frames = samples * len(codec_keys)
    next_t = time.perf_counter()
    for k in range(frames):
        feats = [x]
        for i, block in enumerate(model.trunk):
            t0 = time.perf_counter()
            feats.append(block(feats[-1]))
            blocks[i].append((time.perf_counter() - t0) * 1e3)
        for e, branch in enumerate(model.exits):
            t0 = time.perf_counter()
            branch(feats[model.branch_point(e)])
            exits[e].append((time.perf_counter() - t0) * 1e3)
        p, b = codec_keys[k % len(codec_keys)]
        t0 = time.perf_counter()
        data = encode_features(feats[p], bits=b, exit_point=model.num_exits - 1, partition_point=p, frame_seq=k)
        t1 = time.perf_counter()
        decode_features(data)
        t2 = time.perf_counter()
        enc[(p, b)].append((t1 - t0) * 1e3)
        dec[(p, b)].append((t2 - t1) * 1e3)
        progress.update(1)
        next_t += period_ms / 1e3
        time.sleep(max(0.0, next_t - time.perf_counter()))
    med = statistics.median
    return FrameTiming(period_ms=period_ms, frames=frames, block_ms=[med(v) for v in blocks],
                       exit_ms=[med(v) for v in exits], encode_ms={k: med(v) for k, v in enc.items()},
                       decode_ms={k: med(v) for k, v in dec.items()})


@torch.no_grad()
def measure_accuracy(model, x_val: torch.Tensor, y_val: torch.Tensor, bits_choices: list[int],
                     progress: tqdm) -> dict[Action, float]:
    """Accuracy of every valid action; features are quantized per frame as on the wire."""
    bps = model.spec.exit_branch_points
    acc: dict[Action, float] = {}
    n = len(y_val)
    local = [(logits.argmax(1) == y_val).float().mean().item() for logits in model(x_val)]
    for e, bp in enumerate(bps):
        acc[Action(e, bp, 0)] = local[e]
    for p in range(max(bps)):
        feats = model.head(x_val, p)
        exits = [e for e, bp in enumerate(bps) if p < bp]
        for b in bits_choices:
            recon = torch.stack([
                decode_features(encode_features(feats[i:i + 1], bits=b, exit_point=exits[-1],
                                                partition_point=p, frame_seq=i))[1][0]
                for i in range(n)])
            for e in exits:
                pred = model.tail(recon, p, e).argmax(1)
                acc[Action(e, p, b)] = (pred == y_val).float().mean().item()
            progress.update(1)
    return acc


def main(argv: list[str] | None = None) -> int:
    """Measure and write the profile."""
    args = parse_args(argv)
    if args.from_bag:
        return refresh_from_bags(args, sys.argv[1:] if argv is None else argv)
    all_threads = torch.get_num_threads()  # accuracy is no timing: it runs on every core
    torch.set_num_threads(args.threads)
    try:
        loaded = load_checkpoint(args.checkpoint)
        dataset = args.dataset or loaded.metadata.get('dataset', 'fashion-mnist')
        train = load_dataset(dataset, args.data, 'train')
    except (CheckpointError, DatasetError) as exc:
        print(f'coinfer-profile: error: {exc}', file=sys.stderr)
        return 2
    model, pre = loaded.model, loaded.preprocessing
    _, val_idx = train_validation_indices(len(train))
    val = train.subset(val_idx[:args.val_images])
    x_val = batch_to_input(val.images, pre)
    y_val = torch.from_numpy(val.labels)
    x1 = x_val[:1].clone()
    bits = sorted(set(args.bits))
    max_p = max(model.spec.exit_branch_points)
    frame_frames = args.frame_samples * max_p * len(bits) if args.frame_period_ms > 0 else 0
    total = model.num_blocks + model.num_exits + max_p * len(bits) * (1 if args.skip_accuracy else 2) + frame_frames
    t0 = time.time()
    # On a terminal the bar redraws every second; in a log file (a long run in the background) every 30 s.
    with tqdm(total=total, desc='profiling', unit='step', mininterval=1.0 if sys.stderr.isatty() else 30.0) as progress:
        progress.set_postfix_str('compute')
        block_ms, exit_ms = measure_compute(model, x1, args.runs, args.warmup, progress)
        progress.set_postfix_str('codec')
        payload, enc, dec = measure_codec(model, x1, bits, args.runs, args.warmup, progress)
        frame = None
        if frame_frames:
            progress.set_postfix_str(f'per frame ({frame_frames} x {args.frame_period_ms:g} ms)')
            frame = measure_frame_timing(model, x1, sorted(payload), args.frame_period_ms, args.frame_samples,
                                         progress)
        if args.skip_accuracy:
            if args.accuracy_from is None:
                print('coinfer-profile: error: --skip-accuracy needs --accuracy-from PROFILE', file=sys.stderr)
                return 2
            accuracy = Profile.load(args.accuracy_from).accuracy
        else:
            progress.set_postfix_str('accuracy')
            torch.set_num_threads(max(args.threads, all_threads))
            accuracy = measure_accuracy(model, x_val, y_val, bits, progress)
    profile = Profile(
        block_ms=block_ms, exit_ms=exit_ms, branch_points=list(model.spec.exit_branch_points),
        bits_choices=bits, payload_bytes=payload, encode_ms=enc, decode_ms=dec, accuracy=accuracy,
        machine=_machine(), frame=frame,
        model={'checkpoint': loaded.path.name, 'weights_sha256': loaded.metadata.get('weights_sha256'),
               'dataset': dataset, 'num_blocks': model.num_blocks,
               'feature_shapes': [list(model.feature_shape(p)) for p in range(model.num_blocks + 1)]},
        settings={'torch_threads': args.threads, 'runs': args.runs, 'warmup': args.warmup, 'batch': 1,
                  'validation_images': len(val), 'wall_time_s': round(time.time() - t0, 1),
                  'command': 'coinfer-profile ' + shlex.join(sys.argv[1:] if argv is None else argv)},
    )
    profile.validate()
    profile.save(args.out)
    whole = sum(block_ms) + exit_ms[-1]
    per_frame = (f', {sum(frame.block_ms) + frame.exit_ms[-1]:.3f} ms per frame at one frame per '
                 f'{frame.period_ms:g} ms' if frame else '')
    print(f'whole network (final exit, all blocks): {whole:.3f} ms in a tight loop{per_frame}; '
          f'{len(accuracy)} actions; wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
