"""Accuracy of segmentations against ground truth.

All functions take YX integer label arrays (0 = background): instance maps
(ids arbitrary) or class maps. Conventions for empty images, so that no
metric ever returns NaN:

* Dice (foreground or per class): 1.0 when both are empty, 0.0 when only one is.
* AP (TP / (TP + FP + FN)): 1.0 when neither has an object.
* GlaS object Dice: 1.0 when neither has an object, 0.0 when only one has.
* GlaS object Hausdorff: 0.0 when neither has an object; the image diagonal
  (the largest distance possible) when only one has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import directed_hausdorff
from skimage.segmentation import relabel_sequential

from .labels import drop_small, integer_labels

#: IoU thresholds of the usual AP sweep (0.50, 0.55, ..., 0.95).
AP_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def _same_shape(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction has shape {pred.shape} but ground truth {gt.shape}")


def _dice_masks(p: np.ndarray, g: np.ndarray) -> float:
    sp, sg = int(np.count_nonzero(p)), int(np.count_nonzero(g))
    if sp + sg == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(p & g)) / (sp + sg)


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice of the foregrounds (label > 0); 1.0 when both are empty."""
    pred, gt = integer_labels(pred, "prediction"), integer_labels(gt, "ground truth")
    _same_shape(pred, gt)
    return _dice_masks(pred > 0, gt > 0)


def dice_per_class(pred_sem: np.ndarray, gt_sem: np.ndarray, n_classes: int) -> dict[int, float]:
    """Dice of each class 1..n_classes of two class maps; 1.0 for a class absent from both."""
    pred_sem, gt_sem = integer_labels(pred_sem, "prediction"), integer_labels(gt_sem, "ground truth")
    _same_shape(pred_sem, gt_sem)
    return {k: _dice_masks(pred_sem == k, gt_sem == k) for k in range(1, int(n_classes) + 1)}


@dataclass
class _Overlaps:
    """Sparse overlap table of two instance maps (objects renumbered from 0)."""

    pred_ids: np.ndarray    # original id of each predicted object
    gt_ids: np.ndarray
    pred_area: np.ndarray
    gt_area: np.ndarray
    pi: np.ndarray          # per overlapping pair: predicted object index
    gi: np.ndarray          # ground-truth object index
    inter: np.ndarray       # intersection area
    iou: np.ndarray
    pred_seq: np.ndarray    # the maps renumbered 1..n
    gt_seq: np.ndarray

    @property
    def n_pred(self) -> int:
        return len(self.pred_ids)

    @property
    def n_gt(self) -> int:
        return len(self.gt_ids)


