# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The shipped SROS2 policy grants each node exactly the topics and services it really has on the ROS graph."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rclpy.node import NodeNameNonExistentError

from coinfer_edge.demo.harness import Graph, config_file, ros_env
from graph_support import Probe

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / 'config' / 'sros2' / 'coinfer_policy.xml'
XI_INCLUDE = '{http://www.w3.org/2001/XInclude}include'
NAMESPACE = '/robot1'
# (enclave, node name) of every node the shipped launch files start
LAUNCHED = {('/coinfer/robot', 'camera_node'), ('/coinfer/robot', 'device_node'),
            ('/coinfer/robot', 'link_monitor'), ('/coinfer/robot', 'cpu_monitor'),
            ('/coinfer/workstation', 'edge_node'), ('/coinfer/workstation', 'policy_node'),
            ('/coinfer/workstation', 'edge_cpu_monitor')}


def expand_includes(element: ET.Element, base: Path) -> None:
    """Replace each ``xi:include`` (``xpointer(/profile/*)``) by the children of the included file's root."""
    for i, child in enumerate(list(element)):
        if child.tag == XI_INCLUDE:
            included = ET.parse(base / child.get('href')).getroot()
            element.remove(child)
            for j, grandchild in enumerate(included):
                element.insert(i + j, grandchild)
        else:
            expand_includes(child, base)


def qualify(name: str, namespace: str, node: str) -> str:
    """Return the fully qualified form of a policy topic or service name."""
    if name.startswith('~/'):
        return f'{namespace}/{node}/{name[2:]}'
    return name if name.startswith('/') else f'{namespace}/{name}'


def load_policy(path: Path = POLICY) -> dict[tuple[str, str], dict[str, set[str]]]:
    """Return ``{(enclave, node): {'publish' | 'subscribe' | 'reply' | 'request': fully qualified names}}``."""
    root = ET.parse(path).getroot()
    expand_includes(root, path.parent)
    grants: dict[tuple[str, str], dict[str, set[str]]] = {}
    for enclave in root.iter('enclave'):
        for profiles in enclave.iter('profiles'):
            namespace = profiles.get('ns').rstrip('/')
            for profile in profiles.iter('profile'):
                node = profile.get('node')
                kinds = grants.setdefault((enclave.get('path'), node), {})
                for group in list(profile.iter('topics')) + list(profile.iter('services')):
                    for kind, value in group.attrib.items():
                        assert value == 'ALLOW', f'{node}: only ALLOW rules are used, got {kind}={value}'
                        kinds.setdefault(kind, set()).update(
                            qualify(item.text.strip(), namespace, node) for item in group)
    return grants


def test_the_policy_is_parsed_with_its_include():
    grants = load_policy()
    assert LAUNCHED <= set(grants)
    device = grants[('/coinfer/robot', 'device_node')]
    assert '/robot1/coinfer/features' in device['publish'] and '/rosout' in device['publish']
    assert '/robot1/device_node/set_parameters' in device['reply']
    assert 'request' not in device, 'nodes answer their services but call none'
    assert [k for k, g in grants.items() if '/robot1/coinfer/decision' in g.get('publish', ())] == \
        [('/coinfer/workstation', 'policy_node')]


@pytest.fixture(scope='module')
def graph(tmp_path_factory, ros_domain_id):
    """Every node of the shipped launch files, in one namespace, as the launch files name them."""
    g = Graph(ros_env(ros_domain_id, os.environ['ROS_LOG_DIR']), tmp_path_factory.mktemp('sros2-graph-logs'))
    ns = NAMESPACE.lstrip('/')
    g.add('camera', 'camera_node', namespace=ns, params_files=[config_file('camera.yaml')])
    g.add('device', 'device_node', namespace=ns, params_files=[config_file('device.yaml')])
    g.add('cpu_monitor', 'cpu_monitor', namespace=ns, params_files=[config_file('device.yaml')])
    g.add('link_monitor', 'link_monitor', namespace=ns, params_files=[config_file('link_monitor.yaml')])
    g.add('edge', 'edge_node', namespace=ns, params_files=[config_file('edge.yaml')],
          params={'annotated.enabled': True})
    g.add('edge_cpu_monitor', 'cpu_monitor', name='edge_cpu_monitor', namespace=ns,
          params_files=[config_file('edge.yaml')])
    g.add('policy', 'policy_node', namespace=ns, params_files=[config_file('policy.yaml')])
    try:
        g.start()
        yield g
    finally:
        g.stop()


def _graph_entities(probe: Probe, node: str) -> dict[str, set[str]]:
    n = probe.node
    return {'publish': {t for t, _ in n.get_publisher_names_and_types_by_node(node, NAMESPACE)},
            'subscribe': {t for t, _ in n.get_subscriber_names_and_types_by_node(node, NAMESPACE)},
            'reply': {s for s, _ in n.get_service_names_and_types_by_node(node, NAMESPACE)},
            'request': {s for s, _ in n.get_client_names_and_types_by_node(node, NAMESPACE)}}


def test_every_node_is_granted_exactly_what_it_uses(graph):
    grants = load_policy()
    probe = Probe('sros2_probe')
    try:
        deadline = time.monotonic() + 20.0
        while True:  # discovery of every entity of seven processes takes a moment
            problems = []
            for enclave, node in sorted(LAUNCHED):
                try:
                    actual = _graph_entities(probe, node)
                except NodeNameNonExistentError:
                    problems.append(f'{node} not discovered yet')
                    continue
                granted = grants[(enclave, node)]
                for kind in ('publish', 'subscribe', 'reply', 'request'):
                    if actual[kind] != granted.get(kind, set()):
                        problems.append(f'{node} {kind}: ungranted {sorted(actual[kind] - granted.get(kind, set()))}, '
                                        f'granted but unused {sorted(granted.get(kind, set()) - actual[kind])}')
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not problems, '\n'.join(problems)
    finally:
        probe.close()
