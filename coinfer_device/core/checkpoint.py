# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Checkpoint files: plain tensors (``weights_only`` loadable) plus a JSON metadata file.

``NAME.pt`` holds the ``state_dict`` (float16 storage by default) and
``NAME.json`` beside it holds the architecture, preprocessing, class names,
per-exit accuracy and how the model was trained.  Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from coinfer_device.core.data import Preprocessing
from coinfer_device.core.model import ModelSpec, MultiExitAlexNet

CHECKPOINT_FORMAT = 'coinfer-model'
CHECKPOINT_VERSION = 1


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


def assets_dir() -> Path:
    """Return the folder of shipped assets (checkpoint, profile, policy)."""
    return Path(str(resources.files('coinfer_device') / 'assets'))


def default_checkpoint() -> Path:
    """Return the shipped Fashion-MNIST checkpoint."""
    return assets_dir() / 'fmnist_alexnet.pt'


def metadata_path(checkpoint: Path | str) -> Path:
    """Return the metadata file that belongs to ``checkpoint``."""
    return Path(checkpoint).with_suffix('.json')


def sha256_file(path: Path | str) -> str:
    """Return the hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


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


def read_sidecar_metadata(path: Path, fmt: str, version: int, error: type[Exception],
                          verify: bool = True) -> dict[str, Any]:
    """Read and check the JSON metadata beside a weights file ``path``.

    Raises ``error`` when either file is missing, the JSON is invalid, the format or
    version differ, or (``verify``) the weights' SHA-256 does not match the metadata.
    """
    mpath = metadata_path(path)
    if not path.is_file():
        raise error(f'{fmt} weights {path} not found')
    if not mpath.is_file():
        raise error(f'metadata {mpath} not found next to {path.name}')
    try:
        meta = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise error(f'{mpath}: invalid JSON: {exc}') from exc
    if meta.get('format') != fmt or meta.get('version') != version:
        raise error(f'{mpath}: not a {fmt} v{version} file')
    if verify and meta.get('weights_sha256') != sha256_file(path):
        raise error(f'{path}: SHA-256 does not match {mpath.name}')
    return meta


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
