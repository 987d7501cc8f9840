# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Property tests of the feature codec (hypothesis): error bound, sizes, robustness."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from coinfer_device.core.codec import (MAGIC, CodecError, decode_features, encode_features, encoded_size, header_size,
                                       peek_header)

torch.set_num_threads(1)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUANT_BITS = st.integers(1, 8)
ALL_BITS = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 16, 32])

any_float32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
moderate_float32 = st.floats(-1e4, 1e4, width=32)
tensors = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=9),
                     elements=st.one_of(any_float32, moderate_float32))
small_tensors = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
                           elements=moderate_float32)


def encode(x, bits: int, **kw) -> bytes:
    args = dict(exit_point=1, partition_point=2, frame_seq=5, device_compute_ms=3.5, device_stamp_ns=99)
    args.update(kw)
    return encode_features(x, bits=bits, **args)


def with_fixed_crc(data: bytes) -> bytes:
    """Recompute the CRC (last 4 header bytes) so only the structural checks can object."""
    header_len = struct.unpack_from('<H', data, 10)[0]
    if not 20 <= header_len <= len(data):
        return data
    body = data[:header_len - 4]
    crc = zlib.crc32(data[header_len:], zlib.crc32(body))
    return body + struct.pack('<I', crc) + data[header_len:]


def decode_or_codec_error(data: bytes):
    """Decode; any exception other than CodecError fails the test."""
    try:
        return decode_features(data)
    except CodecError:
        return None


@SETTINGS
@given(x=tensors, bits=QUANT_BITS)
def test_quantization_error_within_half_scale(x, bits):
    magnitude = float(np.abs(x).max())
    try:
        msg = encode(x, bits)
    except CodecError as exc:
        assert 'too wide' in str(exc) and magnitude > 2.0 ** 125
        return
    header, y = decode_features(msg)
    lo, hi = float(x.min()), float(x.max())
    assert header.zero_point == lo
    assert header.scale * (2 ** bits - 1) >= hi - lo
    err = np.abs(y.numpy().astype(np.float64) - x.astype(np.float64))
    bound = header.scale / 2 + 2.0 ** -19 * magnitude + 2.0 ** -126
    assert err.max() <= bound, (err.max(), bound, header.scale)


@SETTINGS
@given(x=small_tensors, bits=QUANT_BITS)
def test_scale_and_codes_follow_the_documented_formula(x, bits):
    msg = encode(x, bits)
    header = peek_header(msg)
    lo, hi = float(x.min()), float(x.max())
    ideal = (hi - lo) / (2 ** bits - 1)
    scale = np.float32(ideal)
    if float(scale) < ideal:  # smallest float32 >= ideal (compared in float64)
        scale = np.nextafter(scale, np.float32(np.inf))
    assert header.scale == scale and header.zero_point == lo
    flat = x.reshape(-1)
    codes = np.zeros(flat.size, np.uint8) if scale == 0 else np.rint((flat - np.float32(lo)) / scale).astype(np.uint8)
    stream = np.unpackbits(codes[:, None], axis=1, count=bits, bitorder='little').ravel()
    assert msg[header_size(x.ndim):] == np.packbits(stream, bitorder='little').tobytes()
    assert np.array_equal(decode_features(msg)[1].numpy().reshape(-1), np.float32(lo) + codes * scale)


@SETTINGS
@given(x=tensors)
def test_float_pass_through(x):
    _, y32 = decode_features(encode(x, 32))
    assert np.array_equal(y32.numpy(), x)
    if np.abs(x).max() > 65504:
        return
    _, y16 = decode_features(encode(x, 16))
    err = np.abs(y16.numpy().astype(np.float64) - x.astype(np.float64))
    assert np.all(err <= np.abs(x.astype(np.float64)) * 2.0 ** -11 + 2.0 ** -25)


@SETTINGS
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=8).map(tuple), bits=ALL_BITS,
       fill=moderate_float32, data=st.data())
def test_size_is_exact(shape, bits, fill, data):
    x = np.full(shape, fill, np.float32)
    if data.draw(st.booleans()):
        x = x + np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    msg = encode(x, bits)
    n = math.prod(shape)
    assert len(msg) == encoded_size(shape, bits) == header_size(len(shape)) + (n * bits + 7) // 8
    header = peek_header(msg)
    assert header.shape == shape and header.payload_bytes == (n * bits + 7) // 8


@SETTINGS
@given(data=st.one_of(st.binary(max_size=300),
                      st.binary(max_size=200).map(lambda b: MAGIC + b),
                      st.binary(max_size=200).map(lambda b: MAGIC + b'\x01' + b),
                      st.binary(min_size=60, max_size=200).map(lambda b: with_fixed_crc(MAGIC + b'\x01' + b))))
def test_random_bytes_only_raise_codec_error(data):
    result = decode_or_codec_error(data)
    if result is not None:  # astronomically unlikely, but then it must be a consistent message
        header, y = result
        assert tuple(y.shape) == header.shape and len(data) == encoded_size(header.shape, header.bits)


mutation = st.one_of(
    st.tuples(st.just('flip'), st.integers(0, 10 ** 6), st.integers(1, 255)),
    st.tuples(st.just('insert'), st.integers(0, 10 ** 6), st.integers(0, 255)),
    st.tuples(st.just('delete'), st.integers(0, 10 ** 6), st.just(0)),
    st.tuples(st.just('truncate'), st.integers(0, 10 ** 6), st.just(0)),
    st.tuples(st.just('append'), st.just(0), st.integers(0, 255)),
)


def mutate(msg: bytes, ops) -> bytes:
    buf = bytearray(msg)
    for kind, pos, value in ops:
        i = pos % (len(buf) + 1)
        if kind == 'flip' and buf:
            buf[i % len(buf)] ^= value
        elif kind == 'insert':
            buf.insert(i, value)
        elif kind == 'delete' and buf:
            del buf[i % len(buf)]
        elif kind == 'truncate':
            del buf[i:]
        elif kind == 'append':
            buf.append(value)
    return bytes(buf)


@SETTINGS
@given(x=small_tensors, bits=ALL_BITS, ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_messages_rejected(x, bits, ops):
    msg = encode(x, bits)
    mutated = mutate(msg, ops)
    if mutated == msg:
        assert torch.equal(decode_features(mutated)[1], decode_features(msg)[1])
        return
    assert decode_or_codec_error(mutated) is None, ops


@SETTINGS
@given(x=small_tensors, bits=ALL_BITS, offset=st.integers(0, 83), value=st.integers(0, 255),
       data=st.data())
def test_header_edits_with_valid_crc_are_rejected_or_consistent(x, bits, offset, value, data):
    msg = bytearray(encode(x, bits))
    header_len = header_size(x.ndim)
    offset %= header_len - 4
    msg[offset] = value
    if data.draw(st.booleans()):  # a second edit, e.g. a length and a shape together
        msg[data.draw(st.integers(0, header_len - 5))] = data.draw(st.integers(0, 255))
    result = decode_or_codec_error(with_fixed_crc(bytes(msg)))
    if result is not None:
        header, y = result
        assert y.dtype == torch.float32 and tuple(y.shape) == header.shape
        assert len(msg) == encoded_size(header.shape, header.bits)
        if header.bits <= 8:
            assert torch.isfinite(y).all()
