# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Small link probes for the testbed (``ping`` is not installed here): UDP echo RTT and TCP bulk transfer time.

::

    python -m coinfer_edge.testbed.probe serve --port 9000          # UDP echo + TCP sink; prints "probe ready"
    python -m coinfer_edge.testbed.probe ping HOST --port 9000 --count 20
    python -m coinfer_edge.testbed.probe send HOST --port 9000 --bytes 625000

``ping`` and ``send`` print one JSON line.  The transfer time of ``send`` runs from ``connect()``
to the sink's acknowledgement of the last byte, so it includes one handshake and one reply
(a few RTTs) on top of ``bytes / rate``.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import sys
import threading
import time
from typing import Sequence

READY = 'probe ready'


def udp_ping(host: str, port: int, count: int = 10, interval_s: float = 0.02,
             timeout_s: float = 1.0) -> dict[str, object]:
    """Send ``count`` numbered UDP probes one after another; return RTTs (ms) of the answered ones and the losses."""
    rtts, lost, errors = [], 0, []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout_s)
        for seq in range(count):
            t0 = time.monotonic()
            try:
                s.sendto(struct.pack('!Id', seq, t0), (host, port))
                while True:
                    data, _ = s.recvfrom(2048)
                    if len(data) >= 4 and struct.unpack_from('!I', data)[0] == seq:
                        rtts.append((time.monotonic() - t0) * 1000.0)
                        break
            except socket.timeout:
                lost += 1
            except OSError as exc:  # e.g. ENETUNREACH while the link is down
                lost += 1
                errors.append(exc.strerror or str(exc))
                time.sleep(timeout_s)
            time.sleep(interval_s)
    return {'rtts_ms': rtts, 'lost': lost, 'errors': sorted(set(errors)),
            'median_ms': statistics.median(rtts) if rtts else None}


def tcp_send(host: str, port: int, nbytes: int, timeout_s: float = 30.0) -> dict[str, object]:
    """Send ``nbytes`` over TCP to the sink; return the seconds until the sink acknowledged the last byte."""
    chunk = b'\0' * 65536
    t0 = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        left = nbytes
        while left:
            left -= s.send(chunk[:min(left, len(chunk))])
        s.shutdown(socket.SHUT_WR)
        ack = _recv_exact(s, 8)
    seconds = time.monotonic() - t0
    received = struct.unpack('!Q', ack)[0]
    return {'bytes': nbytes, 'received': received, 'seconds': seconds,
            'mbps': nbytes * 8 / seconds / 1e6 if seconds > 0 else None}


def _recv_exact(s: socket.socket, n: int) -> bytes:
    data = b''
    while len(data) < n:
        part = s.recv(n - len(data))
        if not part:
            raise ConnectionError('connection closed before the acknowledgement')
        data += part
    return data


def serve(port: int, host: str = '0.0.0.0') -> None:
    """Run a UDP echo and a TCP sink (answers the byte count once the sender shuts down) on ``port``; never returns."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((host, port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((host, port))
    tcp.listen(8)

    def sink(conn: socket.socket) -> None:
        with conn:
            total = 0
            while True:
                data = conn.recv(262144)
                if not data:
                    break
                total += len(data)
            conn.sendall(struct.pack('!Q', total))

    def accept() -> None:
        while True:
            conn, _ = tcp.accept()
            threading.Thread(target=sink, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print(f'{READY} port={port}', flush=True)
    while True:
        data, addr = udp.recvfrom(2048)
        udp.sendto(data, addr)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``serve``, ``ping`` or ``send`` (see the module docstring)."""
    p = argparse.ArgumentParser(prog='python -m coinfer_edge.testbed.probe', description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('serve')
    s.add_argument('--port', type=int, default=9000)
    g = sub.add_parser('ping')
    g.add_argument('host')
    g.add_argument('--port', type=int, default=9000)
    g.add_argument('--count', type=int, default=10)
    g.add_argument('--interval', type=float, default=0.02)
    g.add_argument('--timeout', type=float, default=1.0)
    t = sub.add_parser('send')
    t.add_argument('host')
    t.add_argument('--port', type=int, default=9000)
    t.add_argument('--bytes', type=int, required=True)
    t.add_argument('--timeout', type=float, default=30.0)
    args = p.parse_args(argv)
    if args.cmd == 'serve':
        serve(args.port)
    elif args.cmd == 'ping':
        print(json.dumps(udp_ping(args.host, args.port, args.count, args.interval, args.timeout)))
    else:
        print(json.dumps(tcp_send(args.host, args.port, args.bytes, args.timeout)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
