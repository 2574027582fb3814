"""Geometry of ground-truth instance maps: class maps, touching objects, their interfaces.

Shared by the regimes' simulators (:mod:`.regimes`), the synthetic generator
and the benchmarks.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from skimage.segmentation import expand_labels, relabel_sequential

from .labels import integer_labels, smallest_uint


def check_instances(instances: np.ndarray) -> np.ndarray:
    inst = np.asarray(instances)
    if inst.ndim != 2:
        raise ValueError(f"instance labels must be a 2D (YX) array, got shape {inst.shape}")
    return integer_labels(inst, "instance labels")


def object_classes(ids: np.ndarray, classes: Mapping[int, int] | None) -> np.ndarray:
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
    inst = check_instances(instances)
    if classes is None:
        return (inst > 0).astype(np.uint8)
    seq, _, inverse = relabel_sequential(inst)
    ids = np.asarray(inverse[1:]) if seq.max() > 0 else np.zeros(0, dtype=np.int64)
    values = object_classes(ids, classes)
    lut = np.zeros(len(ids) + 1, dtype=smallest_uint(int(values.max()) if values.size else 1))
    lut[1:] = values
    return lut[seq]


def interface_edges(instances: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of 4-neighbour pixels that belong to two different objects.

    Returns ``(first, second, pairs)``: flat pixel indices of both sides of
    every such edge and, per edge, the two instance ids as ``(smaller, larger)``
    (shape ``(n, 2)``). Background (0) never forms an interface.
    """
    inst = check_instances(instances)
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


def close_gaps(inst: np.ndarray, max_gap: int) -> np.ndarray:
    """Grow every object by ceil(max_gap / 2) px so objects at most ``max_gap`` px apart touch."""
    return inst if max_gap <= 0 else expand_labels(inst, distance=(int(max_gap) + 1) // 2)


def touching_pairs(instances: np.ndarray, max_gap: int = 0) -> np.ndarray:
    """The ``(n, 2)`` array of distinct instance-id pairs that share a boundary (4-connectivity).

    With ``max_gap > 0``, objects separated by at most that many background
    pixels count as touching too.
    """
    inst = close_gaps(check_instances(instances), max_gap)
    return np.unique(interface_edges(inst)[2], axis=0).reshape(-1, 2)
