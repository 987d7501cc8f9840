# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Console-script entry points of the workstation nodes (see :mod:`coinfer_device.ros.entry_points`)."""

from __future__ import annotations

from coinfer_device.ros.entry_points import run


def edge_node() -> int:
    """Console script ``edge_node``."""
    return run('coinfer_edge.nodes.edge_node')


def policy_node() -> int:
    """Console script ``policy_node``."""
    return run('coinfer_edge.nodes.policy_node')
