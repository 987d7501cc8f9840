# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""A hand-made profile small enough to check the decision problem by hand."""

from coinfer_device.core.action import Action
from coinfer_device.core.profile import Profile


def tiny_profile() -> Profile:
    """Two blocks, exits after block 1 and 2, bits {8, 32}: 8 actions."""
    keys = [(0, 8), (0, 32), (1, 8), (1, 32)]
    acc = {Action(0, 0, 8): 0.70, Action(0, 0, 32): 0.71, Action(0, 1, 0): 0.71,
           Action(1, 0, 8): 0.90, Action(1, 0, 32): 0.91, Action(1, 1, 8): 0.88, Action(1, 1, 32): 0.91,
           Action(1, 2, 0): 0.91}
    return Profile(block_ms=[1.0, 2.0], exit_ms=[0.5, 0.25], branch_points=[1, 2], bits_choices=[8, 32],
                   payload_bytes={(0, 8): 1000, (0, 32): 4000, (1, 8): 250, (1, 32): 1000},
                   encode_ms={k: 0.1 for k in keys}, decode_ms={k: 0.05 for k in keys}, accuracy=acc)
