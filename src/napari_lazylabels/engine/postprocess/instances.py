"""Semantic and instance maps from the network's probabilities (METHOD section 5).

The tiled inference gives a dict ``task name -> float32 (C, Y, X)`` of softmax
probabilities; :func:`~napari_lazylabels.engine.tasks.heads_by_role` keys
them by what each head means (the roles of :mod:`napari_lazylabels.engine.tasks`),
so this module never names a task. It turns them into

* a semantic class map: the argmax of the ``foreground`` head or, with a
  ``probability_threshold``, the most likely object class where the head's
  probability of "not background" exceeds it (0 elsewhere);
* an instance map, by seeded watershed:

  1. foreground = semantic class > 0;
  2. interfaces = ``boundaries`` probability of class 1 > ``interface_threshold``
     (no interfaces where the model has no boundary head);
  3. region = foreground minus interfaces;
  4. seeds = connected components of the seed head's foreground (argmax of
     ``seeds``, or of ``partial``, > 0) inside the region; seeds
     smaller than ``min_seed_area`` are dropped, and each one that is left
     reaches over the region's pixels where the seed head's probability of an
     object exceeds ``seed_join_threshold`` (0.3) and that connect to it, so the
     pieces of one object's seed (a long rod's, broken where the head
     hesitates) join into one seed (hysteresis). Without a seed head, seeds are
     the peaks of the region's (slightly smoothed) distance transform, at
     least ``min_peak_distance`` apart (the usual watershed fallback for convex
     objects such as nuclei; it may split elongated or irregular objects and
     merge touching ones without a neck);
  5. seeded watershed inside the region on the foreground head's background
     probability plus a small distance term ``1 / (1 + d)`` (``d`` = distance
     to the region's edge), which breaks the ties of a flat probability so that
     touching objects without a predicted interface split at their neck
     (``seed_pull`` subtracts the seed head's probability as well: tried, not
     the default, see :func:`instances_from_probabilities`);
  6. region components that no seed reached become instances of their own;
  7. a second watershed, restricted to the foreground, gives the interface
     pixels to the instance they touch, so objects keep their full extent;
  8. instances smaller than ``min_size`` are merged into the neighbour they
     share the longest border with, or dropped when they touch none;
  9. instance ids are made sequential (1..N, 0 = background).

The class of an instance is the majority semantic class inside it
(:func:`instance_classes`).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.segmentation import relabel_sequential, watershed

from ...errors import LazyLabelsError
from ..labels import drop_small
from ..tasks import BOUNDARIES, FOREGROUND, PARTIAL, SEEDS
from .settings import DISTANCE, NO_SEED_JOIN, InstanceParams

_CROSS = ndi.generate_binary_structure(2, 1)
_SQUARE = ndi.generate_binary_structure(2, 2)


def head(heads: Mapping[str, np.ndarray], name: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
    """The (C, Y, X) probabilities of the head of role ``name`` as an array, or None."""
    p = heads.get(name)
    if p is None:
        return None
    p = np.asarray(p)
    if p.ndim != 3 or p.shape[0] < 2:
        raise LazyLabelsError(f"probabilities of {name!r} have shape {p.shape}; expected (C>=2, Y, X)",
                              source=name)
    if shape is not None and p.shape[1:] != shape:
        raise LazyLabelsError(f"probabilities of {name!r} have YX shape {p.shape[1:]}; expected {shape}",
                              source=name)
    return p


def foreground_head(heads: Mapping[str, np.ndarray]) -> np.ndarray:
    """The foreground head's probabilities; a model without one cannot make instances."""
    seg = head(heads, FOREGROUND)
    if seg is None:
        raise LazyLabelsError(
            f"no {FOREGROUND!r} head among the probabilities (got: {', '.join(sorted(heads)) or 'nothing'})",
            source="probabilities")
    return seg


