# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Feature codec: the bytes that carry a feature tensor from device to edge.

A message is a self-describing, versioned, little-endian header followed by a
densely bit-packed payload (see ``docs/wire_format.md`` for the byte layout):

* ``bits`` 1..8: uniform affine quantization per tensor,
  ``q = round((x - zero_point) / scale)``, ``x_hat = zero_point + q * scale`` with
  ``zero_point = min(x)`` and ``scale >= (max(x) - min(x)) / (2**bits - 1)``;
  codes are packed LSB-first, ``ceil(n * bits / 8)`` payload bytes; every
  element is reconstructed within ``scale / 2 + 2**-19 * max|x| + 2**-126``
  (the last two terms are float32 rounding slack, derived in the doc);
* ``bits`` 16 / 32: float16 / float32 pass-through.

The last four header bytes are a CRC32 (zlib) over the rest of the header and
the payload, so any corrupted byte is detected.  Every malformed input makes
:func:`decode_features` raise :class:`CodecError`, and nothing is allocated
for a payload before its declared size has been checked against the data.

Pure numpy/torch: no ROS import, so device, edge and offline tools share it.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch

from coinfer_device.core.action import QUANT_BITS, WIRE_BITS as VALID_BITS

__all__ = ['CODEC_VERSION', 'FORMAT', 'FORMAT_PREFIX', 'MAGIC', 'MAX_ELEMENTS', 'MAX_RANK', 'VALID_BITS',
           'CodecError', 'FeatureHeader', 'decode_features', 'encode_features', 'encoded_size', 'header_size',
           'parse_format', 'payload_size', 'peek_header']

CODEC_VERSION = 1
FORMAT_PREFIX = 'coinfer/features'
FORMAT = f'{FORMAT_PREFIX};v={CODEC_VERSION}'
MAGIC = b'COIF'
MAX_RANK = 8
MAX_ELEMENTS = 2 ** 26
MAX_UINT8 = 2 ** 8 - 1
MAX_UINT64 = 2 ** 64 - 1
_VALID_BITS_SET = frozenset(VALID_BITS)

# Bytes 0..15 keep this meaning in every version (magic, version, header and
# payload length), so any tool can frame and skip a message it cannot decode.
_PREFIX = struct.Struct('<4sB5xHI')
_FIXED_V1 = struct.Struct('<4sBBBBBBHIQQfff')
# The fixed part followed by the shape, one precompiled struct per rank.
_HEADER_V1 = {rank: struct.Struct(f'{_FIXED_V1.format}{rank}I') for rank in range(1, MAX_RANK + 1)}
_CRC = struct.Struct('<I')
_F32 = struct.Struct('<f')
_U32 = struct.Struct('<I')
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# |zero_point| + (2**bits - 1) * scale stays below this, so float32 arithmetic never overflows.
_QUANT_LIMIT = 2.0 ** 127
_FLOAT16_MAX = float(np.finfo(np.float16).max)

BytesLike = Union[bytes, bytearray, memoryview]


class CodecError(ValueError):
    """A feature message cannot be encoded or decoded; the message says why."""


@dataclass(frozen=True)
class FeatureHeader:
    """Decoded header of one feature message.

    ``scale`` and ``zero_point`` describe the quantization (``x_hat = zero_point +
    q * scale``); for ``bits`` 16 and 32 they are 1.0 and 0.0.  ``device_stamp_ns``
    is the device's monotonic clock at send time, echoed back by the edge so the
    device can measure round trips on its own clock.
    """

    version: int
    bits: int
    exit_point: int
    partition_point: int
    shape: tuple[int, ...]
    scale: float
    zero_point: float
    frame_seq: int
    device_compute_ms: float
    device_stamp_ns: int
    payload_bytes: int

    @property
    def num_elements(self) -> int:
        """Number of tensor elements in the payload."""
        return math.prod(self.shape)


def header_size(rank: int) -> int:
    """Return the header length in bytes (CRC included) for a tensor of ``rank`` dims."""
    rank = _check_int('rank', rank, 1, MAX_RANK)
    return _FIXED_V1.size + 4 * rank + _CRC.size


