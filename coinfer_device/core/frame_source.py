# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Where camera frames come from: a labelled data set, an image folder, a video file or a camera.

A source yields ``(frame, label)`` pairs: ``frame`` is uint8 ``H x W`` gray or
``H x W x 3`` BGR, ``label`` the class id when the source knows it (data sets and
class-per-folder image trees) and ``None`` otherwise.  No ROS import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from coinfer_device.core import data

SOURCES = ('fashion-mnist', 'cifar10', 'folder', 'video', 'camera')
Frame = tuple[np.ndarray, Optional[int]]


class SourceError(RuntimeError):
    """A frame source cannot be opened; the message says what to fix."""


class ArraySource:
    """Replay in-memory images (optionally labelled), in order or shuffled, once or looping."""

    def __init__(self, images: np.ndarray | list[np.ndarray], labels: np.ndarray | None, *, loop: bool = True,
                 start_index: int = 0, shuffle: bool = False, seed: int = 0, name: str = 'images') -> None:
        if len(images) == 0:
            raise SourceError(f'{name}: no images')
        self.images = images
        self.labels = labels
        self.loop = loop
        self.name = name
        order = np.arange(len(images))
        if shuffle:
            order = np.random.default_rng(seed).permutation(order)
        self._order = np.roll(order, -(start_index % len(images)))
        self._pos = 0

    def __len__(self) -> int:
        """Return the number of distinct frames."""
        return len(self.images)

    def read(self) -> Frame | None:
        """Return the next frame and its label, or ``None`` at the end (when not looping)."""
        if self._pos >= len(self._order):
            if not self.loop:
                return None
            self._pos = 0
        i = int(self._order[self._pos])
        self._pos += 1
        label = None if self.labels is None else int(self.labels[i])
        return np.ascontiguousarray(self.images[i]), label

    def close(self) -> None:
        """Release nothing (in-memory)."""


class CaptureSource:
    """Frames from OpenCV ``VideoCapture``: a video file (rewound when looping) or a camera."""

    def __init__(self, target: str | int, *, loop: bool = True, is_camera: bool = False) -> None:
        backend = cv2.CAP_V4L2 if is_camera else cv2.CAP_ANY
        self._cap = cv2.VideoCapture(target, backend)
        if not self._cap.isOpened():
            what = f'camera {target!r}' if is_camera else f'video file {target!r}'
            raise SourceError(f'cannot open {what} with OpenCV')
        self.loop = loop and not is_camera
        self.name = str(target)

    def read(self) -> Frame | None:
        """Return the next frame (no label), rewinding a video when looping; ``None`` at the end."""
        ok, frame = self._cap.read()
        if not ok and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        return (frame, None) if ok else None

    def close(self) -> None:
        """Release the capture device."""
        self._cap.release()


def _flat_folder(root: Path) -> list[np.ndarray]:
    frames = []
    for path in sorted(root.iterdir()):
        if path.suffix.lower() in data.IMAGE_SUFFIXES:
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise SourceError(f'{path}: unreadable image')
            frames.append(img if img.ndim == 2 else img[..., :3])
    return frames


def open_source(kind: str, path: str = '', *, split: str = 'test', camera_index: int = 0, loop: bool = True,
                start_index: int = 0, shuffle: bool = False, seed: int = 0) -> ArraySource | CaptureSource:
    """Open a frame source by kind (see :data:`SOURCES`); ``path`` '' means the kind's default."""
    try:
        if kind in ('fashion-mnist', 'cifar10'):
            ds = data.load_dataset(kind, path or None, split)
            return ArraySource(ds.images, ds.labels, loop=loop, start_index=start_index, shuffle=shuffle,
                               seed=seed, name=f'{kind}/{split}')
        if kind == 'folder':
            root = Path(path)
            if not root.is_dir():
                raise SourceError(f'image folder {path!r} not found')
            if any(p.is_dir() for p in root.iterdir()):  # one sub-folder per class: labelled
                ds = data.load_image_folder(root)
                return ArraySource(ds.images, ds.labels, loop=loop, start_index=start_index, shuffle=shuffle,
                                   seed=seed, name=str(root))
            return ArraySource(_flat_folder(root), None, loop=loop, start_index=start_index, shuffle=shuffle,
                               seed=seed, name=str(root))
        if kind == 'video':
            if not Path(path).is_file():
                raise SourceError(f'video file {path!r} not found')
            return CaptureSource(path, loop=loop)
        if kind == 'camera':
            return CaptureSource(path or camera_index, is_camera=True)
    except data.DatasetError as exc:
        raise SourceError(str(exc)) from exc
    raise SourceError(f'unknown source {kind!r} (one of {", ".join(SOURCES)})')


def frames(source: ArraySource | CaptureSource) -> Iterator[Frame]:
    """Iterate over a source until it ends."""
    while (item := source.read()) is not None:
        yield item
