# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Repository-wide pytest policy: in CI (CI=true) a skipped test is a failure."""

import os

import pytest

IN_CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn a skip into a failure under CI, so nothing passes by not running."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, 'wasxfail'):
        report.outcome = 'failed'
        report.longrepr = f'skipped under CI=true (environment gap): {report.longrepr}'
