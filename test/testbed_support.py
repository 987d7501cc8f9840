# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""What the tests of the real-link testbed share: root or an explicit opt-out, never a silent skip."""

from __future__ import annotations

import os

import pytest


def require_root(what: str) -> None:
    """Fail (do not skip) without root, unless explicitly opted out outside CI (``COINFER_TESTBED_OPT_OUT=1``)."""
    if os.geteuid() == 0:
        return
    message = f'{what} need root: run them as root'
    if os.environ.get('COINFER_TESTBED_OPT_OUT') == '1' and os.environ.get('CI', '').lower() not in ('1', 'true'):
        pytest.skip(message + ' (opted out with COINFER_TESTBED_OPT_OUT=1)')
    pytest.fail(message + ', or set COINFER_TESTBED_OPT_OUT=1 to skip them explicitly')
