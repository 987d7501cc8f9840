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


def save(fig: Any, path: Any, tight: bool = True) -> None:
    """Write ``fig`` as a PNG at 110 dpi (after ``tight_layout`` when ``tight``) and free it."""
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
