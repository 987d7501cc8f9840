# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The tree's rules, checked on every module: pure core and tools, one-way package dependencies."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ('coinfer_device', 'coinfer_edge')
# Folders whose modules must run without ROS: the pure core and the offline tools.
PURE_FOLDERS = ('coinfer_device/core', 'coinfer_device/tools', 'coinfer_edge/core', 'coinfer_edge/tools',
                'coinfer_edge/testbed')
ROS_MODULES = ('rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs', 'rcl_interfaces', 'builtin_interfaces')


def module_name(path: Path) -> str:
    """Return the dotted module name of a source file under ROOT."""
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def package_modules(*folders: str) -> list[str]:
    """Return every module under ``folders`` (package ``__init__`` files excluded)."""
    return sorted(module_name(p) for f in folders for p in (ROOT / f).rglob('*.py') if p.name != '__init__.py')


def imported_names(path: Path) -> list[tuple[int, str]]:
    """Return ``(line, dotted name)`` of every import in a file, and every string that names a module.

    Strings count because :func:`importlib.import_module` takes them; a string naming a
    ``coinfer_*`` module is a dependency as real as an import statement.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module)] + [(node.lineno, f'{node.module}.{a.name}') for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(PACKAGES):
            found.append((node.lineno, node.value))
    return found


def test_every_core_and_tool_module_is_listed():
    modules = package_modules(*PURE_FOLDERS)
    # the glob finds the tree, not an empty or renamed folder
    assert {'coinfer_device.core.codec', 'coinfer_device.tools.profiler', 'coinfer_edge.core.sac',
            'coinfer_edge.tools.train_policy'} <= set(modules), modules


def test_device_side_never_depends_on_the_edge_side():
    offenders = [f'{p.relative_to(ROOT)}:{line}: {name}'
                 for p in (ROOT / 'coinfer_device').rglob('*.py')
                 for line, name in imported_names(p) if name.split('.')[0] == 'coinfer_edge']
    assert not offenders, 'coinfer_device must not depend on coinfer_edge:\n' + '\n'.join(offenders)


def test_the_dependency_check_sees_imports_and_module_strings(tmp_path):
    sample = tmp_path / 'sample.py'
    sample.write_text('import coinfer_edge.core.env\nfrom coinfer_edge import demo\n'
                      "importlib.import_module('coinfer_edge.nodes.edge_node')\n")
    names = [n for _, n in imported_names(sample)]
    assert {'coinfer_edge.core.env', 'coinfer_edge', 'coinfer_edge.demo', 'coinfer_edge.nodes.edge_node'} <= set(names)


def test_core_and_tools_import_no_ros_statically():
    offenders = [f'{p.relative_to(ROOT)}:{line}: {name}'
                 for f in PURE_FOLDERS for p in (ROOT / f).rglob('*.py')
                 for line, name in imported_names(p) if name.split('.')[0] in ROS_MODULES
                 or '.ros.' in f'.{name}.' or '.nodes.' in f'.{name}.' or '.demo.' in f'.{name}.']
    assert not offenders, 'the pure core and the tools must not import ROS, ros/, nodes/ or demo/:\n' + \
        '\n'.join(offenders)


@pytest.mark.parametrize('folder', PURE_FOLDERS)
def test_core_and_tools_import_no_ros_at_run_time(folder):
    """Import every module of the folder in a fresh interpreter: no ROS module may be loaded."""
    modules = package_modules(folder)
    code = (f'import sys\nfor mod in {modules!r}:\n    __import__(mod)\n'
            f'bad = sorted(m for m in sys.modules if m.split(".")[0] in {ROS_MODULES!r})\n'
            'assert not bad, bad')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
