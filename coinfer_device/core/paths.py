# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Where the shipped files are: the packages' ``assets/`` folders and the ``config/`` parameter files.

Assets (model checkpoint, machine profile, policy) travel inside the Python packages.  The
config files are in ``config/`` of the source tree, and an install puts them in
``<prefix>/share/coinfer/config`` (``setup.py`` data files), where ``<prefix>`` is one of
``AMENT_PREFIX_PATH`` (a colcon or ROS install) or this interpreter's prefix (pip, venv).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PACKAGE = 'coinfer'
REPO_ROOT = Path(__file__).resolve().parents[2]
# The shipped models, each with the profile of this machine kind and the policy trained on it (docs/model.md).
SHIPPED_FILES = {
    'alexnet224': ('fmnist_alexnet224.pt', 'profile_alexnet224_x86_64.json', 'sacd_policy_alexnet224.safetensors'),
    'small': ('fmnist_alexnet.pt', 'profile_x86_64.json', 'sacd_policy.safetensors'),
}
DEFAULT_MODEL = 'alexnet224'


def assets_dir(package: str = 'coinfer_device') -> Path:
    """Return the ``assets`` folder of a coinfer Python package (``coinfer_device`` or ``coinfer_edge``)."""
    return Path(str(resources.files(package) / 'assets'))


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model: checkpoint, its machine profile and the name of the SAC-d policy trained on that profile.

    The policy lives in ``coinfer_edge/assets`` (``coinfer_edge.core.policy.default_policy_path``).
    """

    name: str
    checkpoint: Path
    profile: Path
    policy_file: str


def shipped(name: str = DEFAULT_MODEL) -> ShippedModel:
    """Return the files of a shipped model (``alexnet224``, the default, or ``small``)."""
    if name not in SHIPPED_FILES:
        raise ValueError(f'no shipped model {name!r}; one of {", ".join(SHIPPED_FILES)}')
    checkpoint, profile, policy = SHIPPED_FILES[name]
    return ShippedModel(name, assets_dir() / checkpoint, assets_dir() / profile, policy)


def profile_for(checkpoint: Path | str | None) -> Path:
    """Return the shipped profile of a shipped checkpoint (``None`` or ``''`` = the default model's), else the default.

    So a node given ``model_path`` of the small shipped model compares its compute with that model's profile.
    """
    if checkpoint:
        target = Path(checkpoint).resolve()
        for name in SHIPPED_FILES:
            if shipped(name).checkpoint.resolve() == target:
                return shipped(name).profile
    return shipped().profile


def share_dirs() -> list[Path]:
    """Return the installed ``share/coinfer`` folders to search: ``AMENT_PREFIX_PATH``'s, then ``sys.prefix``'s."""
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p] + [sys.prefix]
    return [Path(p) / 'share' / PACKAGE for p in dict.fromkeys(prefixes)]


def find_config_file(name: str) -> Path | None:
    """Return ``config/<name>`` of the source tree, else of the first install that has it, else ``None``."""
    for folder in [REPO_ROOT / 'config'] + [d / 'config' for d in share_dirs()]:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def config_file(name: str) -> Path:
    """Return ``config/<name>`` like :func:`find_config_file`; raise ``FileNotFoundError`` when there is none."""
    found = find_config_file(name)
    if found is None:
        raise FileNotFoundError(f'config file {name!r} not found in {REPO_ROOT / "config"} or the package share')
    return found
