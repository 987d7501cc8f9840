# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Offline data sets (Fashion-MNIST idx, CIFAR-10, image folders) and preprocessing.

Nothing is ever downloaded: every loader reads files from a path the user gives.
CIFAR-10 is read from its binary layout (``cifar-10-batches-bin``) or from the
python batches through a restricted unpickler that only admits plain
containers and numpy arrays (no arbitrary code, like ``weights_only``).
"""

from __future__ import annotations

import gzip
import io
import pickle  # nosec: only through _SafeUnpickler below
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

FASHION_MNIST_DIR = Path('/usr/share/datasets/fashion-mnist')
FASHION_MNIST_CLASSES = (
    'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
    'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
CIFAR10_CLASSES = (
    'airplane', 'automobile', 'bird', 'cat', 'deer',
    'dog', 'frog', 'horse', 'ship', 'truck')
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.pgm', '.ppm', '.tif', '.tiff')


class DatasetError(RuntimeError):
    """A data set is missing or malformed; the message says what to do."""


@dataclass
class Dataset:
    """Images as uint8 ``N x H x W`` (gray) or ``N x H x W x 3`` (BGR) plus labels."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.labels.shape[0])

    def subset(self, indices: Sequence[int] | np.ndarray) -> 'Dataset':
        """Return the samples at ``indices``."""
        idx = np.asarray(indices)
        return Dataset(self.images[idx], self.labels[idx], self.class_names, self.name)


@dataclass(frozen=True)
class Preprocessing:
    """How a camera frame becomes the network input; stored with the checkpoint."""

    in_channels: int = 1
    content_size: int = 28
    image_size: int = 32
    mean: float = 0.2860
    std: float = 0.3530

    def to_dict(self) -> dict:
        """Return a JSON-friendly dictionary."""
        return dict(in_channels=self.in_channels, content_size=self.content_size,
                    image_size=self.image_size, mean=self.mean, std=self.std)


# --------------------------------------------------------------------------- idx


