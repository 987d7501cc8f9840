# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""``coinfer-train-model``: joint training of every exit of the multi-exit AlexNet.

``--arch small`` (default) trains the 32 x 32 network, ``--arch alexnet`` the classic AlexNet at
224 x 224 RGB; ``--init-from FILE`` starts the latter from a torchvision-layout AlexNet state dict
(docs/model.md).  After every epoch the whole training state goes to ``OUT.state.pt``, and
``--resume`` continues from it, so a long run can span several sittings.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from coinfer_device.core.checkpoint import (CheckpointError, load_training_state, save_checkpoint,
                                            save_training_state, training_state_path)
from coinfer_device.core.data import Dataset, DatasetError, Preprocessing, batch_to_input, load_dataset
from coinfer_device.core.evaluation import exit_accuracies, train_validation_indices
from coinfer_device.core.model import (ALEXNET_DEFAULT_HIDDEN, ALEXNET_IMAGE_SIZE, EXIT_BRANCH_POINTS,
                                       TORCHVISION_LAYOUT, ModelSpec, MultiExitAlexNet)
from coinfer_device.core.pretrained import PretrainedError, load_torchvision_alexnet, read_state_dict
from coinfer_device.core.sidecar import sha256_file

DEFAULT_EXIT_WEIGHTS = (0.4, 0.6, 1.0)
DEFAULT_OUT = {'small': Path('runs/model/fmnist_alexnet.pt'), 'alexnet': Path('runs/model/fmnist_alexnet224.pt')}
DEFAULT_HIDDEN = {'small': ModelSpec().hidden, 'alexnet': ALEXNET_DEFAULT_HIDDEN}
# Peak learning rates (one-cycle AdamW).  The classic net has no batch norm, so it gets a lower one, and a
# pre-trained trunk that is fine-tuned a lower one still.  Defaults, not the result of a search.
DEFAULT_LR = {'small': 3e-3, 'alexnet': 1e-3, 'alexnet-fine-tune': 1e-4}
# Settings a resumed run must share with the run that wrote the state (anything else may change).
RECIPE_KEYS = ('arch', 'hidden', 'dataset', 'data', 'epochs', 'batch_size', 'lr', 'weight_decay', 'exit_weights',
               'seed', 'limit', 'init_from', 'features_only', 'freeze_trunk')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line and fill the per-architecture defaults."""
    p = argparse.ArgumentParser(prog='coinfer-train-model', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', default='small', choices=['small', 'alexnet'],
                   help='small: 32 x 32 network; alexnet: classic AlexNet at 224 x 224 RGB')
    p.add_argument('--hidden', type=int, default=None,
                   help=f'classifier hidden width (default {DEFAULT_HIDDEN["small"]} small, '
                        f'{DEFAULT_HIDDEN["alexnet"]} alexnet; torchvision uses 4096)')
    p.add_argument('--dataset', default='fashion-mnist', choices=['fashion-mnist', 'cifar10', 'folder'])
    p.add_argument('--data', type=Path, default=None, help='data set folder (default: Debian path for Fashion-MNIST)')
    p.add_argument('--out', type=Path, default=None,
                   help='checkpoint to write (metadata: same name .json, training state: .state.pt; default '
                        + ', '.join(f'{a}: {o}' for a, o in DEFAULT_OUT.items()) + ')')
    p.add_argument('--epochs', type=int, default=8)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--lr', type=float, default=None,
                   help='peak learning rate (one-cycle AdamW; default 3e-3 small, 1e-3 alexnet, '
                        '1e-4 alexnet fine-tuning a pre-trained trunk)')
    p.add_argument('--weight-decay', type=float, default=5e-4)
    p.add_argument('--exit-weights', type=float, nargs='+', default=list(DEFAULT_EXIT_WEIGHTS),
                   help='loss weight of each exit (weighted sum)')
    p.add_argument('--init-from', type=Path, default=None, metavar='FILE',
                   help='alexnet: start from a torchvision-layout AlexNet state dict (local file, weights_only)')
    p.add_argument('--features-only', action='store_true',
                   help='with --init-from: copy only the convolutions (fc6/fc7 of another width are then trained)')
    p.add_argument('--freeze-trunk', action='store_true',
                   help='with --init-from: keep the loaded trunk layers fixed and train only the exits')
    p.add_argument('--resume', action='store_true', help='continue from OUT.state.pt (same settings)')
    p.add_argument('--stop-after', type=int, default=0, metavar='EPOCH',
                   help='end this sitting after epoch EPOCH, leaving OUT.state.pt for --resume')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0 = torch default)')
    p.add_argument('--limit', type=int, default=0, help='use only the first N training images (smoke runs)')
    p.add_argument('--eval-limit', type=int, default=0,
                   help='validate and test on only the first N images (smoke runs; recorded in the metadata)')
    p.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda')
    p.add_argument('--float32', action='store_true', help='store float32 weights (default float16)')
    p.add_argument('--bf16', action='store_true',
                   help='train under bfloat16 autocast (about 2x faster on CPUs with AVX512-BF16 or AMX; '
                        'weights, optimiser and evaluation stay float32)')
    args = p.parse_args(argv)
    if args.init_from and args.arch != 'alexnet':
        p.error('--init-from needs --arch alexnet')
    if args.hidden is not None and args.hidden <= 0:
        p.error('--hidden must be positive')
    if (args.features_only or args.freeze_trunk) and not args.init_from:
        p.error('--features-only and --freeze-trunk need --init-from')
    args.hidden = args.hidden or DEFAULT_HIDDEN[args.arch]
    args.out = args.out or DEFAULT_OUT[args.arch]
    if args.lr is None:
        fine_tune = args.init_from and not args.freeze_trunk
        args.lr = DEFAULT_LR['alexnet-fine-tune' if fine_tune else args.arch]
    if len(args.exit_weights) != len(EXIT_BRANCH_POINTS):
        p.error(f'--exit-weights needs {len(EXIT_BRANCH_POINTS)} values')
    return args


def _recipe(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k in RECIPE_KEYS}


def _augment(x: torch.Tensor, gen: torch.Generator, shift: int) -> torch.Tensor:
    """Random horizontal flip per sample and a random +-``shift`` pixel shift per batch."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None].to(x.device), x.flip(3), x)
    dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def _preprocessing(args: argparse.Namespace, train: Dataset) -> Preprocessing:
    """Model input: the 32 x 32 net pads 28-pixel images, the classic net resizes any image to 224 x 224 RGB."""
    pixels = train.images.astype(np.float32) / 255.0
    mean, std = round(float(pixels.mean()), 4), round(float(pixels.std()), 4)
    if args.arch == 'alexnet':
        return Preprocessing(in_channels=3, content_size=ALEXNET_IMAGE_SIZE, image_size=ALEXNET_IMAGE_SIZE,
                             mean=mean, std=std)
    return Preprocessing(in_channels=1 if train.images.ndim == 3 else 3, content_size=min(train.images.shape[1], 32),
                         image_size=32, mean=mean, std=std)


