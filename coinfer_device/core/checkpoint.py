# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Checkpoint files: plain tensors (``weights_only`` loadable) plus a JSON metadata file.

``NAME.pt`` holds the ``state_dict`` (float16 storage by default) and
``NAME.json`` beside it holds the architecture, preprocessing, class names,
per-exit accuracy and how the model was trained.  Nothing is ever unpickled.

While training, ``NAME.state.pt`` holds everything needed to continue after the
last finished epoch (float32 weights, optimizer, scheduler, RNG states, history):
plain tensors, numbers, strings, lists and dicts, so it loads with
``weights_only=True`` too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from coinfer_device.core.data import Preprocessing
from coinfer_device.core.model import ModelSpec, MultiExitAlexNet
from coinfer_device.core.paths import shipped
from coinfer_device.core.sidecar import metadata_path, read_sidecar_metadata, sha256_file

CHECKPOINT_FORMAT = 'coinfer-model'
CHECKPOINT_VERSION = 1
TRAINING_STATE_FORMAT = 'coinfer-training-state'
TRAINING_STATE_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint or its metadata is missing, corrupt or does not match."""


@dataclass
class LoadedModel:
    """A ready-to-run model (eval mode) with everything needed to feed it."""

    model: MultiExitAlexNet
    preprocessing: Preprocessing
    class_names: tuple[str, ...]
    metadata: dict[str, Any]
    path: Path


def default_checkpoint() -> Path:
    """Return the default shipped checkpoint (:func:`coinfer_device.core.paths.shipped`)."""
    return shipped().checkpoint


def save_checkpoint(model: MultiExitAlexNet, preprocessing: Preprocessing,
                    class_names: tuple[str, ...], path: Path | str,
                    extra: dict[str, Any] | None = None, half: bool = True) -> Path:
    """Write ``path`` (tensors) and its JSON metadata; return the metadata path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    torch.save(state, path)
    meta = {
        'format': CHECKPOINT_FORMAT,
        'version': CHECKPOINT_VERSION,
        'architecture': 'MultiExitAlexNet',
        'spec': model.spec.to_dict(),
        'preprocessing': preprocessing.to_dict(),
        'class_names': list(class_names),
        'weights_file': path.name,
        'weights_sha256': sha256_file(path),
        'storage_dtype': 'float16' if half else 'float32',
    }
    meta.update(extra or {})
    mpath = metadata_path(path)
    mpath.write_text(json.dumps(meta, indent=2) + '\n')
    return mpath


def load_checkpoint(path: Path | str | None = None, verify: bool = True) -> LoadedModel:
    """Load a checkpoint with ``torch.load(weights_only=True)``; ``None`` = shipped one."""
    path = Path(path) if path else default_checkpoint()
    meta = read_sidecar_metadata(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, verify)
    model = MultiExitAlexNet(ModelSpec.from_dict(meta['spec']))
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in state.items()})
    except Exception as exc:  # torch raises several types for bad files
        raise CheckpointError(f'{path}: cannot load weights: {exc}') from exc
    model.eval()
    return LoadedModel(model, Preprocessing(**meta['preprocessing']),
                       tuple(meta['class_names']), meta, path)


def training_state_path(checkpoint: Path | str) -> Path:
    """Return the training-state file that belongs to the checkpoint ``checkpoint`` (``NAME.state.pt``)."""
    return Path(checkpoint).with_suffix('.state.pt')


def save_training_state(path: Path | str, state: dict[str, Any]) -> None:
    """Write a training state atomically: an interrupted write leaves the previous state intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    torch.save({'format': TRAINING_STATE_FORMAT, 'version': TRAINING_STATE_VERSION, **state}, tmp)
    os.replace(tmp, path)


def load_training_state(path: Path | str) -> dict[str, Any]:
    """Load a training state written by :func:`save_training_state` with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'training state {path} not found (it is written after every epoch)')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises several types for bad files
        raise CheckpointError(f'{path}: cannot load training state: {exc}') from exc
    if not isinstance(state, dict) or (state.get('format'), state.get('version')) != (
            TRAINING_STATE_FORMAT, TRAINING_STATE_VERSION):
        raise CheckpointError(f'{path}: not a {TRAINING_STATE_FORMAT} v{TRAINING_STATE_VERSION} file')
    return state