def payload_size(num_elements: int, bits: int) -> int:
    """Return the payload length in bytes: ``ceil(num_elements * bits / 8)``."""
    _check_bits(bits)
    return (num_elements * bits + 7) // 8


def encoded_size(shape: Sequence[int], bits: int) -> int:
    """Return the exact length of the message that encodes a tensor of ``shape``."""
    shape = _check_shape(shape)
    return header_size(len(shape)) + payload_size(math.prod(shape), bits)


def parse_format(fmt: str) -> int:
    """Return the codec version named by a ``CompressedImage.format`` string.

    Raises :class:`CodecError` if ``fmt`` does not name this codec or names a
    version this decoder does not know.
    """
    name, sep, version = str(fmt).partition(';v=')
    if name != FORMAT_PREFIX or not sep or not (version.isascii() and version.isdigit()):
        raise CodecError(f'format {fmt!r} is not a coinfer feature format (expected {FORMAT!r})')
    v = int(version)
    if v not in _HEADER_PARSERS:
        raise CodecError(f'format {fmt!r}: codec version {v} unknown to this decoder '
                         f'(knows {sorted(_HEADER_PARSERS)}); upgrade coinfer')
    return v


# ----------------------------------------------------------------- encoding


def encode_features(tensor: Any, *, bits: int, exit_point: int, partition_point: int,
                    frame_seq: int, device_compute_ms: float = 0.0, device_stamp_ns: int = 0) -> bytes:
    """Encode a feature tensor (torch or numpy, batch dim included) into one message.

    ``bits`` 1..8 quantizes, 16 and 32 send float16 / float32.  Raises
    :class:`CodecError` for bad arguments, empty, non-finite or out-of-range
    tensors, and tensors of rank > 8 or more than ``MAX_ELEMENTS`` elements.
    """
    bits = _check_bits(bits)
    exit_point = _check_int('exit_point', exit_point, 0, MAX_UINT8)
    partition_point = _check_int('partition_point', partition_point, 0, MAX_UINT8)
    frame_seq = _check_int('frame_seq', frame_seq, 0, MAX_UINT64)
    device_stamp_ns = _check_int('device_stamp_ns', device_stamp_ns, 0, MAX_UINT64)
    device_compute_ms = _check_ms(device_compute_ms)
    x = _as_float32(tensor)
    if not (0 < x.size <= MAX_ELEMENTS and 1 <= x.ndim <= MAX_RANK):
        _check_shape(x.shape)  # raises the precise error
    flat = x.reshape(-1)
    lo, hi = flat.min(), flat.max()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise CodecError('tensor contains NaN or Inf (or values beyond the float32 range)')
    if bits == 32:
        scale, zero_point = 1.0, 0.0
        payload = flat.astype('<f4', copy=False)
    elif bits == 16:
        if max(-float(lo), float(hi)) > _FLOAT16_MAX:
            raise CodecError(f'tensor values up to {max(-float(lo), float(hi)):g} overflow float16 '
                             f'(max {_FLOAT16_MAX:g}); use bits=32 or an integer bit width')
        scale, zero_point = 1.0, 0.0
        payload = _to_float16(flat)
    else:
        zero_point = float(lo)
        scale = _choose_scale(zero_point, float(hi), bits)
        payload = _quantize_and_pack(flat, lo, scale, bits)
    rank = x.ndim
    head = _HEADER_V1[rank].pack(MAGIC, CODEC_VERSION, bits, exit_point, partition_point, rank, 0,
                                 _FIXED_V1.size + 4 * rank + _CRC.size, payload.nbytes, frame_seq,
                                 device_stamp_ns, device_compute_ms, scale, zero_point, *x.shape)
    return b''.join((head, _CRC.pack(zlib.crc32(payload, zlib.crc32(head))), payload))


