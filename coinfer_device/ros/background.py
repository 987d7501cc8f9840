# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""An rclpy node that lives beside a program's own work: private context, own executor thread.

The demo's monitor, the graph tests' probe and the benchmarks put a node into a process that
does other things (waits for node processes, prints, times).  :class:`BackgroundNode` gives
that node its own ``rclpy.Context`` (so ``rclpy.init``/``shutdown`` elsewhere never touch it),
leaves the process's signal handlers alone (Ctrl-C stays the program's), and spins a
``SingleThreadedExecutor`` in a daemon thread.  Subscriptions, timers and publishers may be
created on :attr:`BackgroundNode.node` while it spins; their callbacks run in that thread.
"""

from __future__ import annotations

import threading

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions


class BackgroundNode:
    """A node named ``name`` spinning in a daemon thread until :meth:`close` (or the ``with`` block ends)."""

    def __init__(self, name: str, namespace: str | None = None) -> None:
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        try:
            self.node = Node(name, namespace=namespace, context=self.context)
            self.executor = SingleThreadedExecutor(context=self.context)
            self.executor.add_node(self.node)
        except BaseException:
            rclpy.try_shutdown(context=self.context)
            raise
        self._closed = False
        self._thread = threading.Thread(target=self._spin, name=f'{name}-spin', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - spin ends with an exception when the context shuts down
            pass

    def close(self) -> None:
        """Stop spinning, destroy the node and shut its context down (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)

    def __enter__(self) -> 'BackgroundNode':
        """Return self (the node already spins)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the node."""
        self.close()
