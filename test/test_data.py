# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Data loaders read real file layouts offline; preprocessing is shape/colour robust."""

import gzip
import pickle
import struct

import cv2
import numpy as np
import pytest
import torch

from coinfer_device.core import data
from coinfer_device.core.data import DatasetError, Preprocessing


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_round_trip_and_errors(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / 't10k-images-idx3-ubyte.gz', imgs)
    _write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz', np.arange(5))
    ds = data.load_fashion_mnist(tmp_path, 'test')
    np.testing.assert_array_equal(ds.images, imgs)
    assert list(ds.labels) == [0, 1, 2, 3, 4] and len(ds) == 5
    (tmp_path / 'bad').write_bytes(b'\x00\x00\x0d\x01\x00\x00\x00\x05')
    with pytest.raises(DatasetError, match='unsigned-byte'):
        data.read_idx(tmp_path / 'bad')
    with pytest.raises(DatasetError, match='apt-get install dataset-fashion-mnist'):
        data.load_fashion_mnist(tmp_path, 'train')


def test_real_fashion_mnist_test_split():
    ds = data.load_fashion_mnist(split='test')
    assert ds.images.shape == (10000, 28, 28) and ds.images.dtype == np.uint8
    assert np.bincount(ds.labels).tolist() == [1000] * 10


def test_cifar10_binary_and_python_batches(tmp_path):
    rng = np.random.default_rng(1)
    recs = []
    for name in ['data_batch_%d' % i for i in range(1, 6)] + ['test_batch']:
        pixels = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, 3)
        recs.append((name, pixels, labels))
        binary = np.concatenate([labels[:, None].astype(np.uint8), pixels], axis=1)
        binary.tofile(tmp_path / f'{name}.bin')
    ds_bin = data.load_cifar10(tmp_path, 'test')
    py_dir = tmp_path / 'py'
    py_dir.mkdir()
    for name, pixels, labels in recs:
        with open(py_dir / name, 'wb') as f:
            pickle.dump({b'data': pixels, b'labels': labels.tolist()}, f)
    ds_py = data.load_cifar10(py_dir, 'test')
    np.testing.assert_array_equal(ds_bin.images, ds_py.images)
    np.testing.assert_array_equal(ds_bin.labels, recs[-1][2])
    # stored RGB planes become BGR H x W x 3 frames, as OpenCV would load them
    assert ds_py.images.shape == (3, 32, 32, 3)
    assert ds_py.images[0, 0, 0, 2] == recs[-1][1][0, 0]


def test_cifar10_python_batch_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ('pwned',))
    for name in ['test_batch']:
        with open(tmp_path / name, 'wb') as f:
            pickle.dump({b'data': Evil(), b'labels': []}, f)
    with pytest.raises(DatasetError, match='refusing to unpickle builtins.print'):
        data.load_cifar10(tmp_path, 'test')


def test_image_folder(tmp_path):
    for cls, value in (('cat', 10), ('dog', 200)):
        (tmp_path / cls).mkdir()
        for i in range(2):
            cv2.imwrite(str(tmp_path / cls / f'{i}.png'), np.full((40, 50, 3), value, np.uint8))
    (tmp_path / 'cat' / 'notes.txt').write_text('ignored')
    ds = data.load_image_folder(tmp_path)
    assert ds.class_names == ('cat', 'dog') and list(ds.labels) == [0, 0, 1, 1]
    assert ds.images.shape == (4, 32, 32, 3)
    with pytest.raises(DatasetError, match='one sub-folder per class'):
        data.load_image_folder(tmp_path / 'cat')


@pytest.mark.parametrize('frame', [
    np.zeros((28, 28), np.uint8),
    np.zeros((480, 640, 3), np.uint8),
    np.zeros((100, 80, 4), np.uint8),
])
def test_frame_to_input_any_camera_frame(frame):
    pre = Preprocessing()
    x = data.frame_to_input(frame, pre)
    assert tuple(x.shape) == (1, 1, 32, 32)
    # a black frame is the normalized background everywhere, padding included
    np.testing.assert_allclose(x.numpy(), -pre.mean / pre.std, rtol=1e-6)


def test_frame_to_input_places_content_in_the_middle():
    pre = Preprocessing()
    x = data.frame_to_input(np.full((28, 28), 255, np.uint8), pre)[0, 0].numpy()
    white = (1.0 - pre.mean) / pre.std
    assert np.allclose(x[2:30, 2:30], white) and np.allclose(x[:2], -pre.mean / pre.std)
    rgb = data.frame_to_input(np.full((32, 32), 255, np.uint8), Preprocessing(in_channels=3, content_size=32))
    assert tuple(rgb.shape) == (1, 3, 32, 32)
    with pytest.raises(ValueError, match='H x W'):
        data.frame_to_input(np.zeros((1, 2, 3, 4), np.uint8), pre)


def test_fashion_mnist_and_camera_frames_feed_the_224_rgb_model():
    """Gray 28 x 28 images fill a 3 x 224 x 224 input (bilinear, R = G = B); a BGR camera frame arrives as RGB."""
    pre = Preprocessing(in_channels=3, content_size=224, image_size=224, mean=0.5, std=0.25)
    gray = np.zeros((28, 28), np.uint8)
    gray[10:18, 10:18] = 255
    x = data.batch_to_input([gray, gray], pre)
    assert tuple(x.shape) == (2, 3, 224, 224)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    row = x[0, 0, 112].numpy() * pre.std + pre.mean
    assert row[0] == 0.0 and row[112] == 1.0
    assert 0.0 < row[78] < 1.0, 'an enlarged edge is interpolated, not a block of repeated pixels'
    camera = np.zeros((480, 640, 3), np.uint8)
    camera[..., 0] = 255  # blue in OpenCV's BGR order
    rgb = data.frame_to_input(camera, pre)[0].numpy() * pre.std + pre.mean
    np.testing.assert_allclose(rgb[2], 1.0, atol=1e-6)
    np.testing.assert_allclose(rgb[:2], 0.0, atol=1e-6)
