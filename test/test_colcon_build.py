# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The ROS path: `colcon build` of the package in a fresh workspace gives what `ros2 run` needs.

colcon runs on the interpreter that runs the tests (the venv with the ROS Jazzy wheels), so the
installed scripts' shebang is that interpreter, exactly as with a ROS binary install and /usr/bin/python3.
"""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')
# What a user's checkout would not contain: git-ignored outputs, caches and the venv.
NOT_SOURCES = shutil.ignore_patterns('.git', '.venv', 'build', 'install', 'log', 'results', 'runs', '__pycache__',
                                     '.pytest_cache', '.hypothesis', '.helpers', '*.egg-info')
TIMEOUT_S = 120


def _console_script_names() -> list[str]:
    tree = ast.parse((ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    return [ast.literal_eval(e).split('=')[0].strip() for e in value.elts]
    raise AssertionError('no console_scripts in setup.py')


def _colcon() -> Path:
    colcon = Path(sys.executable).parent / 'colcon'
    if not colcon.exists():
        message = f'colcon is not installed next to {sys.executable} (pip install -r requirements-dev.txt)'
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return colcon


def _env(tmp: Path) -> dict[str, str]:
    # Whole os.environ: the ROS wheels' bootstrapper needs its LD_LIBRARY_PATH and guard variable together.
    env = dict(os.environ, COLCON_HOME=str(tmp / 'colcon_home'), PYTHONDONTWRITEBYTECODE='1')
    env.setdefault('AMENT_PREFIX_PATH', sys.prefix)
    return env


def _in_sourced_workspace(ws: Path, command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run command after `. install/setup.bash`, as the README tells a user; cwd outside the sources."""
    script = '. "$0/install/setup.bash" && exec "$@"'
    return subprocess.run(['bash', '-c', script, str(ws), *command], cwd=ws.parent, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.fixture(scope='module', params=['plain', 'symlink-install'])
def workspace(request, tmp_path_factory) -> Path:
    colcon = _colcon()
    tmp = tmp_path_factory.mktemp(f'colcon-{request.param}')
    ws = tmp / 'ws'
    shutil.copytree(ROOT, ws / 'src' / 'coinfer', ignore=NOT_SOURCES)
    env = _env(tmp)
    extra = ['--symlink-install'] if request.param == 'symlink-install' else []
    built = subprocess.run([str(colcon), 'build', *extra], cwd=ws, env=env, capture_output=True, text=True,
                           timeout=TIMEOUT_S)
    assert built.returncode == 0, built.stdout + built.stderr
    assert 'Finished <<< coinfer' in built.stdout, built.stdout
    # colcon-ros would add a missing index marker / package.xml itself, with this warning; setup.py must do it.
    assert "doesn't explicitly install" not in built.stdout + built.stderr, built.stderr
    # Only colcon-ros's ament_python task writes this hook (it puts the prefix on AMENT_PREFIX_PATH).
    assert (ws / 'install' / 'coinfer' / 'share' / 'coinfer' / 'hook' / 'ament_prefix_path.dsv').is_file()
    return ws


def test_every_console_script_is_in_lib_coinfer_for_ros2_run(workspace):
    lib = workspace / 'install' / 'coinfer' / 'lib' / 'coinfer'
    for name in _console_script_names():
        script = lib / name
        assert script.is_file() and os.access(script, os.X_OK), script
        shebang = script.read_text().splitlines()[0]
        assert shebang.startswith('#!')
        assert Path(shebang[2:].strip()).resolve() == Path(sys.executable).resolve(), shebang


def test_share_holds_package_xml_launch_and_config(workspace):
    share = workspace / 'install' / 'coinfer' / 'share' / 'coinfer'
    assert (share / 'package.xml').read_bytes() == (ROOT / 'package.xml').read_bytes()
    assert (share / 'launch').is_dir() and (share / 'config').is_dir()
    for pattern, folder in (('*.launch.py', 'launch'), ('*.yaml', 'config')):
        for source in (ROOT / folder).glob(pattern):
            assert (share / folder / source.name).read_bytes() == source.read_bytes(), source.name


def test_ament_index_finds_the_installed_package(workspace):
    marker = workspace / 'install' / 'coinfer' / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'coinfer'
    assert marker.is_file()
    # What `ros2 run coinfer device_node` resolves: the package prefix, then lib/coinfer/device_node.
    code = ('import os, coinfer_device\n'
            'from ament_index_python.packages import get_package_prefix\n'
            'prefix = get_package_prefix("coinfer")\n'
            'print(prefix)\n'
            'print(os.path.isfile(os.path.join(prefix, "lib", "coinfer", "device_node")))\n'
            'print(coinfer_device.__file__)\n')
    proc = _in_sourced_workspace(workspace, [sys.executable, '-c', code], _env(workspace.parent))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix, has_node, module_file = proc.stdout.split()
    assert Path(prefix) == workspace / 'install' / 'coinfer'
    assert has_node == 'True'
    # The sourced workspace, not the editable checkout, provides the code.
    assert Path(module_file).is_relative_to(workspace), module_file


@pytest.mark.parametrize('script', ['coinfer-evaluate-model', 'coinfer-train-model'])
def test_installed_script_runs(workspace, script):
    path = workspace / 'install' / 'coinfer' / 'lib' / 'coinfer' / script
    proc = _in_sourced_workspace(workspace, [str(path), '--help'], _env(workspace.parent))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f'usage: {script}'), proc.stdout
