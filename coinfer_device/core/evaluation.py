# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Accuracy of every exit on a data set; shared by training, evaluation and profiling."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from tqdm import tqdm

from coinfer_device.core.data import Dataset, Preprocessing, batch_to_input
from coinfer_device.core.model import MultiExitAlexNet

# A validation split carved from the training set with a fixed seed, so that
# training and profiling agree on which images were never trained on.
VALIDATION_SIZE = 5000
SPLIT_SEED = 20220110


def train_validation_indices(n: int, validation: int = VALIDATION_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Return (train, validation) index arrays of a fixed, seed-independent split."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    validation = min(validation, n // 5)
    return np.sort(perm[validation:]), np.sort(perm[:validation])


def iterate_batches(ds: Dataset, pre: Preprocessing, batch_size: int = 500
                    ) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (input, label) tensors in order."""
    for start in range(0, len(ds), batch_size):
        stop = start + batch_size
        yield batch_to_input(ds.images[start:stop], pre), torch.from_numpy(ds.labels[start:stop])


@torch.no_grad()
def exit_accuracies(model: MultiExitAlexNet, ds: Dataset, pre: Preprocessing,
                    batch_size: int = 500, device: torch.device | str = 'cpu',
                    progress: str | None = None) -> list[float]:
    """Return top-1 accuracy of each exit on ``ds`` (model in eval mode, on ``device``).

    ``progress`` names a tqdm bar over the batches (for the 224 x 224 model on a CPU).
    """
    was_training = model.training
    model.eval()
    correct = np.zeros(model.num_exits)
    batches = iterate_batches(ds, pre, batch_size)
    if progress:
        batches = tqdm(batches, desc=progress, total=-(-len(ds) // batch_size), leave=False, disable=None)
    for x, y in batches:
        for e, logits in enumerate(model(x.to(device))):
            correct[e] += (logits.argmax(1).cpu() == y).sum().item()
    model.train(was_training)
    return [float(c / max(len(ds), 1)) for c in correct]
