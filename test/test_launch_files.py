# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Launch files and parameter files, checked without launch_ros (not installable here).

The launch files are parsed with ``ast``: every executable must be a console script, every
declared argument used and every used one declared, every included file and argument must
exist, every params file must be in config/ with a section for the node's name.  Then each
node is really started with its params file and the parameters it reports (through the ROS
parameter services) must equal the file: so the file loads into the node's declared parameters,
and the file lists every parameter the node declares, each with a comment.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from rclpy.parameter import parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient

from coinfer_edge.demo.harness import Graph, ros_env
from graph_support import Probe, model_checkpoint, profile_file, wait_future

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))
IMPLICIT_PARAMETERS = {'use_sim_time', 'start_type_description_service'}


@dataclass
class NodeDecl:
    """A launch_ros Node(...) of a launch file."""

    executable: str
    name: str
    params_files: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)


@dataclass
class LaunchInfo:
    """What a launch file declares and uses."""

    declared: dict[str, ast.expr] = field(default_factory=dict)
    configurations: dict[str, str] = field(default_factory=dict)  # variable -> argument name
    used_variables: set[str] = field(default_factory=set)
    nodes: list[NodeDecl] = field(default_factory=list)
    includes: list[tuple[str, list[str]]] = field(default_factory=list)


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, 'attr', None)
    return None


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _share_path(expr: ast.expr) -> str | None:
    """Return 'config/x.yaml' for PathJoinSubstitution([share, 'config', 'x.yaml'])."""
    if _call_name(expr) == 'PathJoinSubstitution' and isinstance(expr.args[0], ast.List):
        parts = [e.value for e in expr.args[0].elts[1:] if isinstance(e, ast.Constant)]
        return '/'.join(parts)
    return None


def parse_launch(path: Path) -> LaunchInfo:
    """Collect arguments, configurations, nodes and includes of a launch file."""
    tree = ast.parse(path.read_text())
    info = LaunchInfo()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _call_name(node.value) == 'LaunchConfiguration':
            info.configurations[node.targets[0].id] = node.value.args[0].value
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            info.used_variables.add(node.id)
        if _call_name(node) == 'DeclareLaunchArgument':
            info.declared[node.args[0].value] = _kw(node, 'default_value')
        elif _call_name(node) == 'Node':
            decl = NodeDecl(_kw(node, 'executable').value, _kw(node, 'name').value)
            for item in _kw(node, 'parameters').elts:
                if isinstance(item, ast.Name):
                    decl.params_files.append(item.id)
                elif isinstance(item, ast.Dict):
                    decl.overrides += [k.value for k in item.keys]
            info.nodes.append(decl)
        elif _call_name(node) == 'IncludeLaunchDescription':
            source = node.args[0].args[0]
            args = _kw(node, 'launch_arguments').func.value  # {...}.items()
            info.includes.append((_share_path(source), [k.value for k in args.keys]))
    return info


