"""Label layers written as TIFF (atomically): whole, or tile by tile when they are too large to hold."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..engine.annotations import PixelSize
from ..engine.labels import integer_labels, smallest_uint
from ..errors import AnnotationError
from .atomic import atomic_write_file, check_writable
from .tiff_metadata import ome_metadata

#: The Software tag of every label TIFF written here: what ``--overwrite`` recognises as this tool's output.
SOFTWARE = "napari-lazylabels"


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
                      planar: bool = True, axes: str | None = None, pixel_size: PixelSize | None = None) -> Path:
    """Write a label layer as a zlib-compressed TIFF, atomically.

    Stored as uint16, or uint32 when a value exceeds 65535, with :data:`SOFTWARE` in its Software tag. ``planar=False``
    also takes a stack (leading axes: one TIFF page per plane). ``axes``
    (e.g. ``"tyx"``) and ``pixel_size`` are written as OME metadata, which
    Fiji, QuPath and :func:`read_image_file` read back.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        AnnotationError: labels not 2D (with ``planar``), not integer, or negative.
    """
    import tifffile

    check_writable(path, overwrite)
    data = _labels_for_tiff(labels, str(path), planar)
    meta = ome_metadata(axes, pixel_size)
    extra = {} if meta is None else {"ome": True, "metadata": meta}
    return atomic_write_file(path, lambda tmp: tifffile.imwrite(tmp, data, compression="zlib", software=SOFTWARE,
                                                                **extra),
                             overwrite=overwrite)


#: Tile edge of the instance TIFFs written block by block.
TIFF_TILE = 512


def write_labels_tiff_blocks(path: str | os.PathLike, shape: Sequence[int], dtype,
                             read: Callable[[tuple[int, ...], int, int, int, int], np.ndarray], *,
                             overwrite: bool = False, axes: str | None = None,
                             pixel_size: PixelSize | None = None) -> Path:
    """:func:`write_labels_tiff` of labels too large to hold: a tiled TIFF (zlib, 512 px tiles; BigTIFF
    when needed), one page per plane of the leading axes of ``shape``, whose tiles
    ``read(plane index, y0, y1, x0, x1)`` gives one at a time. ``dtype``: the labels' (at least uint16
    is written, as :func:`write_labels_tiff` does); ``axes`` and ``pixel_size`` as there."""
    import tifffile

    check_writable(path, overwrite)
    shape = tuple(int(n) for n in shape)
    planes, (h, w) = shape[:-2], shape[-2:]
    dtype = np.promote_types(np.dtype(dtype), np.uint16)
    t = TIFF_TILE

    def tiles():
        for index in itertools.product(*(range(n) for n in planes)):
            for y in range(0, h, t):
                for x in range(0, w, t):
                    tile = np.zeros((t, t), dtype)
                    part = np.asarray(read(index, y, min(y + t, h), x, min(x + t, w)))
                    tile[:part.shape[0], :part.shape[1]] = part
                    yield tile

    meta = ome_metadata(axes, pixel_size)
    extra = {} if meta is None else {"ome": True, "metadata": meta}
    big = int(np.prod(shape)) * dtype.itemsize > 2 ** 31
    return atomic_write_file(path, lambda tmp: tifffile.imwrite(tmp, tiles(), shape=shape, dtype=dtype, tile=(t, t),
                                                                compression="zlib", bigtiff=big, software=SOFTWARE,
                                                                **extra),
                             overwrite=overwrite)
