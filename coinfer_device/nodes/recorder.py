# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Recorder node (``coinfer-record``): the coinfer topics of one or more namespaces into a rosbag2 bag.

For machines without the ``ros2`` CLI (the pip install, CI, the demo); on a ROS install
``ros2 bag record`` with ``config/bag_qos_overrides.yaml`` records the same (``--ros2-command``
prints that command).  Every subscription is ``raw``: the serialized bytes go into the bag as they
arrived, stamped with the receipt time.  The topics and their QoS are
:data:`coinfer_device.core.bags.TOPICS`; the bag format is :class:`coinfer_device.core.bags.BagWriter`
(MCAP or sqlite3, split by size or duration, flushed every ``flush_interval_s``).  SIGINT or SIGTERM
closes the bag completely (signals are ignored while it closes); a crash keeps everything up to the
last flush (docs/bags.md).

Command line: ``coinfer-record [--out DIR] [--namespaces NS ...] [--storage mcap|sqlite3] [--features]
[--split-size-mb MB] [--split-duration-s S] [--ros2-command [--qos-file PATH]] [--ros-args ...]``; the
flags set the parameters of the same names (``--out`` = ``output``) and win over ``--ros-args -p``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import yaml
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, JointState
from std_msgs.msg import Float32, Int32MultiArray

from coinfer_device.core import bags
from coinfer_device.ros import params as rp
from coinfer_device.ros.conventions import EXIT_CONFIG_ERROR, STOP_SIGNALS
from coinfer_device.ros.diagnostics import Diagnostics, RateMeter
from coinfer_device.ros.runtime import StartupError, run_node

PROG = 'coinfer-record'
MESSAGE_CLASSES = {'sensor_msgs/msg/JointState': JointState, 'std_msgs/msg/Int32MultiArray': Int32MultiArray,
                   'std_msgs/msg/Float32': Float32, 'sensor_msgs/msg/CompressedImage': CompressedImage}


def _namespaces_check(value: Any) -> str | None:
    if not value:
        return 'must name at least one namespace (/ = the root namespace)'
    names = [bags.normalize_namespace(v) for v in value]
    return f'names a namespace twice: {value}' if len(set(names)) != len(names) else None


PARAMS = [
    rp.Param('output', '', "Bag folder to create (must not exist); '' = bags/coinfer_<date>_<time> in the working "
             'directory'),
    rp.Param('namespaces', ['/'], 'Namespaces whose coinfer topics are recorded (/ = the root namespace, '
             '/robot1 = the robot launched with namespace:=robot1)', kind='str[]', check=_namespaces_check),
    rp.Param('storage', 'mcap', 'Storage plugin of the bag', choices=tuple(bags.STORAGES)),
    rp.Param('record_features', False, 'Also record coinfer/features (the feature payloads: large, see docs/bags.md)'),
    rp.Param('split_size_mb', 0.0, 'Start a new bag file after this many megabytes of messages; 0 = never',
             lo=0.0, hi=1e6, unit='MB'),
    rp.Param('split_duration_s', 0.0, 'Start a new bag file after this many seconds; 0 = never', lo=0.0, hi=1e7,
             unit='s'),
    rp.Param('flush_interval_s', 1.0, 'Push written messages to disk this often (a crash loses at most this much)',
             lo=0.05, hi=3600.0, unit='s'),
]


def default_output(now: float | None = None) -> Path:
    """Return ``bags/coinfer_<date>_<time>`` for the current local time."""
    return Path('bags') / time.strftime('coinfer_%Y%m%d_%H%M%S', time.localtime(now))


def subscription_qos(topic: bags.RecordedTopic) -> QoSProfile:
    """Return the QoS the recorder subscribes ``topic`` with (what the publishers offer, deeper queues)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=topic.depth,
                      reliability=ReliabilityPolicy.RELIABLE if topic.reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=(DurabilityPolicy.TRANSIENT_LOCAL if topic.transient_local
                                  else DurabilityPolicy.VOLATILE))


class Recorder(Node):
    """Write every message of the recorded topics to a bag as it arrives (see module docstring)."""

    def __init__(self) -> None:
        super().__init__('recorder')
        self.p = rp.declare(self, PARAMS)
        self.output = Path(self.p['output']) if self.p['output'] else default_output()
        self.namespaces = [bags.normalize_namespace(ns) for ns in self.p['namespaces']]
        custom = {'coinfer.recorder': PROG, 'coinfer.namespaces': ','.join(self.namespaces),
                  'coinfer.features': str(self.p['record_features']).lower()}
        try:
            self.bag = bags.BagWriter(self.output, self.p['storage'], int(self.p['split_size_mb'] * 1e6),
                                      self.p['split_duration_s'], custom)
        except (bags.BagError, OSError) as exc:
            raise StartupError(f'cannot create bag {self.output}: {exc}') from exc
        self.received = RateMeter()
        self.counts: dict[str, int] = {}
        topics = bags.recorded_topics(self.p['record_features'])
        for ns in self.namespaces:
            for t in topics:
                name = bags.full_topic(ns, t.name)
                self.bag.add_topic(name, t.msgtype)
                self.counts[name] = 0
                self.create_subscription(MESSAGE_CLASSES[t.msgtype], name, lambda data, n=name: self._write(n, data),
                                         subscription_qos(t), raw=True)
        self.create_timer(self.p['flush_interval_s'], self.bag.flush)
        rp.install_set_callback(self, PARAMS)
        Diagnostics(self, self._diagnostics, task='recording')

    def ready_summary(self) -> str:
        """Return the one-line description logged with the ready marker."""
        return (f"recording {len(self.counts)} topics of {', '.join(self.namespaces)} to {self.output} "
                f"({self.p['storage']})")

    def _write(self, topic: str, data: bytes) -> None:
        self.bag.write(topic, self.get_clock().now().nanoseconds, data)
        self.counts[topic] += 1
        self.received.add()

    def close(self) -> None:
        """Complete the bag; a second Ctrl-C cannot interrupt this (it would leave the last file unreadable)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        self.bag.close()
        print(f'{PROG}: wrote {self.output}: {self.bag.messages} messages in {len(self.bag.parts)} file(s)',
              flush=True)

    def _diagnostics(self) -> tuple[bytes, str, dict[str, Any]]:
        silent = [t for t, n in self.counts.items() if n == 0]
        values = {'output': str(self.output), 'messages': self.bag.messages, 'rate_hz': self.received.rate(),
                  'files': self.bag.files, **{t: n for t, n in self.counts.items()}}
        return DiagnosticStatus.OK, f'{len(silent)} topics without messages yet' if silent else 'ok', values


