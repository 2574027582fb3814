"""Level-set growth of objects (Ke et al. 2021; METHOD section 4), and the final growth at inference.

One growth step of an object:

    S^r    = the object's current region (round 0: its blob)
    Shat   = the predicted foreground region that holds it
    phi(i) = d(i, S^r) - lambda * d(i, complement(Shat))
    S^r+1  = { i : phi(i) <= 0 }

``d(i, A)`` is the Euclidean distance from pixel centre ``i`` to the nearest
pixel of ``A`` (0 inside ``A``). Hence ``lambda = 0`` keeps ``S``, ``lambda ->
inf`` gives ``S | Shat``, a larger lambda grows more, and growth slows near the
boundary of ``Shat`` (a pixel next to ``S`` joins only where it lies at least
``1 / lambda`` px deep inside ``Shat``; so with pixel distances the growth of a
step stops about ``1 / lambda`` px inside the predicted boundary).

Several objects (:func:`grow_objects`): the predicted foreground is split by a
seeded watershed with a one-pixel watershed line, seeded by the current
regions, so that a foreground component touching several objects is cut
between them (the paper's "removing those pixels lying at the middle of two
neighbouring regions"); each object then grows only inside its own part and
keeps its class. Objects never merge.

The recursive approximation regime (:mod:`napari_lazylabels.engine.regimes.recursive`)
grows its training targets with these functions between rounds; a model it
trained gets :func:`final_growth` as its post-processing
(:class:`~.settings.PostProcessing` ``method="growth"``). Heads are keyed by
role (:mod:`napari_lazylabels.engine.tasks`), never by task name.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import expand_labels, watershed

from ..labels import blob_components, class_map, drop_small, relabel_with_classes
from ..tasks import BOUNDARIES, PARTIAL, SEEDS
from .instances import class_map_of, foreground_head, instances_from_probabilities, tie_free
from .settings import InstanceParams


def level_set(region: np.ndarray, predicted: np.ndarray, lam: float) -> np.ndarray:
    """``phi = d(i, S) - lambda * d(i, complement(Shat))`` (float64, YX).

    ``d`` is the Euclidean distance between pixel centres, 0 inside the set.
    Distances to an empty set are infinite.
    """
    s = np.asarray(region, bool)
    shat = np.asarray(predicted, bool)
    d_s = ndi.distance_transform_edt(~s) if s.any() else np.full(s.shape, np.inf)
    if not lam or not shat.any():
        return d_s.astype(np.float64)
    if math.isinf(lam):
        return np.where(shat, -np.inf, d_s)
    d_out = ndi.distance_transform_edt(shat) if (~shat).any() else np.full(s.shape, np.inf)
    return d_s - lam * d_out


def grow_region(region: np.ndarray, predicted: np.ndarray, lam: float) -> np.ndarray:
    """One growth step of one object: ``{i : phi(i) <= 0}`` (bool YX).

    Args:
        region: S^r, the object's current approximation.
        predicted: Shat, the predicted region that holds it.
        lam: lambda >= 0 (``math.inf`` allowed).
    """
    s = np.asarray(region, bool)
    if lam == 0 or not s.any():
        return s.copy()
    return level_set(s, predicted, lam) <= 1e-9


def split_foreground(instances: np.ndarray, foreground: np.ndarray,
                     elevation: np.ndarray | None = None) -> np.ndarray:
    """The part of the foreground that belongs to each object.

    A seeded watershed inside ``foreground | instances > 0``, seeded by the
    objects of ``instances``, with a one-pixel watershed line: a foreground
    component that touches one object becomes all that object's; one that
    touches several is cut between them; one that touches none stays 0.
    ``elevation`` (YX float) decides where cuts go; default: minus the distance
    to the background, so cuts run along necks.

    Returns an int32 map: object id where a pixel is that object's (its own
    pixels included), 0 elsewhere and on the cut lines.
    """
    inst = np.asarray(instances).astype(np.int32, copy=False)
    fg = np.asarray(foreground, bool)
    mask = fg | (inst > 0)
    if not inst.any():
        return np.zeros(inst.shape, np.int32)
    if elevation is None:
        elevation = -ndi.distance_transform_edt(mask)
    parts = watershed(tie_free(elevation), markers=inst, mask=mask, watershed_line=True)
    return parts.astype(np.int32, copy=False)


def grow_objects(instances: np.ndarray, foreground: np.ndarray, lam: float,
                 elevation: np.ndarray | None = None, gap: int = 0) -> np.ndarray:
    """One growth step of every object of an instance map (METHOD 4, several objects).

    Each object ``k`` grows by :func:`grow_region` with ``Shat`` = its own
    part of the foreground (:func:`split_foreground`). Objects keep their ids
    and never take pixels of another object, so none merge.

    Args:
        instances: int YX, 0 = none, k = object k's current approximation.
        foreground: bool YX, the predicted foreground (any class).
        lam: lambda.
        elevation: where to cut shared foreground components (see
            :func:`split_foreground`).
        gap: newly grown pixels within ``gap`` px (chessboard distance) of
            another object are left out, so touching objects stay about
            ``2 * gap + 1`` px apart (0: only the one-pixel cut line).

    Returns:
        the grown instance map (int32), a superset of ``instances``.
    """
    inst = np.asarray(instances).astype(np.int32, copy=True)
    if lam == 0 or not inst.any():
        return inst
    fg = np.asarray(foreground, bool)
    parts = split_foreground(inst, fg, elevation)
    own = np.where(fg, parts, 0)
    union = np.where(inst > 0, inst, own)
    h, w = inst.shape
    out = inst.copy()
    for k, box in enumerate(ndi.find_objects(union), start=1):
        if box is None:
            continue
        y0, y1 = max(box[0].start - 1, 0), min(box[0].stop + 1, h)
        x0, x1 = max(box[1].start - 1, 0), min(box[1].stop + 1, w)
        s = inst[y0:y1, x0:x1] == k
        if not s.any():
            continue
        grown = grow_region(s, own[y0:y1, x0:x1] == k, lam)
        dst = out[y0:y1, x0:x1]
        dst[grown & (dst == 0)] = k
    if gap > 0:
        new = (out > 0) & (inst == 0)
        if new.any():
            size = 2 * int(gap) + 1
            hi = ndi.maximum_filter(out, size=size)
            lo = ndi.minimum_filter(np.where(out > 0, out, np.iinfo(np.int32).max), size=size)
            out[new & ((hi != out) | (lo != out))] = 0
    return out


def seeds_from_classes(class_map: np.ndarray, min_area: int = 0) -> tuple[np.ndarray, dict[int, int]]:
    """Objects of a class map: 8-connected regions of one class value, numbered 1..n.

    Regions smaller than ``min_area`` px are dropped. Returns the instance map
    and ``{id: class}``.
    """
    comps, classes = blob_components(np.asarray(class_map))
    return relabel_with_classes(drop_small(comps, min_area), classes)


def split_elevation(heads: Mapping[str, np.ndarray]) -> np.ndarray:
    """Where to cut shared foreground: the foreground head's background probability, plus
    the boundary head's interface probability where the model has one."""
    elev = np.asarray(foreground_head(heads)[0], np.float32).copy()
    sep = heads.get(BOUNDARIES)
    if sep is not None:
        elev += np.asarray(sep[1], np.float32)
    return elev