def _as_float32(tensor: Any) -> np.ndarray:
    """Return a float32 numpy view of ``tensor`` (no copy for CPU float32 input)."""
    if type(tensor) is torch.Tensor and tensor.dtype is torch.float32 and not tensor.requires_grad:
        try:
            return tensor.numpy()  # shares memory: the common case, a CPU head output
        except (RuntimeError, TypeError):
            pass  # on an accelerator, sparse, ...: the general path converts it or explains why not
    if isinstance(tensor, torch.Tensor):
        if tensor.is_complex():
            raise CodecError(f'complex tensors are not supported (dtype {tensor.dtype})')
        try:
            return tensor.detach().to('cpu', torch.float32).numpy()
        except (RuntimeError, TypeError, NotImplementedError) as exc:
            raise CodecError(f'cannot read tensor ({tensor.dtype}, {tensor.layout}, {tensor.device}): {exc}') from None
    try:
        arr = np.asarray(tensor)
    except Exception as exc:  # noqa: BLE001 - anything array-like that numpy refuses
        raise CodecError(f'cannot convert {type(tensor).__name__} to an array: {exc}') from None
    if arr.dtype.kind not in 'biuf':
        raise CodecError(f'tensor dtype {arr.dtype} is not real numeric')
    with np.errstate(over='ignore'):  # float64 beyond float32 becomes inf and is rejected later
        return arr.astype(np.float32, copy=False)


def _choose_scale(lo: float, hi: float, bits: int) -> float:
    """Return the smallest float32 scale with ``(2**bits - 1) * scale >= hi - lo``.

    Rounding the scale *up* keeps every code within ``0..2**bits - 1`` without
    clipping, which is what makes the ``scale / 2`` error bound hold.
    """
    qmax = (1 << bits) - 1
    ideal = (hi - lo) / qmax
    if ideal >= _QUANT_LIMIT:
        raise CodecError(f'value range [{lo:g}, {hi:g}] is too wide for {bits}-bit quantization; use bits=32')
    scale = _F32.unpack(_F32.pack(ideal))[0]
    if scale < ideal:  # step to the next float32 up
        scale = _F32.unpack(_U32.pack(_U32.unpack(_F32.pack(scale))[0] + 1))[0]
    if abs(lo) + qmax * scale >= _QUANT_LIMIT:
        raise CodecError(f'value range [{lo:g}, {hi:g}] is too wide for {bits}-bit quantization; use bits=32')
    return scale