def _console_scripts() -> set[str]:
    tree = ast.parse((ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == 'console_scripts':
                    return {ast.literal_eval(e).split('=')[0].strip() for e in v.elts}
    raise AssertionError('no console_scripts in setup.py')


def _params_file(info: LaunchInfo, variable: str) -> Path:
    default = info.declared[info.configurations[variable]]
    rel = _share_path(default)
    assert rel and rel.startswith('config/'), f'{variable}: default must be the package share config/ file'
    return ROOT / rel


def _section(path: Path, node_name: str) -> dict:
    doc = yaml.safe_load(path.read_text())
    key = f'/**/{node_name}'
    assert key in doc, f'{path.name} has no section {key!r} for node {node_name}'
    return doc[key]['ros__parameters']


def test_there_are_three_launch_files():
    assert {p.name for p in LAUNCH_FILES} == {'robot.launch.py', 'workstation.launch.py', 'coinfer.launch.py'}


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_arguments_are_declared_and_used(path):
    info = parse_launch(path)
    used = {info.configurations[v] for v in info.configurations if v in info.used_variables}
    assert set(info.declared) == set(info.configurations.values()), 'LaunchConfiguration without declaration'
    assert used == set(info.declared), f'declared but unused: {set(info.declared) - used}'


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_nodes_use_console_scripts_and_existing_params_files(path):
    info = parse_launch(path)
    scripts = _console_scripts()
    for node in info.nodes:
        assert node.executable in scripts, f'{node.executable} is not a console script in setup.py'
        assert node.params_files, f'{node.name} gets no params file'
        for variable in node.params_files:
            params = _section(_params_file(info, variable), node.name)
            for key in node.overrides:
                assert key in params, f'{node.name}: override {key!r} is not a parameter in its params file'


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_includes_exist_and_get_declared_arguments(path):
    for rel, keys in parse_launch(path).includes:
        assert rel and rel.startswith('launch/') and (ROOT / rel).is_file(), rel
        declared = parse_launch(ROOT / rel).declared
        assert set(keys) <= set(declared), f'{rel} does not declare {set(keys) - set(declared)}'


def test_every_config_parameter_has_a_comment():
    for path in sorted((ROOT / 'config').glob('*.yaml')):
        if path.name == 'sacd_train.yaml':
            continue  # the policy trainer's settings, not node parameters
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.match(r'^    [\w.]+:', line):
                previous = next(lines[j] for j in range(i - 1, -1, -1) if lines[j].strip())
                assert previous.strip().startswith('#'), f'{path.name}:{i + 1}: {line.strip()} has no comment'


def _launched_nodes() -> dict[tuple[str, str], Path]:
    """Return every distinct (executable, node name) of the launch files with its params file."""
    nodes = {}
    for path in LAUNCH_FILES:
        info = parse_launch(path)
        for node in info.nodes:
            nodes[(node.executable, node.name)] = _params_file(info, node.params_files[0])
    return nodes


# Settings the test machine needs beyond the files: a model/profile that may not be shipped yet,
# and the rule policy when no trained policy is shipped. Everything else comes from the files.
def _environment_overrides(executable: str) -> dict:
    if executable in ('device_node', 'edge_node'):
        return {'model_path': str(model_checkpoint())}
    if executable == 'policy_node':
        from coinfer_edge.core.policy import default_policy_path
        overrides = {'profile_path': str(profile_file())}
        if not default_policy_path().is_file():
            overrides['policy'] = 'rule'
        return overrides
    return {}


def _marked_copy(params_file: Path, node_name: str, folder: Path) -> tuple[Path, dict]:
    """Copy a params file with one value of the node's section changed (a QoS depth + 1).

    The shipped values equal the defaults, so only a changed value proves that the node
    really took its section from the file.  Returns the copy and the values to expect.
    """
    doc = yaml.safe_load(params_file.read_text())
    section = doc[f'/**/{node_name}']['ros__parameters']
    key = next(k for k in section if k.endswith('.depth'))
    section[key] += 1
    copy = folder / f'{node_name}.{params_file.name}'
    copy.write_text(yaml.safe_dump(doc))
    return copy, dict(section)


def test_each_launched_node_starts_with_its_params_file_and_reports_its_values(tmp_path, ros_domain_id):
    launched = _launched_nodes()
    assert len(launched) == 7
    graph = Graph(ros_env(ros_domain_id, os.environ['ROS_LOG_DIR']), tmp_path)
    expected = {}
    for (executable, name), params_file in launched.items():
        copy, expected[name] = _marked_copy(params_file, name, tmp_path)
        expected[name].update(_environment_overrides(executable))
        graph.add(name, executable, name=name, namespace='/launchcheck', params_files=[copy],
                  params=_environment_overrides(executable))
    probe = None
    try:
        graph.start(timeout=120.0)
        probe = Probe('launch_probe')
        for (executable, name), params_file in launched.items():
            client = AsyncParameterClient(probe.node, f'/launchcheck/{name}')
            assert client.wait_for_services(20.0), f'{name}: no parameter services'
            declared = set(wait_future(client.list_parameters([], 10)).result.names) - IMPLICIT_PARAMETERS
            assert declared == set(expected[name]), (
                f'{params_file.name}/{name}: missing from the file {declared - set(expected[name])}, '
                f'unknown to the node {set(expected[name]) - declared}')
            names = sorted(declared)
            values = [parameter_value_to_python(v) for v in wait_future(client.get_parameters(names)).values]
            for key, value in zip(names, values):
                value = list(value) if isinstance(value, (list, tuple)) or hasattr(value, 'tolist') else value
                assert value == expected[name][key], f'{name}.{key}: node has {value!r}, file {expected[name][key]!r}'
    finally:
        if probe is not None:
            probe.close()
        graph.stop()
