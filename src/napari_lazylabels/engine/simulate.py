"""Lazy labels simulated from ground-truth instance labels.

Used for the synthetic benchmark and for real data that comes with instance
labels only: from each object it makes what a biologist would paint (METHOD
section 1):

* detection: one blob well inside every object, valued by the object's class;
* separation: a scribble (1) along every boundary shared by two touching
  objects;
* segmentation: the exact class map, on the few images given strong labels.

:func:`annotation_cost` counts the effort such labels represent, for plots of
accuracy per unit of annotation effort.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np
from scipy import ndimage
from skimage.segmentation import expand_labels, relabel_sequential

from .grabcut import blob_components
from .metrics import integer_labels
from .tasks import DETECTION, SEGMENTATION, SEPARATION

#: Blob pixels are at least this deep inside their object (Euclidean distance
#: to the nearest pixel outside it, edge pixels being at depth 1), so a blob
#: never touches its object's boundary unless the object is too thin for it.
MIN_BLOB_DEPTH = 2.0

_EIGHT = np.ones((3, 3), dtype=bool)


def _check_instances(instances: np.ndarray) -> np.ndarray:
    inst = np.asarray(instances)
    if inst.ndim != 2:
        raise ValueError(f"instance labels must be a 2D (YX) array, got shape {inst.shape}")
    return integer_labels(inst, "instance labels")


def label_dtype(max_value: int) -> np.dtype:
    """uint8 for values up to 255, uint16 up to 65535, else uint32."""
    if max_value <= 255:
        return np.dtype(np.uint8)
    if max_value <= 65535:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def _class_values(ids: np.ndarray, classes: Mapping[int, int] | None) -> np.ndarray:
    """The class of each instance id in ``ids`` (class 1 where ``classes`` is None)."""
    if classes is None:
        return np.ones(len(ids), dtype=np.int64)
    missing = [int(i) for i in ids if int(i) not in classes]
    if missing:
        raise ValueError(f"no class given for instance ids {missing[:10]}")
    values = np.array([int(classes[int(i)]) for i in ids], dtype=np.int64)
    if values.size and values.min() < 1:
        raise ValueError("object classes must be 1..K (0 is background)")
    return values


def semantic_from_instances(instances: np.ndarray,
                            classes: Mapping[int, int] | None = None) -> np.ndarray:
    """Class map of an instance map: each object's pixels get its class, background 0.

    ``classes`` maps instance id -> class (1..K); ``None`` makes every object
    class 1. Returns uint8 (uint16 when a class exceeds 255).
    """
    inst = _check_instances(instances)
    if classes is None:
        return (inst > 0).astype(np.uint8)
    seq, _, inverse = relabel_sequential(inst)
    ids = np.asarray(inverse[1:]) if seq.max() > 0 else np.zeros(0, dtype=np.int64)
    values = _class_values(ids, classes)
    lut = np.zeros(len(ids) + 1, dtype=label_dtype(int(values.max()) if values.size else 1))
    lut[1:] = values
    return lut[seq]


def interface_edges(instances: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of 4-neighbour pixels that belong to two different objects.

    Returns ``(first, second, pairs)``: flat pixel indices of both sides of
    every such edge and, per edge, the two instance ids as ``(smaller, larger)``
    (shape ``(n, 2)``). Background (0) never forms an interface.
    """
    inst = _check_instances(instances)
    w = inst.shape[1]
    firsts, seconds, pairs = [], [], []
    for a, b, step in ((inst[:, :-1], inst[:, 1:], 1), (inst[:-1, :], inst[1:, :], w)):
        m = (a != b) & (a > 0) & (b > 0)
        ys, xs = np.nonzero(m)
        flat = ys.astype(np.int64) * w + xs
        firsts.append(flat)
        seconds.append(flat + step)
        va, vb = a[m].astype(np.int64), b[m].astype(np.int64)
        pairs.append(np.stack([np.minimum(va, vb), np.maximum(va, vb)], axis=1))
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(pairs)


