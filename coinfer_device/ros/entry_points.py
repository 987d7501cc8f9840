# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Console-script entry points of the ROS nodes: quiet SIGINT/SIGTERM from the first instant.

A node module imports torch, OpenCV and rclpy (1-3 s) before its ``main`` could install
anything, and a Ctrl-C in that time printed a ``KeyboardInterrupt`` traceback.  These entry
points import nothing heavy: they first make SIGINT and SIGTERM end the process at once with
status 0 (nothing to clean up yet: no DDS participant exists before ``rclpy.init``), unblock
the two signals, then import the node module and run its ``main``.  A launcher may start a node
with SIGINT and SIGTERM *blocked* (:mod:`coinfer_edge.demo.harness` does): a stop during the
interpreter's own start-up, before any coinfer code runs, then waits for these handlers instead
of ending the half-started interpreter with a ``KeyboardInterrupt`` message or status -15.
:func:`coinfer_device.ros.runtime.run_node` hands the signals to rclpy right before
``rclpy.init``, from where a stop shuts the node down cleanly, also with status 0, and further
SIGINT/SIGTERM are ignored.  So a node stopped by SIGINT or SIGTERM at any moment, once or twice,
exits quietly with status 0.
"""

from __future__ import annotations

import importlib
import os
import signal
from typing import Any

from coinfer_device.ros.conventions import EXIT_STOPPED, STOP_SIGNALS


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(EXIT_STOPPED)


def install_startup_handlers() -> None:
    """Make SIGINT and SIGTERM end the process at once with :data:`EXIT_STOPPED`, then unblock them."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _exit_now)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def run(module: str) -> int:
    """Install the startup handlers, import ``module`` and return its ``main()``."""
    install_startup_handlers()
    try:
        return importlib.import_module(module).main()
    except KeyboardInterrupt:  # a second signal while the node was already shutting down
        return EXIT_STOPPED


def camera_node() -> int:
    """Console script ``camera_node``."""
    return run('coinfer_device.nodes.camera_node')


def device_node() -> int:
    """Console script ``device_node``."""
    return run('coinfer_device.nodes.device_node')


def cpu_monitor() -> int:
    """Console script ``cpu_monitor``."""
    return run('coinfer_device.nodes.cpu_monitor')


def link_monitor() -> int:
    """Console script ``link_monitor``."""
    return run('coinfer_device.nodes.link_monitor')


def recorder() -> int:
    """Console script ``coinfer-record``."""
    return run('coinfer_device.nodes.recorder')