def class_map_of(seg: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Class map (int32 YX, 0 = background) of a (C, Y, X) head: its argmax, or with a ``threshold``
    the most likely class 1..C-1 where P(not background) > ``threshold``."""
    seg = np.asarray(seg)
    if threshold is None:
        return np.argmax(seg, axis=0).astype(np.int32)
    fg = (1.0 - seg[0]) > threshold
    classes = np.argmax(seg[1:], axis=0).astype(np.int32) + 1 if seg.shape[0] > 2 else np.ones(fg.shape, np.int32)
    return np.where(fg, classes, 0).astype(np.int32)


def semantic_from_probabilities(probs: Mapping[str, np.ndarray], threshold: float | None = None) -> np.ndarray:
    """Class map (int32 YX, 0 = background) of the segmentation head (see :func:`class_map_of`)."""
    return class_map_of(foreground_head(probs), threshold)


def instance_classes(instances: np.ndarray, semantic: np.ndarray) -> dict[int, int]:
    """Class of each instance: the majority semantic class (> 0) inside it.

    Background pixels (class 0) inside an instance are ignored unless the
    instance has no other class, in which case its class is 0.
    Returns ``{instance id: class}`` for every id > 0 present.
    """
    inst = np.asarray(instances).ravel().astype(np.int64)
    sem = np.asarray(semantic).ravel().astype(np.int64)
    if inst.shape != sem.shape:
        raise ValueError(f"instances {np.shape(instances)} and semantic {np.shape(semantic)} differ in shape")
    keep = inst > 0
    if not keep.any():
        return {}
    inst, sem = inst[keep], np.clip(sem[keep], 0, None)
    n_cls = int(sem.max()) + 1
    ids = np.unique(inst)
    idx = np.searchsorted(ids, inst)
    counts = np.bincount(idx * n_cls + sem, minlength=len(ids) * n_cls).reshape(len(ids), n_cls)
    counts[:, 0] = np.where(counts[:, 1:].sum(axis=1) > 0, -1, counts[:, 0])  # class 0 only as last resort
    return {int(i): int(c) for i, c in zip(ids, counts.argmax(axis=1))}


def tie_free(elevation: np.ndarray) -> np.ndarray:
    """The elevation's ranks (float64), equal values ordered row by row: a watershed on it floods
    pixels in the same order on a crop around an object as on the whole image, so block-wise
    post-processing (:mod:`..blockwise`) gives the same objects. (On equal values skimage's
    heap pops its seeds in an order that depends on everything else in the image.)"""
    flat = np.asarray(elevation).ravel()
    ranks = np.empty(flat.size, np.float64)
    ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size, dtype=np.float64)
    return ranks.reshape(np.shape(elevation))


def _seed_head(probs: Mapping[str, np.ndarray], params: InstanceParams, shape) -> np.ndarray | None:
    """The head the seeds come from (``seed_source``, else the other seed head), or None."""
    if params.seed_source == DISTANCE:
        return None
    for name in (params.seed_source, PARTIAL if params.seed_source == SEEDS else SEEDS):
        seed_head = head(probs, name, shape)
        if seed_head is not None:
            return seed_head
    return None


def _seeds(seed_head: np.ndarray | None, region: np.ndarray, dist: np.ndarray,
           params: InstanceParams) -> np.ndarray:
    """Labelled seeds inside ``region`` (int32, 0 = no seed)."""
    shape = region.shape
    if seed_head is not None:
        mask = (np.argmax(seed_head, axis=0) > 0) & region
        seeds, _ = ndi.label(mask, structure=_CROSS)
        drop_small(seeds, params.min_seed_area)
        return _joined(seeds, seed_head, region, params.seed_join_threshold)
    # Fallback: peaks of the distance transform. A component whose peak is
    # suppressed by a taller neighbour's within min_peak_distance gets no seed
    # and becomes an instance of its own later (orphan step).
    # The distance is smoothed first: the plateaus of a discrete distance
    # transform (e.g. along an ellipse's major axis) would give several peaks.
    seeds = np.zeros(shape, np.int32)
    smooth = ndi.gaussian_filter(dist, 1.0)
    peaks = peak_local_max(smooth, min_distance=params.min_peak_distance, threshold_abs=0.5,
                           exclude_border=False)
    if len(peaks):
        seeds[tuple(peaks.T)] = 1
        # Plateau peaks (several pixels at the same height) form one seed.
        seeds, _ = ndi.label(ndi.binary_dilation(seeds, _SQUARE) & region, structure=_SQUARE)
    return seeds.astype(np.int32, copy=False)


def _joined(seeds: np.ndarray, seed_head: np.ndarray, region: np.ndarray, low: float) -> np.ndarray:
    """The seeds grown over the pixels of ``region`` where the seed head's probability of an object
    exceeds ``low`` and connected to them; seeds that such pixels connect become one seed (hysteresis
    thresholding, high: the argmax). From :data:`NO_SEED_JOIN` (0.5) on, the seeds as they are."""
    if not seeds.any() or low >= NO_SEED_JOIN:
        return seeds.astype(np.int32, copy=False)
    weak = ((1.0 - seed_head[0]) > low) & region
    weak |= seeds > 0
    parts, n = ndi.label(weak, structure=_CROSS)
    held = np.zeros(n + 1, bool)
    held[parts[seeds > 0]] = True
    held[0] = False
    joined = np.where(held[parts], parts, 0)
    return relabel_sequential(joined)[0].astype(np.int32, copy=False)


def _merge_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Merge instances smaller than ``min_size`` into their longest-border neighbour, or drop them."""
    n = int(labels.max())
    if n == 0 or min_size <= 1:
        return labels
    area = np.bincount(labels.ravel(), minlength=n + 1)
    small = [i for i in np.argsort(area, kind="stable") if i > 0 and 0 < area[i] < min_size]
    if not small:
        return labels
    boxes = ndi.find_objects(labels)
    h, w = labels.shape
    for i in small:
        if area[i] >= min_size or boxes[i - 1] is None:  # grew meanwhile, or vanished
            continue
        sy, sx = boxes[i - 1]
        y0, y1 = max(sy.start - 1, 0), min(sy.stop + 1, h)
        x0, x1 = max(sx.start - 1, 0), min(sx.stop + 1, w)
        crop = labels[y0:y1, x0:x1]
        own = crop == i
        if not own.any():
            continue
        ring = ndi.binary_dilation(own, _CROSS) & ~own
        neigh = crop[ring]
        neigh = neigh[(neigh > 0) & (neigh != i)]
        if neigh.size:
            vals, cnt = np.unique(neigh, return_counts=True)
            target = int(vals[cnt.argmax()])
            crop[own] = target
            area[target] += area[i]
            # The target's box grows to cover the merged piece.
            ty, tx = boxes[target - 1]
            boxes[target - 1] = (slice(min(ty.start, sy.start), max(ty.stop, sy.stop)),
                                 slice(min(tx.start, sx.start), max(tx.stop, sx.stop)))
        else:
            crop[own] = 0
        area[i] = 0
    return labels


def instances_from_probabilities(probs: Mapping[str, np.ndarray], params: InstanceParams | None = None, *,
                                 seed_pull: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Semantic class map and instance map from the network's probabilities.

    Args:
        probs: ``head role -> (C, Y, X)`` softmax probabilities. ``foreground``
            is required; ``seeds`` / ``partial`` and ``boundaries`` (interfaces)
            are optional, see the module doc.
        params: settings; defaults to :class:`InstanceParams` ().
        seed_pull: how much the seed head's probability of an object lowers the watershed's elevation
            (step 5), so that each object floods out from its core and touching objects part where neither
            one's seed is likely. 0 (the default) leaves it out. Rods lying side by side, whose joint
            region has its distance ridge on the line where they touch, are flooded along that line
            from one seed without it; with 1 they part between their seeds. On the models of machine-made
            labels it changed AP50 by -0.02 to +0.12 (one E. coli seed; docs/benchmarks.md, "The
            instance step without seeds"), no gain across the sets, so it is a benchmark variant only.

    Returns:
        ``(semantic, instances)``, both int32 YX; ``instances`` holds 0 for
        background and 1..N for the objects.
    """
    params = params or InstanceParams()
    seg = foreground_head(probs)
    shape = seg.shape[1:]
    semantic = class_map_of(seg, params.probability_threshold)
    fg = semantic > 0
    if not fg.any():
        return semantic, np.zeros(shape, np.int32)

    sep = head(probs, BOUNDARIES, shape)
    if sep is not None:
        region = fg & (sep[1] > params.interface_threshold)
        np.logical_not(region, out=region)
        region &= fg
    else:
        region = fg

    dist = ndi.distance_transform_edt(region).astype(np.float32)
    seed_head = _seed_head(probs, params, shape)
    elevation = seg[0].astype(np.float32, copy=True)
    elevation += 1.0 / (1.0 + dist)
    if seed_head is not None and seed_pull:
        elevation -= seed_pull * (1.0 - seed_head[0])
    elevation = tie_free(elevation)

    seeds = _seeds(seed_head, region, dist, params)
    labels = watershed(elevation, markers=seeds, mask=region) if seeds.any() else np.zeros(shape, np.int32)
    labels = labels.astype(np.int32, copy=False)

    # Region components no seed reached: instances of their own.
    orphan = region & (labels == 0)
    if orphan.any():
        extra, _ = ndi.label(orphan, structure=_CROSS)
        labels[orphan] = extra[orphan] + labels.max()

    # Interface pixels (foreground outside the region) go to the instance they touch.
    rest = fg & (labels == 0)
    if rest.any():
        if labels.any():
            labels = watershed(elevation, markers=labels, mask=fg).astype(np.int32, copy=False)
        rest = fg & (labels == 0)  # foreground components made only of interface pixels
        if rest.any():
            extra, _ = ndi.label(rest, structure=_CROSS)
            labels[rest] = extra[rest] + labels.max()

    labels = _merge_small(labels, params.min_size)
    labels, _, _ = relabel_sequential(labels)
    return semantic, labels.astype(np.int32, copy=False)
