# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
r"""Read the file a recorder was writing when it died (``NAME/.writing/NAME_i/``), up to its last complete unit.

:class:`coinfer_device.core.bags.BagWriter` flushes the open file every second in complete
units: an MCAP *chunk* (schemas, channels and messages, uncompressed) or an sqlite3 transaction.
After a crash the MCAP file lacks its summary and footer, and a partly written record may end it;
rosbags refuses such a file, so this module scans its records itself, keeps every complete chunk
and ignores the incomplete tail.  An sqlite3 file is read on a copy (with its rollback journal, so
the input is never changed), which drops the uncommitted transaction.  Records that are complete
but do not parse are corruption, reported as :class:`~coinfer_device.core.bags.BagError`.

MCAP layout (https://mcap.dev/spec): magic ``\x89MCAP0\r\n``, then records ``opcode u8, length u64,
content``; a chunk (0x06) holds start/end time u64, uncompressed size u64, CRC u32, compression
string, records byte array; inside it schema (0x03), channel (0x04) and message (0x05) records.
"""

from __future__ import annotations

import mmap
import shutil
import sqlite3
import struct
import tempfile
from pathlib import Path
from typing import Any, Callable

from coinfer_device.core.bags import BagError, BagInfo, BagMessage, describe

MAGIC = b'\x89MCAP0\r\n'
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x03, 0x04, 0x05, 0x06
_U16, _U32, _U64 = struct.Struct('<H'), struct.Struct('<I'), struct.Struct('<Q')


class _Cursor:
    """Bounds-checked little-endian reads from a buffer; a short read raises :class:`EOFError`."""

    def __init__(self, buf: Any, start: int = 0, end: int | None = None) -> None:
        self.buf, self.pos, self.end = buf, start, len(buf) if end is None else end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise EOFError
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def u16(self) -> int:
        return _U16.unpack(self.take(2))[0]

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def u64(self) -> int:
        return _U64.unpack(self.take(8))[0]

    def string(self) -> str:
        return self.take(self.u32()).decode()


def _records(buf: Any, start: int, end: int):
    """Yield ``(opcode, content start, content end)``; stop at a record that does not fit (truncation)."""
    pos = start
    while pos < end:
        if pos + 9 > end:
            return
        op, length = buf[pos], _U64.unpack(buf[pos + 1:pos + 9])[0]
        if length > end - pos - 9:
            return
        yield op, pos + 9, pos + 9 + length
        pos += 9 + length


def _chunk_records(buf: Any, start: int, end: int) -> bytes:
    c = _Cursor(buf, start, end)
    c.take(16)  # message start and end time
    size = c.u64()
    c.u32()  # CRC (rosbags writes 0: none)
    compression = c.string()
    data = c.take(c.u64())
    if compression:
        from rosbags.rosbag2.storage_mcap import decompress
        return decompress(data, compression, size, 0)
    if len(data) != size:
        raise ValueError(f'chunk holds {len(data)} bytes, its header says {size}')
    return data


def _scan_mcap(path: Path, wanted: Callable[[str], bool]) -> tuple[dict[str, tuple[str, int]], list[BagMessage], int]:
    """Return topics with counts, wanted messages and the number of bytes ignored at the end."""
    with open(path, 'rb') as f:
        size = f.seek(0, 2)
        if size < len(MAGIC):
            raise BagError(f'{path}: {size} bytes, not even an MCAP header (the recorder died at once?)')
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    with buf:
        if buf[:len(MAGIC)] != MAGIC:
            raise BagError(f'{path}: not an MCAP file (bad magic)')
        schemas: dict[int, str] = {}
        channels: dict[int, tuple[str, str]] = {}
        counts: dict[str, int] = {}
        messages: list[BagMessage] = []
        done = len(MAGIC)
        for op, start, end in _records(buf, len(MAGIC), len(buf)):
            if op == OP_CHUNK:
                inner = _chunk_records(buf, start, end)
                for iop, s, e in _records(inner, 0, len(inner)):
                    c = _Cursor(inner, s, e)
                    if iop == OP_SCHEMA:
                        key = c.u16()
                        schemas[key] = c.string()
                    elif iop == OP_CHANNEL:
                        key, schema = c.u16(), c.u16()
                        topic = c.string()
                        if schema not in schemas:
                            raise ValueError(f'channel {topic} names unknown schema {schema}')
                        channels[key] = (topic, schemas[schema])
                    elif iop == OP_MESSAGE:
                        channel = c.u16()
                        c.u32()  # sequence
                        t_ns = c.u64()
                        c.u64()  # publish time
                        if channel not in channels:
                            raise ValueError(f'message of unknown channel {channel}')
                        topic, msgtype = channels[channel]
                        counts[topic] = counts.get(topic, 0) + 1
                        if wanted(topic):
                            messages.append(BagMessage(t_ns, topic, msgtype, bytes(inner[c.pos:e])))
            done = end
        ignored = len(buf) - done
    topics = {topic: (msgtype, counts.get(topic, 0)) for topic, msgtype in channels.values()}
    return topics, messages, ignored


def _scan_sqlite(path: Path, wanted: Callable[[str], bool]) -> tuple[dict[str, tuple[str, int]], list[BagMessage]]:
    with tempfile.TemporaryDirectory(prefix='coinfer-salvage-') as tmp:
        for f in path.parent.glob(path.name + '*'):  # the database and its rollback journal
            shutil.copy2(f, Path(tmp) / f.name)
        conn = sqlite3.connect(Path(tmp) / path.name)
        try:
            topics_rows = conn.execute('SELECT id, name, type FROM topics').fetchall()
            by_id = {int(i): (str(n), str(t)) for i, n, t in topics_rows}
            counts = dict(conn.execute('SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id').fetchall())
            messages = [BagMessage(int(t), by_id[i][0], by_id[i][1], bytes(d)) for i, t, d in
                        conn.execute('SELECT topic_id, timestamp, data FROM messages ORDER BY timestamp')
                        if i in by_id and wanted(by_id[i][0])]
        finally:
            conn.close()
    topics = {n: (t, int(counts.get(i, 0))) for i, (n, t) in by_id.items()}
    return topics, messages


def salvage(folder: Path, wanted: Callable[[str], bool]) -> tuple[BagInfo, list[BagMessage]]:
    """Read the unclosed file in ``folder`` (one ``.mcap`` or ``.db3``); see the module docstring."""
    files = sorted(p for p in folder.iterdir() if p.suffix in ('.mcap', '.db3')) if folder.is_dir() else []
    if len(files) != 1:
        raise BagError(f'{folder}: expected the one file of an unclosed recording, found {[p.name for p in files]}')
    path = files[0]
    note = f'{path.name} was not closed (recorder stopped without closing it): read up to its last flush'
    try:
        if path.suffix == '.mcap':
            topics, messages, ignored = _scan_mcap(path, wanted)
            if ignored:
                note += f', {ignored} bytes after it ignored'
            storage = 'mcap'
        else:
            topics, messages = _scan_sqlite(path, wanted)
            storage = 'sqlite3'
    except BagError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure of a complete unit is corruption
        raise BagError(f'{path}: corrupt recording: {describe(exc)}') from None
    return BagInfo(folder, storage, [str(path.relative_to(folder.parent.parent))], topics, False, [note]), messages
