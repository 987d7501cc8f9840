# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The built package installs what ros2 run / ros2 launch need, and the core is rclpy-free."""

import importlib
import subprocess
import sys
import zipfile
from configparser import ConfigParser
from pathlib import Path

import pytest

from coinfer_device.core.paths import SHIPPED_FILES, shipped

ROOT = Path(__file__).resolve().parents[1]


def _entry_points():
    import ast
    tree = ast.parse((ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == 'console_scripts':
                    return [ast.literal_eval(e) for e in v.elts]
    raise AssertionError('no console_scripts in setup.py')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
                    '-w', str(out), str(ROOT)], check=True, capture_output=True)
    return zipfile.ZipFile(next(out.glob('coinfer-*.whl')))


def test_wheel_installs_share_files_and_assets(wheel):
    names = set(wheel.namelist())
    data = 'coinfer-0.1.0.data/data/share/'
    assert data + 'ament_index/resource_index/packages/coinfer' in names
    assert data + 'coinfer/package.xml' in names
    for f in (ROOT / 'launch').glob('*.launch.py'):
        assert f'{data}coinfer/launch/{f.name}' in names
    for f in (ROOT / 'config').glob('*.yaml'):
        assert f'{data}coinfer/config/{f.name}' in names
    for f in (ROOT / 'config' / 'sros2').glob('*.xml'):
        assert f'{data}coinfer/config/sros2/{f.name}' in names
    for model in SHIPPED_FILES:   # every shipped model with its metadata, profile and policy
        files = shipped(model)
        policy = Path(files.policy_file)
        assert {f'coinfer_device/assets/{files.checkpoint.name}', f'coinfer_device/assets/{files.checkpoint.stem}.json',
                f'coinfer_device/assets/{files.profile.name}', f'coinfer_edge/assets/{policy.name}',
                f'coinfer_edge/assets/{policy.stem}.json'} <= names, model


def test_scripts_go_to_lib_coinfer_for_ros2_run():
    cfg = ConfigParser()
    cfg.read(ROOT / 'setup.cfg')
    assert cfg['develop']['script_dir'] == '$base/lib/coinfer'
    assert cfg['install']['install_scripts'] == '$base/lib/coinfer'


def test_every_entry_point_resolves():
    for spec in _entry_points():
        name, target = (s.strip() for s in spec.split('='))
        module, func = target.split(':')
        assert callable(getattr(importlib.import_module(module), func)), name