def _initialise(model: MultiExitAlexNet, args: argparse.Namespace) -> dict[str, Any]:
    """Load ``--init-from`` onto the trunk; return what was loaded and which layers ``--freeze-trunk`` fixes."""
    loaded = load_torchvision_alexnet(model, read_state_dict(args.init_from), features_only=args.features_only)
    frozen = [k for k in loaded if not k.startswith('classifier.6.')] if args.freeze_trunk else []
    return {'file': str(args.init_from), 'sha256': sha256_file(args.init_from), 'loaded': loaded,
            'final_layer': 'loaded' if 'classifier.6.weight' in loaded else 'replaced', 'frozen': frozen}


def _freeze(model: MultiExitAlexNet, torchvision_keys: list[str]) -> None:
    """Stop the gradient of the parameters named in torchvision's layout."""
    params = dict(model.named_parameters())
    for key in torchvision_keys:
        layer, kind = key.rsplit('.', 1)
        params[f'{TORCHVISION_LAYOUT[layer]}.{kind}'].requires_grad_(False)


def _rng_state(gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    state = {'torch': torch.get_rng_state(), 'augment': gen.get_state()}
    if device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state['torch'])
    gen.set_state(state['augment'])
    if device.type == 'cuda' and 'cuda' in state:
        torch.cuda.set_rng_state(state['cuda'], device)