def _quantize_and_pack(flat: np.ndarray, lo: np.float32, scale: float, bits: int) -> np.ndarray:
    """Return the packed codes ``rint((flat - lo) / scale)`` (all zero when ``scale == 0``).

    The quotient is a true division, not a multiply by ``1 / scale``: the
    reciprocal is rounded, which moves codes that lie near a half step and would
    change the bytes older releases produce for the same tensor.
    """
    if scale == 0:
        return np.zeros((flat.size * bits + 7) // 8, np.uint8)
    work = np.subtract(flat, lo)
    np.divide(work, np.float32(scale), out=work)
    if bits == 1:  # rint(v) is 1 exactly when v > 0.5 (0.5 rounds to even, 0)
        return np.packbits(np.greater(work, 0.5), bitorder='little')
    np.rint(work, out=work)  # lies in [0, 2**bits - 1]: the scale was rounded up, so no clipping
    return _pack(work.astype(np.uint8), bits)


# Bit packing.  Codes are packed LSB-first: code i occupies stream bits
# [i * bits, (i + 1) * bits), byte k holds stream bits [8k, 8k + 8).  A group of
# 2**levels codes fills a whole number of bytes; viewing the uint8 codes as
# little-endian uint16 pairs, then uint32, ... lets shifts merge neighbouring
# codes inside one word ("SWAR"), so every numpy call runs over contiguous memory.
_UINTS = (np.dtype('<u1'), np.dtype('<u2'), np.dtype('<u4'), np.dtype('<u8'))
# The word views read memory as little-endian numbers; elsewhere the byte-order-free bit stream is used.
_LITTLE_ENDIAN = sys.byteorder == 'little'
# Odd widths (3, 5, 6, 7) need about 14 numpy calls per word-wise pack or unpack but 2 through the bit
# stream, whose cost grows with n * bits; up to this many codes the stream is the faster of the two.
_STREAM_MAX_CODES = 1024


@dataclass(frozen=True)
class _PackPlan:
    """How ``bits``-wide codes fill words: ``2**levels`` codes fill ``nbytes`` bytes."""

    bits: int
    levels: int
    nbytes: int
    void: np.dtype | None  # picks the low ``nbytes`` of each word when the word is wider

    @classmethod
    def for_bits(cls, bits: int) -> '_PackPlan':
        levels = 0
        while (bits << levels) % 8:
            levels += 1
        nbytes = (bits << levels) // 8
        word = _UINTS[levels]
        void = None
        if nbytes != word.itemsize:
            void = np.dtype({'names': ['low'], 'formats': [f'V{nbytes}'], 'offsets': [0],
                             'itemsize': word.itemsize})
        return cls(bits, levels, nbytes, void)


_PLANS = {b: _PackPlan.for_bits(b) for b in QUANT_BITS}


def _codes_per_byte_table(bits: int) -> np.ndarray:
    """Return the float32 codes held by each byte value: row ``k`` lists byte ``k``'s codes, LSB first."""
    lanes = np.arange(0, 8, bits)
    return ((np.arange(256)[:, None] >> lanes) & ((1 << bits) - 1)).astype(np.float32)


# Widths whose codes never straddle a byte decode through a 256-row table of values per byte.
_BYTE_TABLES = {b: _codes_per_byte_table(b) for b in (1, 2, 4)}


def _pad(array: np.ndarray, size: int) -> np.ndarray:
    """Return ``array`` extended with zeros to ``size`` elements (itself if long enough)."""
    if array.size >= size:
        return array
    return np.concatenate((array, np.zeros(size - array.size, array.dtype)))


def _to_float16(flat: np.ndarray) -> np.ndarray:
    """Return ``flat`` as little-endian float16 (torch converts many times faster than numpy)."""
    if not flat.flags.writeable:  # torch.from_numpy warns on read-only arrays
        flat = flat.copy()
    return torch.from_numpy(flat).half().numpy().astype('<f2', copy=False)


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack uint8 codes (each < 2**bits) into ``ceil(n * bits / 8)`` bytes."""
    if bits == 8:
        return codes
    if bits == 1:
        return np.packbits(codes, bitorder='little')
    n = codes.size
    plan = _PLANS[bits]
    if not _LITTLE_ENDIAN or (plan.nbytes > 1 and n <= _STREAM_MAX_CODES):
        return _pack_stream(codes, bits)
    per_word = 1 << plan.levels
    words = _pad(codes, -(-n // per_word) * per_word)
    if plan.nbytes == 1:  # 2 and 4 bits: fold the word onto its low byte, then truncate
        words = words.view(_UINTS[plan.levels])
        folded = words >> (8 - bits)
        folded |= words
        for level in range(1, plan.levels):
            folded |= folded >> ((8 - bits) << level)
        return folded.astype(np.uint8)
    width = bits
    for level in range(plan.levels):
        pairs = words.view(_UINTS[level + 1])  # low half = even code, high half = odd code
        low = (1 << width) - 1
        words = pairs >> ((8 << level) - width)
        words &= low << width
        words |= pairs & low
        width *= 2
    low_bytes = np.ascontiguousarray(words.view(plan.void)['low'])  # a group fills part of its word
    return low_bytes.view(np.uint8)[:(n * bits + 7) // 8]


def _unpack(payload: np.ndarray, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`_pack` for 3, 5, 6, 7 and 8 bits: return ``n`` uint8 codes."""
    if bits == 8:
        return payload
    plan = _PLANS[bits]
    if not _LITTLE_ENDIAN or n <= _STREAM_MAX_CODES:
        return _unpack_stream(payload, n, bits)
    groups = -(-n // (1 << plan.levels))
    payload = _pad(payload, groups * plan.nbytes)
    wide = np.zeros(groups, plan.void)  # a group of codes fills part of its word
    wide['low'] = payload.view(f'V{plan.nbytes}')
    words = wide.view(_UINTS[plan.levels])
    width = bits << plan.levels
    for level in reversed(range(plan.levels)):
        width //= 2
        low = (1 << width) - 1
        pairs = words << ((8 << level) - width)
        pairs &= low << (8 << level)
        pairs |= words & low
        words = pairs.view(_UINTS[level])
    return words[:n]


def _pack_stream(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack through a bit-per-byte stream: slower, but independent of the host byte order."""
    return np.packbits(np.unpackbits(codes[:, None], axis=1, count=bits, bitorder='little'), bitorder='little')


def _unpack_stream(payload: np.ndarray, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`_pack_stream`."""
    stream = np.unpackbits(payload, count=n * bits, bitorder='little').reshape(n, bits)
    return np.packbits(stream, axis=1, bitorder='little').reshape(n)


def _dequantize(payload: np.ndarray, header: FeatureHeader) -> np.ndarray:
    """Return the ``zero_point + code * scale`` values (float32 arithmetic) of a quantized payload."""
    scale, zero_point = header.scale, header.zero_point  # float32 values: numpy applies them as float32
    table = _BYTE_TABLES.get(header.bits)
    if table is not None:  # one lookup per byte yields all its values, computed once per message
        values = table * scale
        values += zero_point
        return values.take(payload, axis=0).reshape(-1)[:header.num_elements]
    values = np.multiply(_unpack(payload, header.num_elements, header.bits), scale, dtype=np.float32)
    values += zero_point
    return values


# ----------------------------------------------------------------- decoding


def peek_header(data: BytesLike) -> FeatureHeader:
    """Parse and validate the header of a message without decoding its payload.

    Checks magic, version, every field's range and that the data length equals
    header plus declared payload.  The CRC is checked by :func:`decode_features`.
    """
    header, _ = _parse(_as_bytes_view(data))
    return header


def decode_features(data: BytesLike) -> tuple[FeatureHeader, torch.Tensor]:
    """Decode one message into its header and a float32 tensor of the original shape.

    Accepts any C-contiguous bytes-like object (``bytes``, ``bytearray``,
    ``memoryview``, the ``array.array`` of a ROS ``uint8[]`` field).  Raises
    :class:`CodecError` for any truncated, extended, corrupted or unknown message.
    """
    view = _as_bytes_view(data)
    header, offset = _parse(view)
    stored = _CRC.unpack_from(view, offset - _CRC.size)[0]
    actual = zlib.crc32(view[offset:], zlib.crc32(view[:offset - _CRC.size]))
    if stored != actual:
        raise CodecError(f'CRC mismatch (stored {stored:#010x}, computed {actual:#010x}): message corrupted')
    payload = np.frombuffer(view, np.uint8, header.payload_bytes, offset)
    if header.bits == 32:
        values = payload.view('<f4').astype(np.float32)
    elif header.bits == 16:
        return header, torch.from_numpy(payload.view('<f2').astype(np.float16).reshape(header.shape)).float()
    else:
        values = _dequantize(payload, header)
    return header, torch.from_numpy(values.reshape(header.shape))


def _as_bytes_view(data: Any) -> memoryview:
    """Return a flat unsigned-byte view of a bytes-like object or raise CodecError."""
    if isinstance(data, str):
        raise CodecError('expected bytes, got str')
    try:
        view = memoryview(data)
        if not view.c_contiguous:
            raise CodecError('expected contiguous bytes, got a non-contiguous buffer')
        if view.format != 'B' or view.ndim != 1:
            view = view.cast('B')
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f'expected a bytes-like object, got {type(data).__name__} ({exc})') from None
    return view


def _parse(view: memoryview) -> tuple[FeatureHeader, int]:
    """Validate the message framing and return its header and payload offset."""
    if len(view) < _PREFIX.size:
        raise CodecError(f'truncated: {len(view)} bytes, a feature message has at least {_PREFIX.size}')
    magic, version, header_len, payload_len = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise CodecError(f'not a coinfer feature message (magic {bytes(magic)!r}, expected {MAGIC!r})')
    parser = _HEADER_PARSERS.get(version)
    if parser is None:
        raise CodecError(f'codec version {version} unknown to this decoder (knows {sorted(_HEADER_PARSERS)}); '
                         f'upgrade coinfer to read it')
    if len(view) < header_len:
        raise CodecError(f'truncated: {len(view)} bytes, header alone declares {header_len}')
    header = parser(view, header_len, payload_len)
    expected = header_len + payload_len
    if len(view) != expected:
        kind = 'truncated' if len(view) < expected else 'trailing bytes'
        raise CodecError(f'{kind}: message is {len(view)} bytes, header declares {expected}')
    return header, header_len


def _parse_v1(view: memoryview, header_len: int, payload_len: int) -> FeatureHeader:
    """Parse and validate a version-1 header (layout in docs/wire_format.md)."""
    if header_len < _FIXED_V1.size:
        raise CodecError(f'header length {header_len} shorter than the v1 fixed part {_FIXED_V1.size}')
    bits, rank, flags = view[5], view[8], view[9]
    if bits not in _VALID_BITS_SET:
        raise CodecError(f'bits {bits} invalid (expected one of {VALID_BITS})')
    if not 1 <= rank <= MAX_RANK:
        raise CodecError(f'rank {rank} invalid (expected 1..{MAX_RANK})')
    if flags != 0:
        raise CodecError(f'flags {flags:#04x} set; version 1 defines none')
    if header_len != _FIXED_V1.size + 4 * rank + _CRC.size:
        raise CodecError(f'header length {header_len} does not match rank {rank} ({header_size(rank)})')
    fields = _HEADER_V1[rank].unpack_from(view)
    version, exit_point, partition_point = fields[1], fields[3], fields[4]
    frame_seq, device_stamp_ns, device_compute_ms, scale, zero_point = fields[9:14]
    shape = fields[14:]
    n = 1
    for d in shape:
        if d < 1:
            raise CodecError(f'shape {shape} has an empty dimension')
        n *= d
        if n > MAX_ELEMENTS:
            raise CodecError(f'shape {shape} exceeds the limit of {MAX_ELEMENTS} elements')
    if payload_len != (n * bits + 7) // 8:
        raise CodecError(f'payload length {payload_len} does not match shape {shape} at {bits} bits '
                         f'({payload_size(n, bits)})')
    if not (math.isfinite(device_compute_ms) and device_compute_ms >= 0):
        raise CodecError(f'device_compute_ms {device_compute_ms} invalid (expected finite >= 0)')
    if bits > 8:  # float16 / float32 pass-through
        if scale != 1.0 or zero_point != 0.0:
            raise CodecError(f'float{bits} message must have scale 1 and zero point 0, '
                             f'got {scale}, {zero_point}')
    elif not (math.isfinite(scale) and scale >= 0 and math.isfinite(zero_point)
              and abs(zero_point) + ((1 << bits) - 1) * scale < _QUANT_LIMIT):
        raise CodecError(f'quantization parameters invalid (scale {scale}, zero point {zero_point})')
    return FeatureHeader(version, bits, exit_point, partition_point, shape, scale, zero_point, frame_seq,
                         device_compute_ms, device_stamp_ns, payload_len)  # positional: faster than keywords


_HEADER_PARSERS: dict[int, Callable[[memoryview, int, int], FeatureHeader]] = {1: _parse_v1}


# ----------------------------------------------------------------- argument checks


def _check_bits(bits: Any) -> int:
    if type(bits) is int and bits in _VALID_BITS_SET:
        return bits
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or int(bits) not in VALID_BITS:
        raise CodecError(f'bits must be one of {VALID_BITS}, got {bits!r}')
    return int(bits)


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if type(value) is int and lo <= value <= hi:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CodecError(f'{name} must be an integer, got {type(value).__name__} {value!r}')
    if not lo <= int(value) <= hi:
        raise CodecError(f'{name} {value} out of range {lo}..{hi}')
    return int(value)


def _check_ms(value: Any) -> float:
    try:
        ms = float(value)
    except (TypeError, ValueError, OverflowError):
        raise CodecError(f'device_compute_ms must be a float32-range number, got {value!r}') from None
    if not (math.isfinite(ms) and 0 <= ms <= _FLOAT32_MAX):
        raise CodecError(f'device_compute_ms {value!r} invalid (expected finite >= 0)')
    return ms


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(shape)
    except TypeError:
        raise CodecError(f'shape must be a sequence of integers, got {shape!r}') from None
    if not 1 <= len(shape) <= MAX_RANK:
        raise CodecError(f'tensor rank {len(shape)} not supported (expected 1..{MAX_RANK}), shape {shape}')
    dims = tuple(_check_int('dimension', d, 0, 2 ** 32 - 1) for d in shape)
    if 0 in dims:
        raise CodecError(f'tensor of shape {dims} is empty')
    if math.prod(dims) > MAX_ELEMENTS:
        raise CodecError(f'tensor of shape {dims} has more than {MAX_ELEMENTS} elements')
    return dims