def grow_from_probabilities(instances: np.ndarray, heads: Mapping[str, np.ndarray], lam: float,
                            gap: int = 0) -> np.ndarray:
    """:func:`grow_objects` with ``Shat`` and the cuts from a model's heads (keyed by role)."""
    fg = np.argmax(foreground_head(heads), axis=0) > 0
    return grow_objects(instances, fg, lam, split_elevation(heads), gap)


# --- inference ---------------------------------------------------------------------------

def split_by_seeds(objects: np.ndarray, classes: Mapping[int, int], seeds: np.ndarray,
                   elevation: np.ndarray | None = None) -> tuple[np.ndarray, dict[int, int]]:
    """Split every object that holds more than one seed (the multi-object splitting
    applied to the objects themselves): a seeded watershed inside the object with
    a one-pixel cut line; each part keeps the object's class.

    Returns the new object map (ids 1..n) and ``{id: class}``.
    """
    obj = np.asarray(objects).astype(np.int32, copy=False)
    markers = np.where(obj > 0, np.asarray(seeds), 0).astype(np.int32)
    both = (obj > 0) & (markers > 0)
    pairs = np.unique(np.stack([obj[both], markers[both]], axis=1), axis=0) if both.any() else np.zeros((0, 2), int)
    ids, counts = np.unique(pairs[:, 0], return_counts=True) if len(pairs) else (np.zeros(0, int), [])
    multi = ids[np.asarray(counts) > 1]
    if not len(multi):
        return obj, dict(classes)
    in_multi = np.isin(obj, multi)
    parts = split_foreground(np.where(in_multi, markers, 0), in_multi, elevation)
    out = np.where(in_multi, 0, obj)
    new_classes = {k: c for k, c in classes.items() if k not in set(multi.tolist())}
    offset = int(obj.max())
    sel = in_multi & (parts > 0)
    out[sel] = parts[sel] + offset
    for marker in np.unique(parts[sel]):
        owner = int(np.bincount(obj[parts == marker]).argmax())
        new_classes[int(marker) + offset] = classes.get(owner, 1)
    return relabel_with_classes(out, new_classes)


