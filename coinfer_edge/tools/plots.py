# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The one place that sets matplotlib up for the tools and the demo: PNG files, no display."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """Return ``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use: it is slow)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt
