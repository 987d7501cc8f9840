# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Native thread names: what ``top -H``, ``ps -L`` and ``/proc/<pid>/task/*/comm`` show for our threads.

Python's thread names stay inside Python; the kernel keeps the process name for every thread
unless the thread renames itself.  The device's inference thread does, so a user can see it in
``top -H`` and the real-link testbed can give it its own CPU quota
(:mod:`coinfer_edge.testbed.robot_cpu`).  No ROS import.
"""

from __future__ import annotations

import ctypes
import sys

INFERENCE_THREAD = 'coinfer-infer'
SENDER_THREAD = 'coinfer-send'
_PR_SET_NAME = 15
_MAX_LEN = 15  # the kernel keeps 15 bytes (16 with the terminating NUL)


def name_this_thread(name: str) -> bool:
    """Set the calling thread's kernel name (Linux; at most 15 bytes); return whether it was set."""
    if not sys.platform.startswith('linux'):
        return False
    try:
        # The interpreter's own symbols include libc's prctl: no library search (find_library runs ldconfig in a
        # subprocess, which a thread of a running node should not do).
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_NAME, name.encode()[:_MAX_LEN], 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
