# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Real frames while a second participant floods ``coinfer/features`` with oversized messages.

Camera (15 Hz), device (every frame sent to the edge, e2/p4/b8) and edge run as processes; a
background node publishes valid 1-bit feature messages claiming 2**26 values (8 MiB each,
rejected by the edge before decoding) for ``--seconds``, as fast as ``publish()`` returns or at
``--rate``.  Printed per phase (quiet, flood, quiet): results, how many the edge answered, how
many timed out and were re-run on the device, and the edge round trip.  Loopback only, private
domain (``--domain``, default 38).

Usage: ``python bench/bench_feature_flood.py [--depth 2] [--rate 0] [--seconds 10]``
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import zlib
from pathlib import Path

from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from coinfer_device.core import codec
from coinfer_device.core import records as rec
from coinfer_device.core.action import Action
from coinfer_device.ros import messages as m
from coinfer_edge.demo.harness import Graph, adopt_env, config_file, ros_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'test'))
from graph_support import Probe  # noqa: E402 - the tests' probe node records the results


def huge_message() -> bytes:
    """Return a valid 1-bit message claiming 2**26 values (8 MiB on the wire, 256 MiB decoded)."""
    shape = (1, 64, 1024, 1024)
    payload = bytes(codec.payload_size(math.prod(shape), 1))
    head = codec._HEADER_V1[4].pack(codec.MAGIC, codec.CODEC_VERSION, 1, 2, 4, 4, 0, codec.header_size(4),
                                    len(payload), 1, 0, 0.0, 0.0, 0.0, *shape)
    return b''.join((head, codec._CRC.pack(zlib.crc32(payload, zlib.crc32(head))), payload))


def phase(probe: Probe, results, pub, msg, seconds: float, flood: bool, rate: float) -> str:
    """Run one phase; return its summary line."""
    start, sent, t0 = len(results), 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        if flood:
            pub.publish(msg)
            sent += 1
            if rate:
                time.sleep(1.0 / rate)
        else:
            time.sleep(0.05)
    elapsed = time.monotonic() - t0
    time.sleep(1.5)  # the last frames' timeouts resolve
    items = [r.value for r in results.snapshot(start)]
    rt = sorted(v.round_trip_ms for v in items if v.source == rec.SOURCE_EDGE)
    pct = (lambda q: rt[min(int(len(rt) * q), len(rt) - 1)] if rt else float('nan'))
    return (f'{"flood" if flood else "quiet"} {elapsed:.1f} s: sent {sent} ({sent / elapsed:.1f}/s, '
            f'{sent * len(msg.data) / elapsed / 2 ** 20:.0f} MiB/s); results {len(items)}, edge '
            f'{sum(v.source == rec.SOURCE_EDGE for v in items)}, timeouts '
            f'{sum(v.fallback == rec.FALLBACK_EDGE_TIMEOUT for v in items)}, edge down '
            f'{sum(v.fallback == rec.FALLBACK_EDGE_DOWN for v in items)}; round trip median {pct(0.5):.1f}, '
            f'p95 {pct(0.95):.1f} ms')


def main() -> None:
    """Run the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--depth', type=int, default=2, help="edge's features queue depth (qos.features.depth)")
    p.add_argument('--rate', type=float, default=0.0, help='flood messages per second (0 = as fast as possible)')
    p.add_argument('--seconds', type=float, default=10.0)
    p.add_argument('--domain', type=int, default=38)
    args = p.parse_args()
    env = ros_env(args.domain, tempfile.mkdtemp(prefix='bench-flood-'))
    adopt_env(env)
    g = Graph(env, tempfile.mkdtemp(prefix='bench-flood-logs-'))
    g.add('camera', 'camera_node', params_files=[config_file('camera.yaml')], params={'rate_hz': 15.0})
    g.add('device', 'device_node', params_files=[config_file('device.yaml')])
    g.add('edge', 'edge_node', params_files=[config_file('edge.yaml')], params={'qos.features.depth': args.depth})
    with g:
        g.start()
        probe = Probe('flood_probe')
        try:
            results = probe.results()
            probe.set_decision(Action(2, 4, 8))
            time.sleep(5.0)
            pub = probe.node.create_publisher(CompressedImage, 'coinfer/features',
                                              QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
            probe.wait_for_subscribers(pub)
            msg = m.make_features_msg(huge_message(), Header(frame_id='flood'), codec.FORMAT)
            for flood in (False, True, False):
                print(phase(probe, results, pub, msg, args.seconds, flood, args.rate), flush=True)
            edge = probe.diagnostic('edge_node: features')
            print('edge:', {k: v for k, v in edge.items() if k.endswith(('answered', 'oversized'))}, flush=True)
        finally:
            probe.close()


if __name__ == '__main__':
    main()