def parse_flags(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Split ``argv`` (without the program name) into the recorder's flags and the ``--ros-args`` tail."""
    head, tail = list(argv), []
    if '--ros-args' in head:
        i = head.index('--ros-args')
        head, tail = head[:i], head[i:]
    p = argparse.ArgumentParser(prog=PROG, description='Record the coinfer topics into a rosbag2 bag (docs/bags.md).')
    p.add_argument('--out', help='bag folder to create (parameter output)')
    p.add_argument('--namespaces', nargs='+', help='namespaces to record (parameter namespaces; default /)')
    p.add_argument('--storage', choices=tuple(bags.STORAGES), help='storage plugin (default mcap)')
    p.add_argument('--features', action='store_true', help='also record coinfer/features (record_features)')
    p.add_argument('--split-size-mb', type=float, help='split after this many MB (split_size_mb)')
    p.add_argument('--split-duration-s', type=float, help='split after this many seconds (split_duration_s)')
    p.add_argument('--ros2-command', action='store_true',
                   help='print the equivalent ros2 bag record command instead of recording')
    p.add_argument('--qos-file', default=None,
                   help='with --ros2-command: write the QoS override file for these namespaces here')
    return p.parse_args(head), tail


def flag_overrides(flags: argparse.Namespace) -> list[str]:
    """Return ``-p name:=value`` arguments for the flags that were given."""
    values = {'output': flags.out, 'namespaces': flags.namespaces, 'storage': flags.storage,
              'record_features': True if flags.features else None, 'split_size_mb': flags.split_size_mb,
              'split_duration_s': flags.split_duration_s}
    out = []
    for name, value in values.items():
        if value is not None:
            text = repr(float(value)) if isinstance(value, float) else json.dumps(value)
            out += ['-p', f'{name}:={text}']
    return out


def print_ros2_command(flags: argparse.Namespace) -> int:
    """Print the ``ros2 bag record`` command (and write its QoS file when asked); return the exit status."""
    namespaces = [bags.normalize_namespace(ns) for ns in flags.namespaces or ['/']]
    qos_file = flags.qos_file
    if qos_file:
        Path(qos_file).write_text(yaml.safe_dump(bags.qos_overrides(namespaces, flags.features), sort_keys=False))
    elif namespaces != ['/']:
        print(f'{PROG}: error: --ros2-command with namespaces needs --qos-file PATH (the shipped '
              'config/bag_qos_overrides.yaml covers the root namespace only)', file=sys.stderr)
        return EXIT_CONFIG_ERROR
    command = bags.ros2_record_command(flags.out or str(default_output()), namespaces, flags.storage or 'mcap',
                                       flags.features, qos_file or '$(ros2 pkg prefix coinfer)/share/coinfer/config/'
                                       'bag_qos_overrides.yaml')
    splits = (['--max-bag-size', str(int(flags.split_size_mb * 1e6))] if flags.split_size_mb else []) + \
        (['--max-bag-duration', str(int(flags.split_duration_s))] if flags.split_duration_s else [])
    print(' '.join(command[:3] + splits + command[3:]))
    return 0


def main(args: list[str] | None = None) -> int:
    """Console script ``coinfer-record``."""
    argv = list(sys.argv if args is None else args)
    flags, ros_tail = parse_flags(argv[1:])
    if flags.ros2_command:
        return print_ros2_command(flags)
    overrides = flag_overrides(flags)
    ros = (ros_tail or ['--ros-args']) + overrides
    return run_node(Recorder, [argv[0] if argv else PROG] + (ros if len(ros) > 1 else []))


if __name__ == '__main__':
    sys.exit(main())
