"""Point annotations (one click per object) as arrays, and the label maps made from them.

An input whose napari layer is a Points layer (``LabelInput.layer_type ==
"points"``, :mod:`.regimes.base`) holds, once checked, an ``(N, 3)`` float64
array: the point's ``y``, ``x`` in pixel coordinates (pixel centres at whole
numbers, as napari's Points layers and :func:`numpy.argwhere` have them;
fractions allowed) and the object's class ``1..K``. The class column is
never 0, so such an array is non-zero exactly when it holds a point, and
``LazyAnnotations.is_annotated`` needs no special case.

Also here: the geometry a points regime trains on, made from points and a
foreground mask (small disks at the points, the point-seeded partition of the
mask, the interfaces between its parts).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import expand_labels, watershed

from ..errors import AnnotationError

#: Columns of a checked points array: y, x, class.
POINT_COLUMNS = 3

_EIGHT = np.ones((3, 3), dtype=bool)


def empty_points() -> np.ndarray:
    return np.zeros((0, POINT_COLUMNS), np.float64)


def check_points(points, shape: Sequence[int], n_classes: int, source: str | None = None,
                 what: str = "the points") -> np.ndarray:
    """Refuse points the image cannot hold; return them as an ``(N, 3)`` float64 array (y, x, class).

    Accepts ``(N, 2)`` (y, x: every point class 1) or ``(N, 3)`` (y, x, class)
    arrays. A point lies inside the image when it rounds to one of its pixels
    (``-0.5 <= y < H - 0.5``).

    Raises:
        AnnotationError: not an (N, 2) or (N, 3) array of numbers, a coordinate
            that is not finite, a point outside the image, a class outside 1..K.
    """
    arr = np.asarray(points)
    if arr.size == 0:
        return empty_points()
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise AnnotationError(f"{what} must be an (N, 2) array of y, x or (N, 3) of y, x, class, got shape "
                              f"{arr.shape}", source=source)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise AnnotationError(f"{what} must be numbers, got type {arr.dtype}", source=source)
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AnnotationError(f"{what}: point {i + 1} has a coordinate that is not a finite number", source=source)
    h, w = int(shape[0]), int(shape[1])
    pix = np.floor(arr[:, :2] + 0.5)
    outside = (pix[:, 0] < 0) | (pix[:, 0] >= h) | (pix[:, 1] < 0) | (pix[:, 1] >= w)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        n = int(outside.sum())
        more = f" ({n} points are)" if n > 1 else ""
        raise AnnotationError(f"{what}: point {i + 1} at y={arr[i, 0]:g}, x={arr[i, 1]:g} lies outside the "
                              f"image ({h} x {w} px){more}", source=source)
    if arr.shape[1] == 2:
        classes = np.ones(len(arr))
    else:
        classes = arr[:, 2]
        wrong = (classes != np.round(classes)) | (classes < 1) | (classes > max(int(n_classes), 1))
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise AnnotationError(f"{what}: point {i + 1} has class {classes[i]:g}; classes are 1..{int(n_classes)}",
                                  source=source)
    return np.column_stack([arr[:, 0], arr[:, 1], classes]).astype(np.float64)


def point_pixels(points: np.ndarray) -> np.ndarray:
    """The pixel (row, column) each point falls in, (N, 2) int64."""
    pts = np.asarray(points, np.float64).reshape(-1, POINT_COLUMNS)
    return np.floor(pts[:, :2] + 0.5).astype(np.int64)


def point_classes(points: np.ndarray) -> np.ndarray:
    """The class of each point (N,) int64."""
    return np.asarray(points, np.float64).reshape(-1, POINT_COLUMNS)[:, 2].astype(np.int64)


def points_text(points: np.ndarray, class_names: Sequence[str]) -> str:
    """Summary cell of a points input: how many points ("12", or "nucleus: 7, mitosis: 2")."""
    classes = point_classes(points)
    if not len(classes):
        return "0"
    values, counts = np.unique(classes, return_counts=True)
    if len(class_names) <= 1 and set(values.tolist()) <= {1}:
        return f"{int(counts.sum())} point{'s' if counts.sum() != 1 else ''}"
    return ", ".join(f"{class_names[k - 1] if 0 < k <= len(class_names) else k}: {n}"
                     for k, n in zip(values.tolist(), counts.tolist()))


def point_disks(points: np.ndarray, shape: Sequence[int], radius: float,
                within: np.ndarray | None = None) -> np.ndarray:
    """A disk of ``radius`` px around every point, numbered by the point (int32 YX, 0 elsewhere).

    A pixel belongs to the nearest point within ``radius``; pixels next to
    another point's disk are left out, so the disks of two points never touch
    (each disk is its own connected region, as long as the points are at
    least 3 px apart). ``within``: the disks are cut to this mask.
    """
    shape = (int(shape[0]), int(shape[1]))
    pix = point_pixels(points)
    out = np.zeros(shape, np.int32)
    if not len(pix):
        return out
    marker = np.zeros(shape, np.int32)
    marker[pix[:, 0], pix[:, 1]] = np.arange(1, len(pix) + 1, dtype=np.int32)
    # points falling in the same pixel: the last one wins there (the others get no disk)
    dist, (iy, ix) = ndi.distance_transform_edt(marker == 0, return_indices=True)
    nearest = marker[iy, ix]
    out = np.where(dist <= float(radius), nearest, 0).astype(np.int32)
    if within is not None:
        out[~np.asarray(within, bool)] = 0
    hi = ndi.maximum_filter(out, footprint=_EIGHT)
    lo = ndi.minimum_filter(np.where(out > 0, out, np.iinfo(np.int32).max), footprint=_EIGHT)
    out[(out > 0) & ((hi != out) | (lo != out))] = 0
    return out


def seeded_partition(mask: np.ndarray, markers: np.ndarray, elevation: np.ndarray | None = None) -> np.ndarray:
    """The mask cut between the markers: each pixel of a mask component that holds a marker goes to one
    marker (seeded watershed); components without a marker stay 0.

    ``elevation`` decides where the cuts run; default: minus the distance to
    the mask's edge, so two touching round objects are cut at their neck
    (the point-seeded partition of an image-level mask).
    """
    fg = np.asarray(mask, bool)
    seeds = np.where(fg, np.asarray(markers), 0).astype(np.int32)
    if not seeds.any():
        return np.zeros(fg.shape, np.int32)
    if elevation is None:
        elevation = -ndi.distance_transform_edt(fg)
    return watershed(np.asarray(elevation, np.float64), markers=seeds, mask=fg).astype(np.int32, copy=False)


def partition_interfaces(partition: np.ndarray, width: float, gap: float = 0) -> np.ndarray:
    """1 on the interfaces between the parts of a partition, ``width`` px wide (uint8 YX).

    The pixels on both sides of a 4-neighbour edge between two different
    parts (both > 0) are the core of the interface, which is then widened to
    the pixels within ``(width - 1) / 2`` px of the core (width 3: 2 px on
    each side of the cut). With ``gap`` > 0, two parts at most ``gap`` px
    apart (a thin line of background between them, such as a cut of a
    machine-made mask) meet too: each part is first grown by ``gap / 2`` px
    into the background (:func:`skimage.segmentation.expand_labels`), and the
    interface covers the line between them.
    """
    part = np.asarray(partition)
    if gap > 0:
        part = expand_labels(part, distance=float(gap) / 2.0)
    core = np.zeros(part.shape, bool)
    for a, b, sa, sb in ((part[:, :-1], part[:, 1:], np.s_[:, :-1], np.s_[:, 1:]),
                         (part[:-1, :], part[1:, :], np.s_[:-1, :], np.s_[1:, :])):
        edge = (a != b) & (a > 0) & (b > 0)
        core[sa] |= edge
        core[sb] |= edge
    if not core.any():
        return core.astype(np.uint8)
    reach = (float(width) - 1.0) / 2.0
    if reach < 1.0:
        return core.astype(np.uint8)
    return ((ndi.distance_transform_edt(~core) <= reach) & (part > 0)).astype(np.uint8)


def points_of_instances(instances: np.ndarray, classes=None) -> np.ndarray:
    """One point per object of an instance map: its centroid, or the object's pixel nearest to it when
    the centroid falls outside the object (crescents, rings). (N, 3) float64, class 1 by default."""
    inst = np.asarray(instances)
    ids = np.unique(inst[inst > 0])
    if not len(ids):
        return empty_points()
    rows = []
    boxes = ndi.find_objects(inst.astype(np.int64))
    for i in ids:
        box = boxes[int(i) - 1]
        obj = inst[box] == i
        ys, xs = np.nonzero(obj)
        cy, cx = ys.mean(), xs.mean()
        iy, ix = int(round(cy)), int(round(cx))
        if not (0 <= iy < obj.shape[0] and 0 <= ix < obj.shape[1] and obj[iy, ix]):
            k = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
            cy, cx = float(ys[k]), float(xs[k])
        c = 1 if classes is None else int(classes.get(int(i), 1))
        rows.append((cy + box[0].start, cx + box[1].start, c))
    return np.asarray(rows, np.float64)
