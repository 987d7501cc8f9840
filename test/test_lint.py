# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Lint as ament packages do: flake8, pep257 docstrings, copyright headers, xmllint."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY_DIRS = ['coinfer_device', 'coinfer_edge', 'launch', 'test', 'bench']
COPYRIGHT = '# Copyright 2026 The coinfer authors'


def _python_files():
    files = [ROOT / 'setup.py', ROOT / 'conftest.py']
    for d in PY_DIRS:
        files += sorted((ROOT / d).rglob('*.py'))
    return files


def test_flake8_and_pep257():
    """flake8 with flake8-docstrings (pep257 convention), configured in setup.cfg."""
    proc = subprocess.run([sys.executable, '-m', 'flake8', *[str(f) for f in _python_files()]],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_copyright_headers():
    missing = [str(f.relative_to(ROOT)) for f in _python_files()
               if not f.read_text().startswith(COPYRIGHT)]
    assert not missing, f'files without "{COPYRIGHT}": {missing}'


def test_package_xml_is_well_formed_format3():
    xmllint = shutil.which('xmllint')
    if xmllint is None:
        pytest.skip('xmllint missing: apt-get install libxml2-utils (make setup installs it)')
    proc = subprocess.run([xmllint, '--noout', str(ROOT / 'package.xml')], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    for tag in ('name', 'version', 'description', 'maintainer', 'license'):
        assert root.find(tag) is not None and root.find(tag).text.strip(), tag
    assert root.find('name').text == 'coinfer'
    assert root.find('export/build_type').text == 'ament_python'
    deps = {e.text for e in root.iter('exec_depend')}
    assert {'rclpy', 'std_msgs', 'sensor_msgs', 'diagnostic_msgs', 'cv_bridge'} <= deps
