"""Label arrays: the one integer-label check and the one "smallest dtype" rule.

Label layers, instance maps, class maps and predictions all pass through
:func:`integer_labels`; every writer and layer picks its dtype with
:func:`smallest_uint`. Also the small operations on class and instance maps
that annotation, post-processing and evaluation share.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from skimage.measure import label as label_regions
from skimage.segmentation import relabel_sequential

from ..errors import AnnotationError


def smallest_uint(max_value: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds ``0..max_value`` (uint8 at least)."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if int(max_value) <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise AnnotationError(f"label value {max_value} is too large for any integer type")


def smallest_label_dtype(labels: np.ndarray) -> np.dtype:
    """:func:`smallest_uint` for the largest value of ``labels`` (uint8 for an empty array)."""
    labels = np.asarray(labels)
    return smallest_uint(int(labels.max()) if labels.size else 0)


def integer_labels(labels: np.ndarray, what: str = "labels", *, source: str | None = None,
                   whole_floats: bool = False) -> np.ndarray:
    """``labels`` as a non-negative integer array; bool becomes uint8.

    ``whole_floats``: accept a float array whose values are all whole numbers
    (label images saved as float by some tools), returned as int64; without
    it any float array is refused (e.g. a probability map passed as labels).

    Raises:
        AnnotationError (a ValueError): not integers, or negative values.
    """
    labels = np.asarray(labels)
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    if np.issubdtype(labels.dtype, np.floating) and whole_floats:
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise AnnotationError(f"{what} must be integers, got non-integer values", source=source)
        labels = labels.astype(np.int64)
    elif not np.issubdtype(labels.dtype, np.integer):
        raise AnnotationError(f"{what} must be integers (an integer label array), got type {labels.dtype}",
                              source=source)
    if labels.size and labels.min() < 0:
        raise AnnotationError(f"{what} contain negative values ({labels.min()})", source=source)
    return labels


def blob_components(blobs: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Number the blobs: connected regions (8-connected) of one class value.

    Two touching blobs of different classes are two components. Ids follow
    raster order (the first pixel of each blob, row by row), so they are the
    ones :func:`grabcut_drafts`'s ``only`` refers to.

    Returns:
        ``(components int32 YX, {component id: class value})``.
    """
    blobs = np.asarray(blobs)
    comps = label_regions(blobs, background=0, connectivity=2).astype(np.int32, copy=False)
    n = int(comps.max())
    classes = np.zeros(n + 1, np.int64)
    classes[comps.ravel()] = blobs.ravel()
    return comps, {i: int(classes[i]) for i in range(1, n + 1)}


def drop_small(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Set the labels with fewer than ``min_area`` pixels to 0, in place; returns ``labels``."""
    if min_area > 1 and labels.any():
        small = np.bincount(labels.ravel()) < min_area
        small[0] = False
        if small.any():
            labels[small[labels]] = 0
    return labels


def class_map(instances: np.ndarray, classes: Mapping[int, int], dtype=np.int16) -> np.ndarray:
    """The class of each object painted over its pixels (0 elsewhere)."""
    inst = np.asarray(instances)
    n = int(inst.max(initial=0))
    lut = np.zeros(n + 1, dtype)
    for k, c in classes.items():
        if 0 < k <= n:
            lut[k] = c
    return lut[inst]


def relabel_with_classes(labels: np.ndarray, classes: Mapping[int, int]) -> tuple[np.ndarray, dict[int, int]]:
    """Renumber ``labels`` 1..n (int32) and carry ``{id: class}`` over; ids no longer present are dropped."""
    out, fw, _ = relabel_sequential(labels)
    fw = np.asarray(fw)
    return out.astype(np.int32, copy=False), {int(fw[k]): c for k, c in classes.items()
                                              if k < len(fw) and fw[k] > 0}
