# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""How fast rclpy accepts a ``uint8[]`` field (``CompressedImage.data``) from different Python objects.

For payload sizes of the feature topic, time ``msg.data = obj`` for bytes, bytearray,
array.array, memoryview and a numpy uint8 array (plus a list for small sizes), and
``serialize_message`` of the result, all in one run.  The device node assigns ``bytes``.

Usage: ``python bench/bench_msg_data.py [--repeats N]``
"""

from __future__ import annotations

import argparse
import array
import statistics
import time

import numpy as np
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage

SIZES = (1024, 32 * 1024, 256 * 1024)


def _time_us(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    return statistics.median(samples)


def main() -> None:
    """Print assignment and serialization time per object kind and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=50)
    args = parser.parse_args()
    serialize_message(CompressedImage())  # load the type support once
    print(f'{"bytes":>8} {"object":>12} {"assign us":>10} {"serialize us":>13} {"vs bytes":>9}')
    for size in SIZES:
        payload = np.random.default_rng(0).integers(0, 256, size, np.uint8).tobytes()
        kinds = {'bytes': lambda: payload, 'bytearray': lambda: bytearray(payload),
                 'array.array': lambda: array.array('B', payload), 'memoryview': lambda: memoryview(payload),
                 'numpy': lambda: np.frombuffer(payload, np.uint8)}
        if size <= 32 * 1024:
            kinds['list'] = lambda: list(payload)
        base = None
        for name, make in kinds.items():
            msg = CompressedImage()

            def assign(make=make, msg=msg):
                msg.data = make()
            assign_us = _time_us(assign, args.repeats)
            serialize_us = _time_us(lambda msg=msg: serialize_message(msg), args.repeats)
            base = assign_us if base is None else base
            print(f'{size:>8} {name:>12} {assign_us:>10.1f} {serialize_us:>13.1f} {assign_us / base:>8.0f}x')


if __name__ == '__main__':
    main()
