# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Multi-exit (BranchyNet/Edgent-style) AlexNet for small images.

The trunk is a plain sequence of blocks, so a *partition point* is simply a
block index ``p``: the device runs ``trunk[0:p]`` and the edge runs the rest.
``p = 0`` sends the input; ``p = branch_point(e)`` runs exit ``e`` entirely on
the device.  Each exit ``e`` is a small branch attached after trunk block
``branch_points[e] - 1``; the last exit's branch is the final classifier layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """Architecture hyper-parameters; stored in checkpoint metadata."""

    in_channels: int = 1
    num_classes: int = 10
    image_size: int = 32
    widths: tuple[int, int, int, int, int] = (32, 64, 96, 96, 64)
    hidden: int = 256
    dropout: float = 0.3
    exit_branch_points: tuple[int, ...] = field(default=(2, 4, 10))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dictionary."""
        d = asdict(self)
        d['widths'] = list(self.widths)
        d['exit_branch_points'] = list(self.exit_branch_points)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'ModelSpec':
        """Build a spec from :meth:`to_dict` output."""
        d = dict(d)
        d['widths'] = tuple(d['widths'])
        d['exit_branch_points'] = tuple(d['exit_branch_points'])
        return cls(**d)


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


class MultiExitAlexNet(nn.Module):
    """AlexNet-shaped trunk (5 conv, 3 pool, 2 fc) with early-exit branches."""

    def __init__(self, spec: ModelSpec = ModelSpec()) -> None:
        super().__init__()
        self.spec = spec
        w1, w2, w3, w4, w5 = spec.widths
        s = spec.image_size
        self.trunk = nn.ModuleList([
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
        ])
        if tuple(spec.exit_branch_points) != (2, 4, len(self.trunk)):
            raise ValueError(
                f'exit_branch_points must be (2, 4, {len(self.trunk)}) for this '
                f'architecture, got {spec.exit_branch_points}')
        self.exits = nn.ModuleList([
            _branch(w1, s // 2, spec.num_classes),           # exit 0 after pool1
            _branch(w2, s // 4, spec.num_classes),           # exit 1 after pool2
            nn.Linear(spec.hidden, spec.num_classes),        # exit 2 (final)
        ])

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