def final_growth(heads: Mapping[str, np.ndarray], lambda_final: float,
                 params: InstanceParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The paper's last growth at inference: the partial-mask head's objects grown with
    ``lambda_final`` inside the foreground head's foreground.

    Objects (the seeds of the growth) are the 8-connected regions of one
    class of the partial-mask head's argmax, cut by the predicted interfaces
    (boundary probability > ``params.interface_threshold``), at least
    ``params.min_seed_area`` px; each keeps its class. A partial-mask
    region that holds more than one blob of the seeds head is split between
    them (:func:`split_by_seeds`): grown partial masks of touching objects
    lie close together and their head may join them, while the blobs stay
    apart. Grown objects smaller than ``params.min_size`` are dropped. The
    semantic map is the class map of the grown objects; foreground no seed
    reaches is left out. A model without the partial-mask head grows its
    blobs instead, and one with neither head gets the seeded watershed.

    Returns:
        ``(semantic, instances)``, both int32 YX.
    """
    params = params or InstanceParams()
    seed_head = heads.get(PARTIAL)
    if seed_head is None:
        seed_head = heads.get(SEEDS)
    if seed_head is None:
        return instances_from_probabilities(heads, params)
    sep = heads.get(BOUNDARIES)
    cut = None if sep is None else np.asarray(sep[1]) > params.interface_threshold
    approx = np.argmax(seed_head, axis=0)
    if cut is not None:
        approx[cut] = 0
    seeds, classes = seeds_from_classes(approx, params.min_seed_area)
    blobs_head = heads.get(SEEDS)
    elevation = split_elevation(heads)
    if blobs_head is not None and seed_head is not blobs_head and seeds.any():
        blobs = np.argmax(blobs_head, axis=0)
        if cut is not None:
            blobs[cut] = 0
        blob_ids, _ = seeds_from_classes(blobs, params.min_seed_area)
        seeds, classes = split_by_seeds(seeds, classes, blob_ids, elevation)
    fg = class_map_of(foreground_head(heads), params.probability_threshold) > 0
    grown = grow_objects(seeds, fg, lambda_final, elevation)
    # the cut lines between touching objects (foreground pixels next to two
    # objects) go to a neighbour
    if grown.any():
        big = np.iinfo(np.int32).max
        hi = ndi.maximum_filter(grown, size=3)
        lo = ndi.minimum_filter(np.where(grown > 0, grown, big), size=3)
        line = fg & (grown == 0) & (lo < big) & (hi != lo)
        if line.any():
            grown = np.where(line, expand_labels(grown, 1), grown)
    grown, classes = relabel_with_classes(drop_small(grown, params.min_size), classes)
    return class_map(grown, classes, np.int32), grown
