# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Pre-trained AlexNet in: a torchvision-layout state dict mapped onto the classic multi-exit trunk.

The file is a plain ``state_dict`` of torchvision's ``AlexNet`` (``features.N.weight/bias``,
``classifier.N.weight/bias``), read with ``torch.load(weights_only=True)`` from a local path;
nothing is downloaded.  Convolutions, fc6 and fc7 are copied onto the trunk.  The final layer
(``classifier.6``) is copied only when it already has the data set's classes; otherwise it
keeps its fresh initialisation and is trained.  fc6/fc7 need the same hidden width as the
model: when the widths differ the load is refused, unless ``features_only`` asks to copy only
the convolutions (then fc6, fc7 and the final layer are trained from scratch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from coinfer_device.core.model import TORCHVISION_LAYOUT, MultiExitAlexNet

FEATURE_PREFIX = 'features.'
FINAL_LAYER = 'classifier.6'


class PretrainedError(ValueError):
    """A pre-trained state dict cannot be mapped onto the model; the message names every problem."""


def _parameter_map(model: MultiExitAlexNet) -> dict[str, str]:
    """Return torchvision parameter name -> this model's parameter name, for weights and biases."""
    if model.spec.arch != 'alexnet':
        raise PretrainedError(f"torchvision AlexNet weights need the classic configuration (arch 'alexnet'), "
                              f'this model is {model.spec.arch!r}')
    return {f'{tv}.{kind}': f'{ours}.{kind}' for tv, ours in TORCHVISION_LAYOUT.items() for kind in ('weight', 'bias')}


def torchvision_state_dict(model: MultiExitAlexNet) -> dict[str, torch.Tensor]:
    """Return the trunk and final layer of a classic model as a torchvision-layout AlexNet state dict."""
    ours = model.state_dict()
    return {tv: ours[name].detach().clone() for tv, name in _parameter_map(model).items()}


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """Read a state dict file with ``torch.load(weights_only=True)``; :class:`PretrainedError` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedError(f'pre-trained weights {path} not found')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises several types for bad or unsafe files
        raise PretrainedError(f'{path}: cannot load as plain tensors (weights_only=True): {exc}') from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedError(f'{path}: expected a state dict (names -> tensors), got {type(state).__name__}')
    return dict(state)


def load_torchvision_alexnet(model: MultiExitAlexNet, state: Mapping[str, torch.Tensor],
                             features_only: bool = False) -> list[str]:
    """Copy a torchvision-layout AlexNet ``state`` onto ``model`` and return the names of what was loaded.

    Every problem (missing keys, unknown keys, wrong shapes, a different hidden width) is
    collected and raised as one :class:`PretrainedError`; ``model`` is untouched then.
    """
    mapping = _parameter_map(model)
    ours = dict(model.named_parameters())
    expected = set(mapping) if not features_only else {k for k in mapping if k.startswith(FEATURE_PREFIX)}
    ignored = set() if not features_only else {k for k in state if not k.startswith(FEATURE_PREFIX)}
    problems = []
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected - ignored)
    if missing:
        problems.append(f'missing keys {missing}')
    if unexpected:
        hint = " (strip the 'module.' prefix of a DataParallel file)" if all(
            k.startswith('module.') for k in unexpected) else ''
        problems.append(f'unexpected keys {unexpected}{hint}')
    loads = []
    hidden_differs = False
    for key in sorted(expected & set(state)):
        want, got = tuple(ours[mapping[key]].shape), tuple(state[key].shape)
        if key.startswith(FINAL_LAYER + '.') and got[1:] == want[1:]:
            if got == want:
                loads.append(key)
            continue  # another class count: the final layer keeps its fresh initialisation (it is replaced)
        if got != want:
            need = want if not key.startswith(FINAL_LAYER + '.') else ('classes',) + want[1:]
            problems.append(f'{key}: shape {got}, the model needs {need}')
            hidden_differs |= key.startswith(('classifier.1.', 'classifier.4.'))
        else:
            loads.append(key)
    if hidden_differs:
        problems.append(f"the model's classifier is {model.spec.hidden} wide: train with the file's hidden width "
                        '(--hidden) or copy only the convolutions (--features-only)')
    if problems:
        raise PretrainedError('cannot load a torchvision AlexNet state dict: ' + '; '.join(problems))
    with torch.no_grad():
        for key in loads:
            ours[mapping[key]].copy_(state[key].to(ours[mapping[key]].dtype))
    return loads
