"""Read images and label layers from files; write label layers as TIFF.

Supported: TIFF (``.tif``/``.tiff``, via tifffile), PNG and JPEG (via OpenCV,
colour converted to RGB) and NumPy ``.npy`` (no pickles). Whatever the
reader, the result is YX or YXC: singleton axes are dropped and a leading
channel axis (at most 4 channels, on a larger YX plane) is moved last.

A file that is missing, has an unknown extension or cannot be decoded gives a
one-line :class:`~napari_lazylabels.errors.ImageReadError` naming it, never a
traceback from the underlying library.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..engine.annotations import check_image, check_labels
from ..engine.labels import integer_labels, smallest_uint
from .atomic import atomic_write_file, check_writable
from ..errors import AnnotationError, ImageReadError

__all__ = ["IMAGE_EXTENSIONS", "read_image", "load_image", "load_labels", "write_labels_tiff"]

#: File extensions :func:`read_image` understands (lower case).
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy")

#: Largest leading axis taken for channels (CYX -> YXC).
MAX_LEADING_CHANNELS = 4


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    return np.asarray(tifffile.imread(path))


def _read_cv2(path: Path) -> np.ndarray:
    import cv2

    # imdecode from bytes: works for non-ASCII paths, unlike cv2.imread on Windows.
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ValueError("OpenCV could not decode it")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def _read_npy(path: Path) -> np.ndarray:
    image = np.load(path, allow_pickle=False)
    if not isinstance(image, np.ndarray):
        raise ValueError("not a single .npy array")
    return image


_READERS = {".tif": _read_tiff, ".tiff": _read_tiff, ".png": _read_cv2, ".jpg": _read_cv2,
            ".jpeg": _read_cv2, ".npy": _read_npy}


def _to_yx_or_yxc(image: np.ndarray) -> np.ndarray:
    """Drop singleton axes; move a small leading channel axis last."""
    image = np.squeeze(image)
    if (image.ndim == 3 and image.shape[0] <= MAX_LEADING_CHANNELS
            and min(image.shape[1:]) > MAX_LEADING_CHANNELS):
        image = np.moveaxis(image, 0, -1)
    return np.ascontiguousarray(image)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image or label file as a YX or YXC array (no value checks).

    Raises:
        ImageReadError: the file is missing, is a folder, has an unknown
            extension or cannot be decoded.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise ImageReadError("file not found", source=source)
    if path.is_dir():
        raise ImageReadError("is a folder, not an image file", source=source)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ImageReadError(
            f"unknown image format {path.suffix or '(no extension)'!r}; "
            f"use one of {', '.join(IMAGE_EXTENSIONS)}", source=source)
    try:
        image = reader(path)
    except MemoryError:
        raise
    except Exception as exc:  # any decoder failure becomes one clear line
        raise ImageReadError(f"cannot read {path.suffix.lower()[1:].upper()} file ({_one_line(exc)})",
                             source=source) from None
    return _to_yx_or_yxc(image)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image and refuse what the network cannot use (see :func:`check_image`).

    Raises:
        ImageReadError: unreadable file.
        AnnotationError: wrong dimensions, too small, NaN/inf pixels...
    """
    return check_image(read_image(path), source=str(path))


def load_labels(path: str | os.PathLike, shape: Sequence[int], max_label: int,
                what: str = "labels") -> np.ndarray:
    """Read a label layer and check it against the image ``shape`` (YX); return int32.

    Raises:
        ImageReadError: unreadable file.
        AnnotationError: wrong shape, non-integer or negative values, values
            above ``max_label``.
    """
    return check_labels(read_image(path), shape, max_label, source=str(path), what=what)


def _labels_for_tiff(labels: np.ndarray, source: str, planar: bool = True) -> np.ndarray:
    """Check integer labels and give them the smallest TIFF dtype (uint16, or uint32).

    ``planar``: require a 2D (YX) array; with False any number of leading
    axes is allowed (a multi-page stack).

    Raises:
        AnnotationError: wrong shape, non-integer or negative values, ids above uint32.
    """
    labels = np.asarray(labels)
    if planar and labels.ndim != 2:
        raise AnnotationError(f"labels must be a 2D (YX) array, got shape {labels.shape}", source=source)
    labels = integer_labels(labels, "labels", source=source, whole_floats=True)
    top = int(labels.max()) if labels.size else 0
    if top > np.iinfo(np.uint32).max:
        raise AnnotationError(f"labels contain value {top}, too large for a uint32 TIFF", source=source)
    # at least uint16: what ImageJ/Fiji and most label tools expect
    return labels.astype(np.promote_types(smallest_uint(top), np.uint16))


def write_labels_tiff(path: str | os.PathLike, labels: np.ndarray, overwrite: bool = False,
                      planar: bool = True) -> Path:
    """Write a label layer as a zlib-compressed TIFF, atomically.

    Stored as uint16, or uint32 when a value exceeds 65535. ``planar=False``
    also takes a stack (leading axes: one TIFF page per plane).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        AnnotationError: labels not 2D (with ``planar``), not integer, or negative.
    """
    import tifffile

    check_writable(path, overwrite)
    data = _labels_for_tiff(labels, str(path), planar)
    return atomic_write_file(path, lambda tmp: tifffile.imwrite(tmp, data, compression="zlib"),
                             overwrite=overwrite)
