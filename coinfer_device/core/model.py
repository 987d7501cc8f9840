# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Multi-exit (BranchyNet/Edgent-style) AlexNet in two configurations.

The trunk is a plain sequence of blocks, so a *partition point* is simply a
block index ``p``: the device runs ``trunk[0:p]`` and the edge runs the rest.
``p = 0`` sends the input; ``p = branch_point(e)`` runs exit ``e`` entirely on
the device.  Each exit ``e`` is a small branch attached after trunk block
``branch_points[e] - 1``; the last exit's branch is the final classifier layer.

``ModelSpec.arch`` selects the trunk:

* ``'small'``: an AlexNet-shaped network for 32 x 32 inputs (5 x 5 and 3 x 3
  convolutions with batch norm); the original shipped model.
* ``'alexnet'``: the classic AlexNet in torchvision's layer layout (224 x 224
  RGB, 11 x 11 stride-4 conv1, widths 64/192/384/256/256, no batch norm, an
  ``avgpool`` to 6 x 6 and a classifier of hidden width ``hidden``), so that a
  torchvision AlexNet state dict maps onto it (:data:`TORCHVISION_LAYOUT`).

Both have the same 10 blocks, a block being one step whose output is worth
sending: a convolution with its ReLU (and batch norm), a max-pool, or a fully
connected layer with its dropout and ReLU.  Block 7 (pool3) includes the
``avgpool``, so the tensor sent at partition 8 is always ``widths[4] x 6 x 6``
for the classic net.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from coinfer_device.core.config import strict_from_dict

ARCHES = ('small', 'alexnet')
ALEXNET_WIDTHS = (64, 192, 384, 256, 256)
ALEXNET_CLASSIC_HIDDEN = 4096
# fc6 alone holds 9216 x hidden weights: 1024 keeps the float16 checkpoint near 26 MB (<= 30 MB), 4096 makes it 114 MB.
ALEXNET_DEFAULT_HIDDEN = 1024
ALEXNET_IMAGE_SIZE = 224
ALEXNET_MIN_IMAGE_SIZE = 63  # the smallest input that still leaves 1 x 1 after pool3
EXIT_BRANCH_POINTS = (2, 4, 10)

# torchvision's AlexNet parameter names -> this module's, for the classic configuration.
TORCHVISION_LAYOUT = {
    'features.0': 'trunk.0.0',      # conv1 11 x 11 / 4
    'features.3': 'trunk.2.0',      # conv2 5 x 5
    'features.6': 'trunk.4.0',      # conv3 3 x 3
    'features.8': 'trunk.5.0',      # conv4 3 x 3
    'features.10': 'trunk.6.0',     # conv5 3 x 3
    'classifier.1': 'trunk.8.2',    # fc6
    'classifier.4': 'trunk.9.1',    # fc7
    'classifier.6': 'exits.2',      # fc8, the final exit
}