def _open_maybe_gz(path: Path) -> bytes:
    with open(path, 'rb') as f:
        raw = f.read()
    return gzip.decompress(raw) if raw[:2] == b'\x1f\x8b' else raw


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally gzip-compressed) of unsigned bytes."""
    raw = _open_maybe_gz(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f'{path}: not an unsigned-byte idx file')
    ndim = raw[3]
    dims = struct.unpack(f'>{ndim}I', raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetError(f'{path}: expected {int(np.prod(dims))} values, found {data.size}')
    return data.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / f'{stem}.gz', root / stem):
        if candidate.exists():
            return candidate
    raise DatasetError(
        f'{root / stem}[.gz] not found. Fashion-MNIST ships in Debian: '
        '`sudo apt-get install dataset-fashion-mnist`, or pass --data DIR '
        'holding the four idx files.')


def load_fashion_mnist(root: Path | str = FASHION_MNIST_DIR, split: str = 'train') -> Dataset:
    """Load the Fashion-MNIST ``train`` (60k) or ``test`` (10k) split from idx files."""
    root = Path(root)
    prefix = {'train': 'train', 'test': 't10k'}[split]
    images = read_idx(_find(root, f'{prefix}-images-idx3-ubyte'))
    labels = read_idx(_find(root, f'{prefix}-labels-idx1-ubyte')).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f'{root}: {images.shape[0]} images but {labels.shape[0]} labels')
    return Dataset(images, labels, FASHION_MNIST_CLASSES, 'fashion-mnist')


# --------------------------------------------------------------------------- cifar


class _SafeUnpickler(pickle.Unpickler):
    """Admit only what a CIFAR-10 python batch contains: containers and numpy arrays."""

    _ALLOWED = {
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', '_reconstruct'),
        ('numpy', 'ndarray'),
        ('numpy', 'dtype'),
    }

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise DatasetError(f'refusing to unpickle {module}.{name} from a data file')


def _cifar_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, 'rb') as f:
        batch = _SafeUnpickler(io.BytesIO(f.read()), encoding='bytes').load()
    data = np.asarray(batch[b'data'], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[b'labels'], dtype=np.int64)
    return data, labels


def _cifar_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise DatasetError(f'{path}: size {raw.size} is not a multiple of 3073')
    records = raw.reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def load_cifar10(root: Path | str, split: str = 'train') -> Dataset:
    """Load CIFAR-10 from ``cifar-10-batches-py`` or ``cifar-10-batches-bin`` under ``root``."""
    root = Path(root)
    names = {'train': [f'data_batch_{i}' for i in range(1, 6)], 'test': ['test_batch']}[split]
    parts = []
    for name in names:
        py, binary = root / name, root / f'{name}.bin'
        if py.exists():
            parts.append(_cifar_python_batch(py))
        elif binary.exists():
            parts.append(_cifar_binary_batch(binary))
        else:
            raise DatasetError(f'{py} (python batches) or {binary} (binary) not found; '
                               'give --data the extracted CIFAR-10 folder')
    rgb = np.concatenate([p[0] for p in parts]).transpose(0, 2, 3, 1)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    return Dataset(bgr, np.concatenate([p[1] for p in parts]), CIFAR10_CLASSES, 'cifar10')


# --------------------------------------------------------------------------- folder


def load_image_folder(root: Path | str, size: int = 32) -> Dataset:
    """Load ``root/<class>/<image>`` files; classes are the sorted sub-folder names."""
    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not classes:
        raise DatasetError(f'{root}: expected one sub-folder per class')
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                raise DatasetError(f'{path}: unreadable image')
            images.append(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA))
            labels.append(label)
    if not images:
        raise DatasetError(f'{root}: no images with suffix {IMAGE_SUFFIXES}')
    return Dataset(np.stack(images), np.asarray(labels, np.int64), tuple(classes), 'folder')


def load_dataset(kind: str, path: Path | str | None, split: str, folder_size: int = 32) -> Dataset:
    """Load a data set by name: ``fashion-mnist``, ``cifar10`` or ``folder`` (images resized to ``folder_size``)."""
    if kind == 'fashion-mnist':
        return load_fashion_mnist(path or FASHION_MNIST_DIR, split)
    if path is None:
        raise DatasetError(f'--data PATH is required for dataset {kind!r}')
    if kind == 'cifar10':
        return load_cifar10(path, split)
    if kind == 'folder':
        return load_image_folder(Path(path) / split if (Path(path) / split).is_dir() else path, folder_size)
    raise DatasetError(f'unknown dataset {kind!r} (fashion-mnist, cifar10, folder)')


# --------------------------------------------------------------------------- preprocessing


def _frame_to_chw(frame: np.ndarray, pre: Preprocessing) -> np.ndarray:
    if frame.ndim == 3 and frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and pre.in_channels == 1:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    size = pre.content_size
    if frame.shape[:2] != (size, size):
        # area averaging to shrink a camera frame; bilinear to enlarge (area would repeat pixels in blocks)
        shrink = frame.shape[0] >= size and frame.shape[1] >= size
        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if frame.ndim == 2 and pre.in_channels == 3:
        return np.broadcast_to(frame, (3, size, size))  # gray to RGB after resizing: the same values, 3x less work
    return frame[None] if frame.ndim == 2 else frame[..., ::-1].transpose(2, 0, 1)


def batch_to_input(images: np.ndarray | Sequence[np.ndarray], pre: Preprocessing) -> torch.Tensor:
    """Turn uint8 frames (each ``H x W`` gray or ``H x W x 3`` BGR) into network input.

    Colour is converted to the model's channel count (gray frames are repeated
    into R, G and B for a 3-channel model), the frame is resized to
    ``content_size`` (area averaging to shrink, bilinear to enlarge) and
    zero-padded (black, as Fashion-MNIST's background) to ``image_size``, then
    normalized with the training mean and std.  The device node converts camera
    frames and the training tools convert data set images with this function.
    """
    out = np.zeros((len(images), pre.in_channels, pre.image_size, pre.image_size), np.float32)
    off = (pre.image_size - pre.content_size) // 2
    for i, frame in enumerate(images):
        chw = _frame_to_chw(np.asarray(frame), pre)
        out[i, :, off:off + pre.content_size, off:off + pre.content_size] = chw * (1.0 / 255.0)
    out -= pre.mean
    out /= pre.std
    return torch.from_numpy(out)


def frame_to_input(frame: np.ndarray, pre: Preprocessing) -> torch.Tensor:
    """Preprocess one camera frame into a ``1 x C x S x S`` input tensor."""
    if frame.ndim not in (2, 3):
        raise ValueError(f'expected an H x W or H x W x C frame, got shape {frame.shape}')
    return batch_to_input([frame], pre)
