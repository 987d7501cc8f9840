# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Test-session hygiene for everything that touches ROS.

At import (before any test can create a DDS participant) the session gets:
discovery limited to this host (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``), a private
``ROS_DOMAIN_ID`` (``COINFER_TEST_DOMAIN_ID``, else the one the caller exported, else a
random one in 60..101), a temporary ``ROS_LOG_DIR``, ``AMENT_PREFIX_PATH`` and the package's Fast
DDS profile (``config/fastdds_profile.xml``: restarted nodes are rediscovered in well under a second).  Stale Fast
DDS shared-memory segments (of dead processes only) are cleaned before and after the session.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

import pytest

IN_CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')
_LOG_DIR = tempfile.mkdtemp(prefix='coinfer-test-ros-log-')


def _choose_domain() -> int:
    for var in ('COINFER_TEST_DOMAIN_ID', 'ROS_DOMAIN_ID'):
        if os.environ.get(var, '').isdigit():
            return int(os.environ[var])
    return random.SystemRandom().randint(60, 101)


os.environ['ROS_DOMAIN_ID'] = str(_choose_domain())
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.pop('ROS_LOCALHOST_ONLY', None)
os.environ.setdefault('ROS_LOG_DIR', _LOG_DIR)
# The package's Fast DDS profile (fast rediscovery of restarted nodes) for this process and its children.
for _var in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'):
    os.environ.setdefault(_var, str(Path(__file__).resolve().parents[1] / 'config' / 'fastdds_profile.xml'))
_prefix = os.environ.get('VIRTUAL_ENV') or sys.prefix
if _prefix not in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
    os.environ['AMENT_PREFIX_PATH'] = os.pathsep.join(p for p in (_prefix, os.environ.get('AMENT_PREFIX_PATH')) if p)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Remove shared-memory segments left by crashed ROS processes of earlier runs."""
    from coinfer_edge.demo.harness import clean_stale_shm
    clean_stale_shm()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove segments left by processes this session had to SIGKILL."""
    from coinfer_edge.demo.harness import clean_stale_shm
    clean_stale_shm()


def pytest_report_header(config: pytest.Config) -> str:
    """Show the ROS settings of the session."""
    return (f"ROS: ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST "
            f"ROS_LOG_DIR={os.environ['ROS_LOG_DIR']}")


@pytest.fixture(scope='session')
def ros_domain_id() -> int:
    """Return the session's private ROS domain."""
    return int(os.environ['ROS_DOMAIN_ID'])


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it exists; otherwise fail under CI (``CI=true``) and skip elsewhere."""
    if path.is_file():
        return path
    message = f'{what} {path} is missing'
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)
