# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The JSON metadata file beside a weights file (``NAME.json`` next to ``NAME.pt`` / ``NAME.safetensors``).

Model checkpoints and trained policies both describe their weights this way: format, version,
the weights file's SHA-256 and whatever the reader needs to rebuild the network.  This module
imports neither torch nor numpy, so a reader that needs no torch (the policy node) stays light.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def metadata_path(weights: Path | str) -> Path:
    """Return the metadata file that belongs to the weights file ``weights``."""
    return Path(weights).with_suffix('.json')


def sha256_file(path: Path | str) -> str:
    """Return the hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


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
        raise error(f'{mpath}: not a {fmt} v{version} file (it says {meta.get("format")!r} v{meta.get("version")!r})')
    if verify and meta.get('weights_sha256') != sha256_file(path):
        raise error(f'{path}: SHA-256 does not match {mpath.name}')
    return meta