def _resume_state(args: argparse.Namespace) -> dict[str, Any]:
    """Read the state written after the last finished epoch; refuse one written with other settings."""
    path = training_state_path(args.out)
    state = load_training_state(path)
    differing = {k: (state['recipe'].get(k), v) for k, v in _recipe(args).items() if state['recipe'].get(k) != v}
    if differing:
        raise CheckpointError(f'{path} was written with other settings: '
                              + ', '.join(f'{k} {was!r} (now {now!r})' for k, (was, now) in differing.items()))
    print(f'resuming {path} after epoch {state["epoch"]}', flush=True)
    return state


def _train_epoch(model: MultiExitAlexNet, train: Dataset, pre: Preprocessing, args: argparse.Namespace,
                 opt: torch.optim.Optimizer, sched: Any, gen: torch.Generator, device: torch.device,
                 desc: str) -> tuple[float, float]:
    """Run one epoch; return (mean loss, seconds per step).  Inputs are preprocessed batch by batch."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    shift = max(1, round(2 * pre.image_size / 32))  # +-2 pixels of a 32 x 32 input, the same share at 224
    perm = torch.randperm(len(train), generator=gen)
    steps = (len(train) + args.batch_size - 1) // args.batch_size
    total, n = 0.0, 0
    t0 = time.perf_counter()
    # On a terminal the bar redraws every second; in a log file (a long run in the background) once a minute.
    bar = tqdm(range(steps), desc=desc, leave=False, mininterval=1.0 if sys.stderr.isatty() else 60.0)
    for step in bar:
        idx = perm[step * args.batch_size:(step + 1) * args.batch_size]
        x = _augment(batch_to_input(train.images[idx.numpy()], pre), gen, shift).to(device)
        y = torch.from_numpy(train.labels[idx.numpy()]).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            outputs = model(x)
        loss = sum(w * loss_fn(o.float(), y) for w, o in zip(args.exit_weights, outputs))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(idx)
        n += len(idx)
        bar.set_postfix(loss=f'{total / n:.3f}', refresh=False)  # the bar's own interval decides redraws
    return total / n, (time.perf_counter() - t0) / steps


def main(argv: list[str] | None = None) -> int:
    """Train (or resume), evaluate on the test split, and write checkpoint + metadata."""
    args = parse_args(argv)
    command = 'coinfer-train-model ' + shlex.join(sys.argv[1:] if argv is None else argv)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, command)
    except (CheckpointError, DatasetError, PretrainedError) as exc:
        print(f'coinfer-train-model: error: {exc}', file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, command: str) -> int:
    size = ALEXNET_IMAGE_SIZE if args.arch == 'alexnet' else 32
    train_all = load_dataset(args.dataset, args.data, 'train', size)
    test = load_dataset(args.dataset, args.data, 'test', size)
    train_idx, val_idx = train_validation_indices(len(train_all))
    if args.limit:
        train_idx = train_idx[:args.limit]
    if args.eval_limit:
        val_idx, test = val_idx[:args.eval_limit], test.subset(np.arange(min(args.eval_limit, len(test))))
    train, val = train_all.subset(train_idx), train_all.subset(val_idx)
    pre = _preprocessing(args, train)
    if args.arch == 'alexnet':
        spec = ModelSpec.alexnet(num_classes=len(train.class_names), hidden=args.hidden)
    else:
        spec = ModelSpec(in_channels=pre.in_channels, num_classes=len(train.class_names), hidden=args.hidden)
    device = torch.device(args.device)
    model = MultiExitAlexNet(spec)
    state = _resume_state(args) if args.resume else None
    init = (state['init'] or None) if state else _initialise(model, args) if args.init_from else None
    _freeze(model, init['frozen'] if init else [])
    model.to(device)
    steps_per_epoch = (len(train) + args.batch_size - 1) // args.batch_size
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr,
                            weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)
    state_path = training_state_path(args.out)
    if state:
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['optimizer'])
        sched.load_state_dict(state['scheduler'])
        _set_rng_state(state['rng'], gen, device)
    else:
        if state_path.exists():
            print(f'note: starting afresh; {state_path} will be replaced (--resume continues it)', flush=True)
        state = {'epoch': 0, 'history': [], 'elapsed_s': 0.0, 'commands': []}
    commands = state['commands'] + [command]
    history = state['history']
    print(f'{args.arch}: training {len(train)} images, validating on {len(val)}, testing on {len(test)}; '
          f'{steps_per_epoch} steps of {args.batch_size} per epoch; exit weights {args.exit_weights}', flush=True)
    t_start = time.time() - state['elapsed_s']
    last = min(args.epochs, args.stop_after or args.epochs)
    for epoch in range(state['epoch'] + 1, last + 1):
        loss, step_s = _train_epoch(model, train, pre, args, opt, sched, gen, device, f'epoch {epoch}/{args.epochs}')
        rng = _rng_state(gen, device)  # where the next epoch starts (evaluation draws no random numbers)
        val_acc = exit_accuracies(model, val, pre, device=device, progress='validation')
        history.append({'epoch': epoch, 'train_loss': round(loss, 4), 'val_accuracy': [round(a, 4) for a in val_acc],
                        'seconds_per_step': round(step_s, 4), 'elapsed_s': round(time.time() - t_start, 1)})
        save_training_state(state_path, {
            'epoch': epoch, 'model': {k: v.cpu() for k, v in model.state_dict().items()},
            'optimizer': opt.state_dict(), 'scheduler': sched.state_dict(), 'rng': rng,
            'history': history, 'elapsed_s': time.time() - t_start, 'recipe': _recipe(args),
            'commands': commands, 'init': init or {}})
        print(f'epoch {epoch:2d}  loss {loss:.4f}  val acc per exit ' + ' '.join(f'{a:.4f}' for a in val_acc)
              + f'  ({step_s:.3f} s/step, {time.time() - t_start:.0f} s)', flush=True)
    if last < args.epochs:
        print(f'stopped after epoch {last} of {args.epochs}; continue with --resume (state in {state_path})')
        return 0
    model.eval()
    if not args.float32:  # evaluate exactly the float16 weights that are shipped
        model.half().float()
    test_acc = exit_accuracies(model, test, pre, device=device, progress='test')
    model.cpu()
    extra = {
        'dataset': args.dataset,
        'exits': [{'exit': e, 'branch_point': bp, 'test_accuracy': round(a, 4),
                   'validation_accuracy': history[-1]['val_accuracy'][e] if history else None}
                  for e, (bp, a) in enumerate(zip(spec.exit_branch_points, test_acc))],
        'training': {
            'command': commands[0],
            'seed': args.seed, 'epochs': args.epochs, 'batch_size': args.batch_size,
            'lr': args.lr, 'weight_decay': args.weight_decay, 'exit_weights': args.exit_weights,
            'autocast': 'bfloat16' if args.bf16 else None,
            'train_images': len(train), 'validation_images': len(val), 'test_images': len(test),
            'torch_version': torch.__version__, 'device': args.device,
            'wall_time_s': round(time.time() - t_start, 1), 'history': history,
        },
    }
    if len(commands) > 1:
        extra['training']['resumed_with'] = commands[1:]
    if init:
        extra['training']['init_from'] = init
    save_checkpoint(model, pre, train.class_names, args.out, extra, half=not args.float32)
    print('test accuracy per exit: ' + ', '.join(f'exit {e}: {a:.4f}' for e, a in enumerate(test_acc)))
    print(f'wrote {args.out} and {args.out.with_suffix(".json")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
