# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The shared ROS-side pieces: file lookup, the light entry points, the background node."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from std_msgs.msg import String

from coinfer_device.core import paths
from coinfer_device.ros.background import BackgroundNode


def test_config_files_come_from_the_source_tree_first():
    assert paths.config_file('device.yaml') == paths.REPO_ROOT / 'config' / 'device.yaml'


def test_an_installed_config_file_is_found_through_ament_prefix_path(tmp_path, monkeypatch):
    config = tmp_path / 'share' / paths.PACKAGE / 'config'
    config.mkdir(parents=True)
    (config / 'only_installed.yaml').write_text('a: 1\n')
    monkeypatch.setenv('AMENT_PREFIX_PATH', f'/nonexistent:{tmp_path}')
    assert paths.config_file('only_installed.yaml') == config / 'only_installed.yaml'


def test_a_missing_config_file_is_named_in_the_error():
    assert paths.find_config_file('no_such_file.yaml') is None
    with pytest.raises(FileNotFoundError, match='no_such_file.yaml'):
        paths.config_file('no_such_file.yaml')


def test_assets_dirs_hold_the_shipped_model_and_profile():
    assert (paths.assets_dir() / 'profile_x86_64.json').is_file()
    assert paths.assets_dir('coinfer_edge').name == 'assets' and paths.assets_dir('coinfer_edge').is_dir()


def test_entry_points_import_nothing_heavy():
    """A Ctrl-C during start-up is quiet only if the entry points load before torch, numpy and rclpy."""
    code = ('import sys, coinfer_device.ros.entry_points, coinfer_edge.nodes.entry_points\n'
            'print(sorted(m for m in sys.modules if m.split(".")[0] in ("rclpy", "torch", "numpy", "yaml")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'


def test_background_nodes_talk_in_private_contexts_and_close_cleanly():
    handler = signal.getsignal(signal.SIGINT)
    got: list[str] = []
    with BackgroundNode('plumbing_listener') as listener, BackgroundNode('plumbing_talker') as talker:
        assert listener.context is not talker.context
        listener.node.create_subscription(String, 'plumbing_check', lambda msg: got.append(msg.data), 10)
        pub = talker.node.create_publisher(String, 'plumbing_check', 10)
        deadline = time.monotonic() + 20.0
        while not got and time.monotonic() < deadline:
            pub.publish(String(data='hello'))
            time.sleep(0.05)
        assert got and got[0] == 'hello'
        assert signal.getsignal(signal.SIGINT) is handler  # the process's Ctrl-C stays its own
    assert not listener.context.ok() and not listener._thread.is_alive()
    listener.close()  # a second close does nothing