@dataclass(frozen=True)
class ModelSpec:
    """Architecture hyper-parameters; stored in checkpoint metadata."""

    in_channels: int = 1
    num_classes: int = 10
    image_size: int = 32
    widths: tuple[int, int, int, int, int] = (32, 64, 96, 96, 64)
    hidden: int = 256
    dropout: float = 0.3
    exit_branch_points: tuple[int, ...] = field(default=EXIT_BRANCH_POINTS)
    arch: str = 'small'

    def __post_init__(self) -> None:
        """Refuse an unknown architecture name."""
        if self.arch not in ARCHES:
            raise ValueError(f'unknown model arch {self.arch!r} (one of {", ".join(ARCHES)})')

    @classmethod
    def alexnet(cls, num_classes: int = 10, hidden: int = ALEXNET_DEFAULT_HIDDEN, in_channels: int = 3,
                image_size: int = ALEXNET_IMAGE_SIZE, dropout: float = 0.5) -> 'ModelSpec':
        """Return the classic AlexNet configuration (``hidden=4096`` is torchvision's classifier)."""
        return cls(in_channels=in_channels, num_classes=num_classes, image_size=image_size, widths=ALEXNET_WIDTHS,
                   hidden=hidden, dropout=dropout, arch='alexnet')

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dictionary."""
        d = asdict(self)
        d['widths'] = list(self.widths)
        d['exit_branch_points'] = list(self.exit_branch_points)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'ModelSpec':
        """Build a spec from :meth:`to_dict` output; unknown keys are an error."""
        return strict_from_dict(cls, d, 'model spec', {'widths': tuple, 'exit_branch_points': tuple})


def _conv(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _branch(c_in: int, spatial: int, num_classes: int) -> nn.Sequential:
    """Small early-exit branch: one conv, a pool and a linear classifier."""
    return nn.Sequential(
        _conv(c_in, c_in, 3),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c_in * (spatial // 2) ** 2, num_classes),
    )


def _small_network(spec: ModelSpec) -> tuple[list[nn.Module], list[nn.Module]]:
    """Return (trunk blocks, exits) of the 32 x 32 network."""
    w1, w2, w3, w4, w5 = spec.widths
    s = spec.image_size
    trunk = [
        _conv(spec.in_channels, w1, 5),                  # 0: conv1
        nn.MaxPool2d(2),                                 # 1: pool1
        _conv(w1, w2, 5),                                # 2: conv2
        nn.MaxPool2d(2),                                 # 3: pool2
        _conv(w2, w3, 3),                                # 4: conv3
        _conv(w3, w4, 3),                                # 5: conv4
        _conv(w4, w5, 3),                                # 6: conv5
        nn.MaxPool2d(2),                                 # 7: pool3
        nn.Sequential(nn.Flatten(), nn.Dropout(spec.dropout),
                      nn.Linear(w5 * (s // 8) ** 2, spec.hidden),
                      nn.ReLU(inplace=True)),            # 8: fc6
        nn.Sequential(nn.Dropout(spec.dropout),
                      nn.Linear(spec.hidden, spec.hidden),
                      nn.ReLU(inplace=True)),            # 9: fc7
    ]
    exits = [
        _branch(w1, s // 2, spec.num_classes),           # exit 0 after pool1
        _branch(w2, s // 4, spec.num_classes),           # exit 1 after pool2
        nn.Linear(spec.hidden, spec.num_classes),        # exit 2 (final)
    ]
    return trunk, exits


def _conv_relu(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding), nn.ReLU(inplace=True))


def _pooled_branch(c_in: int, num_classes: int) -> nn.Sequential:
    """Early exit of the classic net: a stride-2 conv (2 x the width, at most 256), a 4 x 4 pool, a linear layer.

    Stride 2 keeps the branch at a fraction of the trunk's cost up to its branch point (exit 0: 15 M of
    85 M multiply-accumulates), so the exits stay ordered by cost.
    """
    c = min(2 * c_in, 256)
    return nn.Sequential(
        nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(c * 16, num_classes),
    )


def _alexnet_network(spec: ModelSpec) -> tuple[list[nn.Module], list[nn.Module]]:
    """Return (trunk blocks, exits) of the classic AlexNet; comments give torchvision's module names."""
    if spec.image_size < ALEXNET_MIN_IMAGE_SIZE:
        raise ValueError(f'the classic AlexNet needs image_size >= {ALEXNET_MIN_IMAGE_SIZE}, got {spec.image_size}')
    w1, w2, w3, w4, w5 = spec.widths
    trunk = [
        _conv_relu(spec.in_channels, w1, 11, 4, 2),       # 0: conv1   features.0-1
        nn.MaxPool2d(3, 2),                               # 1: pool1   features.2
        _conv_relu(w1, w2, 5, padding=2),                 # 2: conv2   features.3-4
        nn.MaxPool2d(3, 2),                               # 3: pool2   features.5
        _conv_relu(w2, w3, 3, padding=1),                 # 4: conv3   features.6-7
        _conv_relu(w3, w4, 3, padding=1),                 # 5: conv4   features.8-9
        _conv_relu(w4, w5, 3, padding=1),                 # 6: conv5   features.10-11
        nn.Sequential(nn.MaxPool2d(3, 2),
                      nn.AdaptiveAvgPool2d(6)),           # 7: pool3   features.12, avgpool
        nn.Sequential(nn.Flatten(), nn.Dropout(spec.dropout),
                      nn.Linear(w5 * 36, spec.hidden),
                      nn.ReLU(inplace=True)),             # 8: fc6     classifier.0-2
        nn.Sequential(nn.Dropout(spec.dropout),
                      nn.Linear(spec.hidden, spec.hidden),
                      nn.ReLU(inplace=True)),             # 9: fc7     classifier.3-5
    ]
    exits = [
        _pooled_branch(w1, spec.num_classes),             # exit 0 after pool1
        _pooled_branch(w2, spec.num_classes),             # exit 1 after pool2
        nn.Linear(spec.hidden, spec.num_classes),         # exit 2     classifier.6
    ]
    return trunk, exits


