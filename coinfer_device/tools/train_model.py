# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""``coinfer-train-model``: joint training of every exit of the multi-exit AlexNet."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from coinfer_device.core.checkpoint import save_checkpoint
from coinfer_device.core.data import Preprocessing, batch_to_input, load_dataset
from coinfer_device.core.evaluation import exit_accuracies, train_validation_indices
from coinfer_device.core.model import ModelSpec, MultiExitAlexNet

DEFAULT_EXIT_WEIGHTS = (0.4, 0.6, 1.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(prog='coinfer-train-model', description=__doc__)
    p.add_argument('--dataset', default='fashion-mnist', choices=['fashion-mnist', 'cifar10', 'folder'])
    p.add_argument('--data', type=Path, default=None, help='data set folder (default: Debian path for Fashion-MNIST)')
    p.add_argument('--out', type=Path, default=Path('runs/model/fmnist_alexnet.pt'),
                   help='checkpoint to write (metadata goes to the same name with .json)')
    p.add_argument('--epochs', type=int, default=8)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--lr', type=float, default=3e-3, help='peak learning rate (one-cycle AdamW)')
    p.add_argument('--weight-decay', type=float, default=5e-4)
    p.add_argument('--exit-weights', type=float, nargs='+', default=list(DEFAULT_EXIT_WEIGHTS),
                   help='loss weight of each exit (weighted sum)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0 = torch default)')
    p.add_argument('--limit', type=int, default=0, help='use only the first N training images (smoke runs)')
    p.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda')
    p.add_argument('--float32', action='store_true', help='store float32 weights (default float16)')
    return p.parse_args(argv)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip per sample and a random +-2 pixel shift per batch."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None].to(x.device), x.flip(3), x)
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate on the test split, and write checkpoint + metadata."""
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_all = load_dataset(args.dataset, args.data, 'train')
    test = load_dataset(args.dataset, args.data, 'test')
    train_idx, val_idx = train_validation_indices(len(train_all))
    if args.limit:
        train_idx = train_idx[:args.limit]
    train, val = train_all.subset(train_idx), train_all.subset(val_idx)

    gray = train.images.ndim == 3
    pixels = train.images.astype(np.float32) / 255.0
    pre = Preprocessing(in_channels=1 if gray else 3, content_size=min(train.images.shape[1], 32), image_size=32,
                        mean=round(float(pixels.mean()), 4), std=round(float(pixels.std()), 4))
    del pixels
    spec = ModelSpec(in_channels=pre.in_channels, num_classes=len(train.class_names))
    if len(args.exit_weights) != len(spec.exit_branch_points):
        sys.exit(f'--exit-weights needs {len(spec.exit_branch_points)} values')
    device = torch.device(args.device)
    model = MultiExitAlexNet(spec).to(device)
    x_all = batch_to_input(train.images, pre)
    y_all = torch.from_numpy(train.labels)
    steps_per_epoch = (len(train) + args.batch_size - 1) // args.batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    history = []
    print(f'training {len(train)} images, validating on {len(val)}, testing on {len(test)}; '
          f'exit weights {args.exit_weights}', flush=True)
    t_start = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        total, n = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f'epoch {epoch}/{args.epochs}', leave=False,
                   mininterval=1.0, disable=None)
        for step in bar:
            idx = perm[step * args.batch_size:(step + 1) * args.batch_size]
            x = _augment(x_all[idx], gen).to(device)
            y = y_all[idx].to(device)
            outs = model(x)
            loss = sum(w * loss_fn(o, y) for w, o in zip(args.exit_weights, outs))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            n += len(idx)
            bar.set_postfix(loss=f'{total / n:.3f}')
        model.cpu()
        val_acc = exit_accuracies(model, val, pre)
        model.to(device)
        history.append({'epoch': epoch, 'train_loss': round(total / n, 4),
                        'val_accuracy': [round(a, 4) for a in val_acc],
                        'elapsed_s': round(time.time() - t_start, 1)})
        print(f'epoch {epoch:2d}  loss {total / n:.4f}  val acc per exit '
              + ' '.join(f'{a:.4f}' for a in val_acc)
              + f'  ({time.time() - t_start:.0f} s)', flush=True)
    model.cpu().eval()
    if not args.float32:  # evaluate exactly the float16 weights that are shipped
        model.half().float()
    test_acc = exit_accuracies(model, test, pre)
    extra = {
        'dataset': args.dataset,
        'exits': [{'exit': e, 'branch_point': bp, 'test_accuracy': round(a, 4),
                   'validation_accuracy': history[-1]['val_accuracy'][e] if history else None}
                  for e, (bp, a) in enumerate(zip(spec.exit_branch_points, test_acc))],
        'training': {
            'command': 'coinfer-train-model ' + shlex.join(sys.argv[1:] if argv is None else argv),
            'seed': args.seed, 'epochs': args.epochs, 'batch_size': args.batch_size,
            'lr': args.lr, 'weight_decay': args.weight_decay, 'exit_weights': args.exit_weights,
            'train_images': len(train), 'validation_images': len(val), 'test_images': len(test),
            'torch_version': torch.__version__, 'device': args.device,
            'wall_time_s': round(time.time() - t_start, 1), 'history': history,
        },
    }
    save_checkpoint(model, pre, train.class_names, args.out, extra, half=not args.float32)
    print('test accuracy per exit: ' + ', '.join(f'exit {e}: {a:.4f}' for e, a in enumerate(test_acc)))
    print(f'wrote {args.out} and {args.out.with_suffix(".json")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