def _close_gaps(inst: np.ndarray, max_gap: int) -> np.ndarray:
    """Grow every object by ceil(max_gap / 2) px so objects at most ``max_gap`` px apart touch."""
    return inst if max_gap <= 0 else expand_labels(inst, distance=(int(max_gap) + 1) // 2)


def touching_pairs(instances: np.ndarray, max_gap: int = 0) -> np.ndarray:
    """The ``(n, 2)`` array of distinct instance-id pairs that share a boundary (4-connectivity).

    With ``max_gap > 0``, objects separated by at most that many background
    pixels count as touching too.
    """
    inst = _close_gaps(_check_instances(instances), max_gap)
    return np.unique(interface_edges(inst)[2], axis=0).reshape(-1, 2)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], grid: int = 4) -> np.ndarray:
    """A smooth random field of roughly unit amplitude on ``shape``."""
    coarse = rng.standard_normal((grid, grid)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _blob(mask: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """One connected blob deep inside ``mask`` (whose border rows/cols must be 0)."""
    depth = ndimage.distance_transform_edt(mask)
    r = float(depth.max())
    if r < MIN_BLOB_DEPTH:
        # too thin for a blob that keeps off the boundary: its deepest pixel,
        # the one nearest the centroid
        ys, xs = np.nonzero(depth == r)
        cy, cx = np.argwhere(mask).mean(axis=0)
        i = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
        out = np.zeros_like(mask)
        out[ys[i], xs[i]] = True
        return out
    # the blob reaches a fraction ``fraction`` of the way from the object's
    # deepest point to its boundary: keep pixels deeper than (1 - fraction) * r,
    # with a smooth random wobble, never shallower than MIN_BLOB_DEPTH and
    # always including everything within 1 px of the maximal depth
    lo, hi = MIN_BLOB_DEPTH, max(MIN_BLOB_DEPTH, r - 1.0)
    thr = (1.0 - fraction) * r + 0.15 * r * fraction * _smooth_noise(rng, mask.shape)
    thr = np.clip(thr, lo, hi)
    blob = depth >= thr
    lab, _ = ndimage.label(blob, structure=_EIGHT)
    deepest = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return lab == lab[deepest]


def detection_blobs(instances: np.ndarray, classes: Mapping[int, int] | None = None, *,
                    rng: np.random.Generator | int | None = None,
                    blob_fraction: tuple[float, float] = (0.3, 0.6)) -> np.ndarray:
    """One blob per object, deep inside it, valued by the object's class.

    Each blob is the set of the object's pixels deeper than ``(1 - f)`` times
    the object's inradius (``f`` drawn uniformly from ``blob_fraction``, with a
    smooth random wobble), so its "radius" is about ``f`` times the object's.
    Blob pixels are at least :data:`MIN_BLOB_DEPTH` px deep (they never touch
    the object's boundary or the image edge); an object too thin for that gets
    its single deepest pixel.
    """
    inst = _check_instances(instances)
    rng = np.random.default_rng(rng)
    seq, _, inverse = relabel_sequential(inst)
    n = int(seq.max())
    ids = np.asarray(inverse[1:n + 1]) if n else np.zeros(0, dtype=np.int64)
    values = _class_values(ids, classes)
    out = np.zeros(inst.shape, dtype=label_dtype(int(values.max()) if n else 1))
    h, w = inst.shape
    for idx, sl in enumerate(ndimage.find_objects(seq), start=1):
        if sl is None:
            continue
        # one pixel of context on each side, padded with 0 at the image edge
        y0, y1 = max(sl[0].start - 1, 0), min(sl[0].stop + 1, h)
        x0, x1 = max(sl[1].start - 1, 0), min(sl[1].stop + 1, w)
        mask = np.pad(seq[y0:y1, x0:x1] == idx, 1)
        f = float(rng.uniform(*blob_fraction))
        blob = _blob(mask, rng, f)[1:-1, 1:-1]
        out[y0:y1, x0:x1][blob] = values[idx - 1]
    return out


def interface_scribbles(instances: np.ndarray, *, rng: np.random.Generator | int | None = None,
                        scribble_width: float = 3, interface_coverage: float = 1.0,
                        max_gap: int = 0) -> np.ndarray:
    """Scribbles (1) along boundaries shared by two touching objects (uint8).

    A pixel is painted when its centre lies within ``scribble_width / 2`` of
    the boundary between two objects (the boundary runs between pixel
    centres; so a width of 3 paints 2 px on each side of it). Only a random
    ``interface_coverage`` fraction of the touching pairs is painted (all of
    them at 1.0), as a lazier annotator would.

    Ground truth of real data often leaves a thin background gap between
    neighbours that touch in the image (E. coli in ../shared/data: 3-4 px).
    With ``max_gap > 0`` objects at most that far apart count as touching:
    the interface is taken midway across the gap and the scribble spans the
    gap's background plus ``scribble_width / 2`` on each side.
    """
    inst = _check_instances(instances)
    rng = np.random.default_rng(rng)
    first, second, pairs = interface_edges(_close_gaps(inst, max_gap))
    core = np.zeros(inst.size, dtype=bool)
    if len(pairs):
        uniq, which = np.unique(pairs, axis=0, return_inverse=True)
        which = which.reshape(-1)
        n_keep = int(round(float(np.clip(interface_coverage, 0.0, 1.0)) * len(uniq)))
        keep = np.zeros(len(uniq), dtype=bool)
        keep[rng.permutation(len(uniq))[:n_keep]] = True
        sel = keep[which]
        core[first[sel]] = True
        core[second[sel]] = True
    core = core.reshape(inst.shape)
    if not core.any():
        return core.astype(np.uint8)
    # core pixels are 0.5 px from the boundary; a pixel at distance d from the
    # core is d + 0.5 from it
    if max_gap > 0:
        # the interface lies midway across the gap: bridge the gap's background
        bridge = (inst == 0) & (ndimage.distance_transform_edt(~core) <= (int(max_gap) + 1) // 2)
        core = core | bridge
    reach = (float(scribble_width) - 1.0) / 2.0
    if reach < 1.0:
        return core.astype(np.uint8)
    return (ndimage.distance_transform_edt(~core) <= reach).astype(np.uint8)


def simulate_lazy_labels(instances: np.ndarray, classes: Mapping[int, int] | None = None, *,
                         rng: np.random.Generator | int | None,
                         strong: bool = False,
                         blob_fraction: tuple[float, float] = (0.3, 0.6),
                         scribble_width: float = 3,
                         interface_coverage: float = 1.0,
                         max_gap: int = 0) -> dict[str, np.ndarray | None]:
    """The lazy labels a biologist would paint for these ground-truth instances.

    Args:
        instances: YX integer instance map, 0 = background, ids arbitrary.
        classes: instance id -> class (1..K); ``None``: every object is class 1.
        rng: a numpy Generator (or seed) for the blob sizes and wobble and the
            choice of covered interfaces.
        strong: also give the exact class map (a strong-label image).
        blob_fraction: range of a blob's size relative to its object (see
            :func:`detection_blobs`).
        scribble_width: brush width of the interface scribbles, px.
        interface_coverage: fraction of touching pairs that get a scribble.
        max_gap: objects at most this many background px apart count as
            touching (for ground truth that leaves gaps between neighbours).

    Returns:
        ``{"detection": blobs, "separation": scribbles, "segmentation": class
        map or None}``, uint8 arrays (uint16 for more than 255 classes).
    """
    inst = _check_instances(instances)
    rng = np.random.default_rng(rng)
    return {
        DETECTION: detection_blobs(inst, classes, rng=rng, blob_fraction=blob_fraction),
        SEPARATION: interface_scribbles(inst, rng=rng, scribble_width=scribble_width,
                                        interface_coverage=interface_coverage, max_gap=max_gap),
        SEGMENTATION: semantic_from_instances(inst, classes) if strong else None,
    }


def _components(layer: np.ndarray | None) -> int:
    """Connected components (8-connectivity), counted per label value."""
    if layer is None:
        return 0
    return int(blob_components(layer)[0].max())


def annotation_cost(labels: Mapping[str, np.ndarray | None],
                    instances: np.ndarray | None = None) -> dict[str, int]:
    """The effort a set of lazy labels for one image represents.

    Returns:
        ``painted_pixels``: non-zero pixels over all layers; ``strokes``:
        connected components of blobs plus of scribbles (one brush stroke
        each); ``objects_traced``: objects outlined in the strong masks (the
        instances of ``instances`` inside them when given, else connected
        components per class, which counts touching objects of one class as
        one); plus ``blob_pixels``, ``scribble_pixels``, ``mask_pixels``,
        ``blobs``, ``scribbles`` and ``strong_images`` (0 or 1).
    """
    det, sep, seg = labels.get(DETECTION), labels.get(SEPARATION), labels.get(SEGMENTATION)
    count = lambda a: 0 if a is None else int(np.count_nonzero(a))  # noqa: E731
    blobs = _components(det)
    scribbles = _components(None if sep is None else np.asarray(sep) > 0)
    strong = seg is not None and bool(np.any(seg))
    if not strong:
        traced = 0
    elif instances is not None:
        ids = np.unique(np.asarray(instances)[np.asarray(seg) > 0])
        traced = int(np.count_nonzero(ids))
    else:
        traced = _components(seg)
    return {
        "painted_pixels": count(det) + count(sep) + count(seg),
        "strokes": blobs + scribbles,
        "objects_traced": traced,
        "blob_pixels": count(det),
        "scribble_pixels": count(sep),
        "mask_pixels": count(seg),
        "blobs": blobs,
        "scribbles": scribbles,
        "strong_images": int(strong),
    }


def total_annotation_cost(costs: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """Sum :func:`annotation_cost` results over images."""
    total: dict[str, int] = {}
    for c in costs:
        for k, v in c.items():
            total[k] = total.get(k, 0) + int(v)
    return total