def _renumber(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels 1..n and the original id of each (index 0 = object 1)."""
    seq, _, inverse = relabel_sequential(a)
    n = int(seq.max()) if seq.size else 0
    ids = np.asarray(inverse)[1:n + 1] if n else np.zeros(0, dtype=np.int64)
    return seq, ids


def _overlaps(pred: np.ndarray, gt: np.ndarray) -> _Overlaps:
    """Areas, intersections and IoUs of all overlapping pairs, from the joint histogram."""
    pred, gt = integer_labels(pred, "prediction"), integer_labels(gt, "ground truth")
    _same_shape(pred, gt)
    p, pred_ids = _renumber(pred)
    g, gt_ids = _renumber(gt)
    n_p, n_g = len(pred_ids), len(gt_ids)
    p_seq, g_seq = p, g
    p, g = p.ravel().astype(np.int64), g.ravel().astype(np.int64)
    pred_area = np.bincount(p, minlength=n_p + 1)[1:]
    gt_area = np.bincount(g, minlength=n_g + 1)[1:]
    both = (p > 0) & (g > 0)
    keys, inter = np.unique((p[both] - 1) * n_g + (g[both] - 1), return_counts=True)
    pi, gi = (keys // n_g, keys % n_g) if n_g else (keys, keys)
    union = pred_area[pi] + gt_area[gi] - inter
    iou = inter / np.maximum(union, 1)
    return _Overlaps(pred_ids, gt_ids, pred_area, gt_area, pi, gi, inter, iou, p_seq, g_seq)


class Matching(NamedTuple):
    """One-to-one matching of predicted to ground-truth objects at an IoU threshold."""

    tp: int
    fp: int
    fn: int
    pairs: list[tuple[int, int, float]]   # (predicted id, ground-truth id, IoU)


def _match(ov: _Overlaps, threshold: float) -> Matching:
    sel = ov.iou >= threshold
    rows, cols, w = ov.pi[sel], ov.gi[sel], ov.iou[sel]
    if len(rows) and (len(np.unique(rows)) < len(rows) or len(np.unique(cols)) < len(cols)):
        # some object has several candidates (only possible below IoU 0.5 or
        # at exactly 0.5): the matching of largest total IoU
        ur, ri = np.unique(rows, return_inverse=True)
        uc, ci = np.unique(cols, return_inverse=True)
        m = np.zeros((len(ur), len(uc)))
        m[ri, ci] = w
        r, c = linear_sum_assignment(m, maximize=True)
        ok = m[r, c] > 0
        rows, cols, w = ur[r[ok]], uc[c[ok]], m[r[ok], c[ok]]
    pairs = [(int(ov.pred_ids[r]), int(ov.gt_ids[c]), float(x)) for r, c, x in zip(rows, cols, w)]
    tp = len(pairs)
    return Matching(tp, ov.n_pred - tp, ov.n_gt - tp, pairs)


def match_instances(pred: np.ndarray, gt: np.ndarray, iou_threshold: float = 0.5) -> Matching:
    """Match predicted to ground-truth objects one to one where IoU >= ``iou_threshold``.

    IoUs come from the joint histogram of the two maps (only overlapping
    pairs are ever looked at); where an object has several candidates the
    matching maximises the total IoU (Hungarian algorithm). Returns
    ``(tp, fp, fn, pairs)`` with ``pairs`` a list of ``(pred id, gt id, IoU)``.
    """
    return _match(_overlaps(pred, gt), max(float(iou_threshold), 1e-12))


def _ap(m: Matching) -> float:
    denom = m.tp + m.fp + m.fn
    return 1.0 if denom == 0 else m.tp / denom


def average_precision(pred: np.ndarray, gt: np.ndarray, iou: float = 0.5) -> float:
    """The cell-segmentation "AP" of StarDist/Cellpose: TP / (TP + FP + FN) at an IoU threshold."""
    return _ap(match_instances(pred, gt, iou))


def ap_sweep(pred: np.ndarray, gt: np.ndarray,
             thresholds: Iterable[float] = AP_THRESHOLDS) -> dict[float, float]:
    """AP at each IoU threshold (keys rounded to 2 decimals); the overlaps are computed once."""
    ov = _overlaps(pred, gt)
    return {round(float(t), 2): _ap(_match(ov, max(float(t), 1e-12))) for t in thresholds}


def _best_pair(a_idx: np.ndarray, inter: np.ndarray, n_a: int) -> np.ndarray:
    """For each object 0..n_a-1 of one map, the overlap pair of largest intersection (-1: none).

    ``a_idx`` and ``inter`` are, per overlapping pair, the object's index and
    the intersection; the result indexes those pairs.
    """
    best = np.full(n_a, -1, dtype=np.int64)
    if len(a_idx):
        order = np.lexsort((-inter, a_idx))          # by object, largest overlap first
        a_sorted = a_idx[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = a_sorted[1:] != a_sorted[:-1]
        best[a_sorted[first]] = order[first]
    return best


def object_dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """GlaS object-level Dice (Sirinukunwattana et al. 2017).

    ``1/2 [sum_i g_i Dice(G_i, S*(G_i)) + sum_j s_j Dice(G*(S_j), S_j)]``, where
    ``S*(G_i)`` is the predicted object overlapping ground-truth object ``G_i``
    most (Dice 0 when none overlaps), ``G*(S_j)`` likewise, and the weights
    ``g_i``, ``s_j`` are the objects' shares of the total object area of their
    map. 1.0 when neither map has an object, 0.0 when only one has.
    """
    return _object_dice(_overlaps(pred, gt))


def _object_dice(ov: _Overlaps) -> float:
    if ov.n_pred == 0 and ov.n_gt == 0:
        return 1.0
    if ov.n_pred == 0 or ov.n_gt == 0:
        return 0.0
    # Dice of every overlapping pair, then a 0 for "no partner"
    pair_dice = np.append(2.0 * ov.inter / (ov.pred_area[ov.pi] + ov.gt_area[ov.gi]), 0.0)
    total = 0.0
    for own, area, n in ((ov.gi, ov.gt_area, ov.n_gt), (ov.pi, ov.pred_area, ov.n_pred)):
        d = pair_dice[_best_pair(own, ov.inter, n)]     # index -1 is the appended 0
        total += 0.5 * float(np.sum(area * d) / area.sum())
    return total


def _object_coords(seq: np.ndarray, n: int) -> list[np.ndarray]:
    """Pixel coordinates (k, 2) of each object 1..n of a renumbered map."""
    flat = seq.ravel()
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat, minlength=n + 1)
    bounds = np.cumsum(counts)
    w = seq.shape[1]
    out = []
    for k in range(1, n + 1):
        idx = order[bounds[k - 1]:bounds[k]]
        out.append(np.stack([idx // w, idx % w], axis=1).astype(np.float64))
    return out


def _hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    return max(directed_hausdorff(a, b)[0], directed_hausdorff(b, a)[0])


def object_hausdorff(pred: np.ndarray, gt: np.ndarray) -> float:
    """GlaS object-level Hausdorff distance (Sirinukunwattana et al. 2017), px.

    ``1/2 [sum_i g_i H(G_i, S*(G_i)) + sum_j s_j H(G*(S_j), S_j)]`` with the
    partners and weights of :func:`object_dice`, except that an object no
    object of the other map overlaps is paired with the one nearest to it in
    Hausdorff distance. Distances are between the objects' pixel sets. 0.0
    when neither map has an object, the image diagonal when only one has.
    """
    return _object_hausdorff(_overlaps(pred, gt))


def _object_hausdorff(ov: _Overlaps) -> float:
    if ov.n_pred == 0 and ov.n_gt == 0:
        return 0.0
    if ov.n_pred == 0 or ov.n_gt == 0:
        return float(np.hypot(*ov.pred_seq.shape[:2]))
    p_xy, g_xy = _object_coords(ov.pred_seq, ov.n_pred), _object_coords(ov.gt_seq, ov.n_gt)
    p_box = np.array([[c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()] for c in p_xy])
    g_box = np.array([[c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()] for c in g_xy])
    cache: dict[tuple[int, int], float] = {}

    def h(pi: int, gi: int) -> float:
        if (pi, gi) not in cache:
            cache[(pi, gi)] = _hausdorff(p_xy[pi], g_xy[gi])
        return cache[(pi, gi)]

    def nearest(box: np.ndarray, boxes: np.ndarray, dist) -> float:
        # the gap between bounding boxes bounds the Hausdorff distance from below
        gy = np.maximum(0, np.maximum(boxes[:, 0] - box[2], box[0] - boxes[:, 2]))
        gx = np.maximum(0, np.maximum(boxes[:, 1] - box[3], box[1] - boxes[:, 3]))
        lower = np.hypot(gy, gx)
        best = np.inf
        for j in np.argsort(lower, kind="stable"):
            if lower[j] >= best:
                break
            best = min(best, dist(int(j)))
        return best

    h_gt = 0.0
    for i, k in enumerate(_best_pair(ov.gi, ov.inter, ov.n_gt)):
        d = h(int(ov.pi[k]), i) if k >= 0 else nearest(g_box[i], p_box, lambda j, i=i: h(j, i))
        h_gt += ov.gt_area[i] * d
    h_pred = 0.0
    for j, k in enumerate(_best_pair(ov.pi, ov.inter, ov.n_pred)):
        d = h(j, int(ov.gi[k])) if k >= 0 else nearest(p_box[j], g_box, lambda i, j=j: h(j, i))
        h_pred += ov.pred_area[j] * d
    return float(0.5 * (h_gt / ov.gt_area.sum() + h_pred / ov.pred_area.sum()))


#: Objects smaller than this (px) are left out of the ImPartial metrics, as that paper did.
IMPARTIAL_MIN_SIZE = 20


def pixel_f1(pred: np.ndarray, gt: np.ndarray) -> float:
    """F1 score of the foreground pixels (label > 0): 2TP / (2TP + FP + FN), the same number as the
    foreground Dice; 1.0 when both are empty."""
    return dice(pred, gt)


def best_overlap_scores(pred: np.ndarray, gt: np.ndarray, min_size: int = IMPARTIAL_MIN_SIZE) -> dict:
    """ImPartial's instance metrics on one image: every ground-truth object scored against the
    predicted object that overlaps it most (largest intersection; Dice and IoU 0 when none does).

    Objects (either map) under ``min_size`` px are left out first. Returns
    ``pixel_f1``, ``mdice`` and ``miou`` (means over the ground-truth objects;
    1.0 when there are none and nothing is predicted, 0.0 when only
    predictions), and, for pooling over images, ``dice_sum``, ``iou_sum`` and
    ``n_objects``.
    """
    pred = drop_small(integer_labels(pred, "prediction").astype(np.int64, copy=True), min_size)
    gt = drop_small(integer_labels(gt, "ground truth").astype(np.int64, copy=True), min_size)
    ov = _overlaps(pred, gt)
    best = _best_pair(ov.gi, ov.inter, ov.n_gt)
    has = best >= 0
    inter, p_area = np.zeros(ov.n_gt), np.zeros(ov.n_gt)
    inter[has] = ov.inter[best[has]]
    p_area[has] = ov.pred_area[ov.pi[best[has]]]
    d = 2 * inter / np.maximum(p_area + ov.gt_area, 1)
    iou = inter / np.maximum(p_area + ov.gt_area - inter, 1)
    empty = 1.0 if ov.n_pred == 0 else 0.0
    return {"pixel_f1": _dice_masks(pred > 0, gt > 0),
            "mdice": float(d.mean()) if ov.n_gt else empty, "miou": float(iou.mean()) if ov.n_gt else empty,
            "dice_sum": float(d.sum()), "iou_sum": float(iou.sum()), "n_objects": int(ov.n_gt)}


def pool_best_overlap(scores: Sequence[Mapping]) -> dict:
    """:func:`best_overlap_scores` of several images pooled: ``mdice`` and ``miou`` over all their
    ground-truth objects, ``pixel_f1`` the mean over images."""
    n = sum(s["n_objects"] for s in scores)
    return {"pixel_f1": float(np.mean([s["pixel_f1"] for s in scores])),
            "mdice": sum(s["dice_sum"] for s in scores) / n if n else 0.0,
            "miou": sum(s["iou_sum"] for s in scores) / n if n else 0.0, "n_objects": int(n)}


def _ap_from_counts(counts: Mapping[float, Sequence[int]]) -> dict[float, float]:
    return {t: (1.0 if sum(c) == 0 else c[0] / sum(c)) for t, c in counts.items()}


def summarize(pred_inst: np.ndarray, gt_inst: np.ndarray, pred_sem: np.ndarray | None = None,
              gt_sem: np.ndarray | None = None, *, n_classes: int | None = None,
              thresholds: Sequence[float] = AP_THRESHOLDS, hausdorff: bool = True) -> dict:
    """All metrics of one image (``hausdorff=False``: ``object_hausdorff`` is NaN, not computed; it is
    the costly one, quadratic in the pixels of a large object).

    Returns a dict with ``dice`` (foreground of the instance maps), ``ap50``,
    ``ap75``, ``ap_mean`` (mean AP over ``thresholds``), ``ap`` (threshold ->
    AP), ``counts`` (threshold -> [tp, fp, fn], for pooling over images),
    ``object_dice``, ``object_hausdorff``, ``n_pred``, ``n_gt`` and, when both
    class maps are given, ``dice_class`` (class -> Dice, classes 1..n_classes,
    by default up to the largest class in either map).
    """
    ov = _overlaps(pred_inst, gt_inst)
    sweep_ts = [round(float(t), 2) for t in thresholds]
    counts = {t: list(_match(ov, max(t, 1e-12))[:3]) for t in sorted(set(sweep_ts) | {0.5, 0.75})}
    ap = _ap_from_counts(counts)
    out = {
        "dice": _dice_masks(ov.pred_seq > 0, ov.gt_seq > 0),
        "ap50": ap[0.5],
        "ap75": ap[0.75],
        "ap_mean": float(np.mean([ap[t] for t in sweep_ts])) if sweep_ts else 0.0,
        "ap": {t: ap[t] for t in sweep_ts},
        "counts": counts,
        "object_dice": _object_dice(ov),
        "object_hausdorff": _object_hausdorff(ov) if hausdorff else float("nan"),
        "n_pred": ov.n_pred,
        "n_gt": ov.n_gt,
    }
    if pred_sem is not None and gt_sem is not None:
        if n_classes is None:
            n_classes = max(int(np.max(pred_sem, initial=0)), int(np.max(gt_sem, initial=0)), 1)
        out["dice_class"] = dice_per_class(pred_sem, gt_sem, n_classes)
    return out


def aggregate(summaries: Sequence[Mapping]) -> dict:
    """Combine :func:`summarize` results of several images.

    AP is pooled (TP, FP and FN summed over images, then TP / (TP+FP+FN));
    ``dice``, ``object_dice``, ``object_hausdorff`` and each class's Dice are
    means over images; ``n_pred`` and ``n_gt`` are totals; ``n_images`` counts
    the images.
    """
    if not summaries:
        raise ValueError("no image summaries to aggregate")
    ts = list(summaries[0]["counts"])
    counts = {t: [int(sum(s["counts"][t][k] for s in summaries)) for k in range(3)] for t in ts}
    ap = _ap_from_counts(counts)
    sweep_ts = list(summaries[0]["ap"])
    out = {
        "n_images": len(summaries),
        "dice": float(np.mean([s["dice"] for s in summaries])),
        "ap50": ap[0.5],
        "ap75": ap[0.75],
        "ap_mean": float(np.mean([ap[t] for t in sweep_ts])) if sweep_ts else 0.0,
        "ap": {t: ap[t] for t in sweep_ts},
        "counts": counts,
        "object_dice": float(np.mean([s["object_dice"] for s in summaries])),
        "object_hausdorff": float(np.mean([s["object_hausdorff"] for s in summaries])),
        "n_pred": int(sum(s["n_pred"] for s in summaries)),
        "n_gt": int(sum(s["n_gt"] for s in summaries)),
    }
    with_class = [s["dice_class"] for s in summaries if "dice_class" in s]
    if with_class:
        classes = sorted({k for d in with_class for k in d})
        out["dice_class"] = {k: float(np.mean([d[k] for d in with_class if k in d]))
                             for k in classes}
    return out