class MultiExitAlexNet(nn.Module):
    """AlexNet trunk (5 conv, 3 pool, 2 fc) with early-exit branches; ``spec.arch`` picks the configuration."""

    def __init__(self, spec: ModelSpec = ModelSpec()) -> None:
        super().__init__()
        self.spec = spec
        trunk, exits = (_alexnet_network if spec.arch == 'alexnet' else _small_network)(spec)
        self.trunk = nn.ModuleList(trunk)
        if tuple(spec.exit_branch_points) != (2, 4, len(self.trunk)):
            raise ValueError(
                f'exit_branch_points must be (2, 4, {len(self.trunk)}) for this '
                f'architecture, got {spec.exit_branch_points}')
        self.exits = nn.ModuleList(exits)

    @property
    def num_blocks(self) -> int:
        """Number of trunk blocks; valid partition points are 0..num_blocks."""
        return len(self.trunk)

    @property
    def num_exits(self) -> int:
        """Number of exits (the last one is the full network)."""
        return len(self.exits)

    def branch_point(self, exit_point: int) -> int:
        """Return the trunk index after which exit ``exit_point`` branches off."""
        if not 0 <= exit_point < self.num_exits:
            raise ValueError(f'exit {exit_point} out of range 0..{self.num_exits - 1}')
        return self.spec.exit_branch_points[exit_point]

    def run_blocks(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Run trunk blocks ``start..stop-1`` on ``x``."""
        if not 0 <= start <= stop <= self.num_blocks:
            raise ValueError(f'bad block range {start}..{stop} (0..{self.num_blocks})')
        for block in self.trunk[start:stop]:
            x = block(x)
        return x

    def head(self, x: torch.Tensor, partition: int) -> torch.Tensor:
        """Device side: run the trunk up to partition point ``partition``."""
        return self.run_blocks(x, 0, partition)

    def tail(self, feature: torch.Tensor, partition: int, exit_point: int) -> torch.Tensor:
        """Edge side: finish from ``partition`` to exit ``exit_point``; return logits."""
        bp = self.branch_point(exit_point)
        if partition > bp:
            raise ValueError(
                f'partition {partition} lies past exit {exit_point} (branch point {bp})')
        return self.exits[exit_point](self.run_blocks(feature, partition, bp))

    def infer(self, x: torch.Tensor, partition: int, exit_point: int) -> torch.Tensor:
        """Run head and tail in one process (no link): the reference result."""
        return self.tail(self.head(x, partition), partition, exit_point)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the logits of every exit (used for joint training)."""
        outputs = []
        prev = 0
        for e, bp in enumerate(self.spec.exit_branch_points):
            x = self.run_blocks(x, prev, bp)
            prev = bp
            outputs.append(self.exits[e](x))
        return outputs

    def feature_shape(self, partition: int) -> tuple[int, ...]:
        """Shape (without batch) of the tensor that crosses the link at ``partition``."""
        with torch.no_grad():
            was_training = self.training
            self.eval()
            s = self.spec
            x = torch.zeros(1, s.in_channels, s.image_size, s.image_size)
            shape = tuple(self.head(x, partition).shape[1:])
            self.train(was_training)
        return shape


def classify(logits: torch.Tensor) -> tuple[int, float]:
    """Return ``(class_id, confidence)`` of one sample's logits: the arg max and the max of the softmax."""
    confidence, class_id = torch.max(torch.softmax(logits.reshape(-1), dim=0), dim=0)
    return int(class_id), float(confidence)
