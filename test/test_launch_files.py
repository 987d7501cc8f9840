# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Launch files and parameter files, checked without launch_ros (not installable here).

The launch files are parsed with ``ast``: every executable must be a console script, every
declared argument used and every used one declared, every included file and argument must
exist, every params file must be in config/ with a section for the node's name; lifecycle
executables are started as ``LifecycleNode``; critical nodes end the launch when they exit and
monitors are respawned (:mod:`coinfer_device.ros.launch_support`, whose bookkeeping is tested
here too).  Then each node is really started with its params file and the parameters it
reports (through the ROS parameter services) must equal the file: so the file loads into the
node's declared parameters, and the file lists every parameter the node declares, each with a
comment.  rclpy's own read-only ``qos_overrides.*`` parameters are the only others.
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

from coinfer_device.ros.conventions import LIFECYCLE_EXECUTABLES
from coinfer_device.ros.launch_support import LaunchEnd
from coinfer_edge.demo.harness import Graph, ros_env
from graph_support import Probe, model_checkpoint, policy_file, profile_file, wait_future

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))
IMPLICIT_PARAMETERS = {'use_sim_time', 'start_type_description_service'}
# Nodes without which no result is ever published: their exit ends the launch. The others are monitors.
CRITICAL = {'camera_node', 'device_node', 'edge_node', 'policy_node'}


@dataclass
class NodeDecl:
    """A launch_ros Node(...) of a launch file."""

    executable: str
    name: str
    params_files: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    action: str = 'Node'
    keywords: dict[str, ast.expr] = field(default_factory=dict)


@dataclass
class LaunchInfo:
    """What a launch file declares and uses."""

    declared: dict[str, ast.expr] = field(default_factory=dict)
    configurations: dict[str, str] = field(default_factory=dict)  # variable -> argument name
    used_variables: set[str] = field(default_factory=set)
    nodes: list[NodeDecl] = field(default_factory=list)
    includes: list[tuple[str, list[str]]] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)  # SetEnvironmentVariable name -> variable or text
    calls: list[str] = field(default_factory=list)  # names of the calls in the LaunchDescription list, in order


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
        elif _call_name(node) in ('Node', 'LifecycleNode'):
            decl = NodeDecl(_kw(node, 'executable').value, _kw(node, 'name').value, action=_call_name(node),
                            keywords={k.arg: k.value for k in node.keywords})
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
        elif _call_name(node) == 'SetEnvironmentVariable':
            value = node.args[1]
            info.environment[node.args[0].value] = value.id if isinstance(value, ast.Name) else ast.literal_eval(value)
        elif _call_name(node) == 'LaunchDescription':
            info.calls = [_call_name(e) for e in node.args[0].elts]
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


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_lifecycle_nodes_are_launched_as_lifecycle_nodes_with_autostart(path):
    info = parse_launch(path)
    for node in info.nodes:
        lifecycle = node.executable in LIFECYCLE_EXECUTABLES
        assert node.action == ('LifecycleNode' if lifecycle else 'Node'), f'{node.name}: {node.action}'
        if lifecycle:  # launch_ros's LifecycleNode needs both
            assert 'namespace' in node.keywords and 'name' in node.keywords
            assert 'autostart' in node.overrides, f'{node.name}: the autostart launch argument must reach the node'


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_critical_nodes_end_the_launch_and_monitors_respawn(path):
    info = parse_launch(path)
    if info.nodes:
        assert 'watch_processes' in info.calls, 'the end-of-launch bookkeeping must be registered'
        assert info.calls.index('watch_processes') < min(
            i for i, c in enumerate(info.calls) if c in ('Node', 'LifecycleNode')), 'register it before the nodes'
    for node in info.nodes:
        on_exit = node.keywords.get('on_exit')
        assert isinstance(on_exit, ast.Name), f'{node.name} has no on_exit'
        if node.name in CRITICAL:
            assert on_exit.id == 'critical_exit' and 'respawn' not in node.keywords, node.name
        else:
            assert on_exit.id == 'monitor_exit', node.name
            assert ast.literal_eval(node.keywords['respawn']) is True, node.name
            assert isinstance(node.keywords.get('respawn_delay'), (ast.Name, ast.Constant)), node.name


def test_the_all_in_one_launch_keeps_discovery_on_this_host_by_default():
    info = parse_launch(ROOT / 'launch' / 'coinfer.launch.py')
    variable = info.environment['ROS_AUTOMATIC_DISCOVERY_RANGE']
    assert ast.literal_eval(info.declared[info.configurations[variable]]) == 'LOCALHOST'


def test_launch_end_names_the_failed_node_last_once_everything_stopped():
    end = LaunchEnd()
    for pid in (11, 12, 13):
        end.started(pid)
    end.stderr('device_node-2', b'[INFO] [1.0] [device_node]: loading\ndevice_node: error: parameter x must be a '
                                b'double\n\n')
    end.stderr('device_node-2', b'[WARN] [2.0] [device_node]: not an error\n')
    reason = end.critical_exit('device_node-2', 12, 2, shutting_down=False)
    assert reason == ('launch stopped: device_node-2 exited with code 2: device_node: error: parameter x must be '
                      'a double')
    assert end.report() is None, 'others still run: their stop lines come first'
    assert end.exited(12) is None and end.exited(11) is None
    assert end.critical_exit('edge_node-5', 13, 0, shutting_down=True) is None, 'stopping: no second reason'
    assert end.exited(13) == reason, 'the reason is the last line'
    assert end.exited(13) is None and end.report() is None, 'reported once'
    killed = LaunchEnd()
    killed.stderr('policy_node-7', b'[INFO] [3.0] [policy_node]: 135 decisions in the last 30 s\n')
    assert killed.critical_exit('policy_node-7', 7, -9, shutting_down=False) == \
        'launch stopped: policy_node-7 exited with code -9', 'a routine log line is no reason'
    quiet = LaunchEnd()
    quiet.started(1)
    assert quiet.critical_exit('camera_node-1', 1, 0, shutting_down=True) is None  # Ctrl-C: no failure
    assert quiet.exited(1) is None


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


# Settings the test machine needs beyond the files: the graph tests run the small shipped model, its profile
# and policy. Everything else comes from the files.
def _environment_overrides(executable: str) -> dict:
    if executable in ('device_node', 'edge_node'):
        return {'model_path': str(model_checkpoint())}
    if executable == 'policy_node':
        return {'profile_path': str(profile_file()), 'policy_path': str(policy_file())}
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
            listed = set(wait_future(client.list_parameters([], 10)).result.names) - IMPLICIT_PARAMETERS
            qos_overrides = sorted(n for n in listed if n.startswith('qos_overrides.'))
            described = wait_future(client.describe_parameters(qos_overrides)).descriptors if qos_overrides else []
            assert all(d.read_only for d in described), f'{name}: qos_overrides.* are read-only (rclpy declares them)'
            declared = listed - set(qos_overrides)
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
