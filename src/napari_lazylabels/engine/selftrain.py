"""Self-training on machine-made labels, and the guard against a network that is no better than the
pipeline its labels come from.

* :func:`refined_labels`: after a training, the model's confident foreground (probability at least
  ``confident``) and background (at most ``1 - confident``) replace the mask there; its objects'
  centroids replace the points (a machine point stays where no predicted object is). The region to
  train on is where the model is confident or agrees with the old mask. ``change``: the share of the
  old and new mask pixels that differ plus the share of points without a counterpart within the
  object radius, the stopping rule of the rounds (LACSS's iterative refinement).
* :func:`label_agreement`: how well an instance map agrees with machine-made points and a mask (no
  ground truth): the mean of the foreground Dice and the F1 of "one point per object" (an object is
  right when it holds exactly one point). :func:`guard` compares the network with the classical
  pipeline (threshold + distance watershed, :func:`.autolabel.classical_instances`) by it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .points import point_pixels, points_of_instances
from .tasks import FOREGROUND, heads_by_role


@dataclass
class RefinedLabels:
    points: np.ndarray        # (N, 3) y, x, class
    mask: np.ndarray          # uint8
    trusted: np.ndarray       # bool: the region to train on
    change: float             # see the module doc


def foreground_probability(segmentation, tasks) -> np.ndarray:
    """P(foreground) of a :class:`~.pipeline.Segmentation` (1 - P(class 0) of the foreground head)."""
    probs = heads_by_role(segmentation.probabilities, tasks).get(FOREGROUND)
    if probs is None:
        return (np.asarray(segmentation.instances) > 0).astype(np.float64)
    return 1.0 - np.asarray(probs[0], np.float64)


def _matched(a: np.ndarray, b: np.ndarray, radius: float) -> int:
    """How many points of ``a`` have a point of ``b`` within ``radius``."""
    if not len(a) or not len(b):
        return 0
    from scipy.spatial import cKDTree
    d, _ = cKDTree(b[:, :2]).query(a[:, :2], k=1)
    return int(np.sum(d <= radius))


def refined_labels(points: np.ndarray, mask: np.ndarray, probability: np.ndarray, instances: np.ndarray, *,
                   radius: float, confident: float = 0.9) -> RefinedLabels:
    """The next round's labels from the model's prediction (see the module doc)."""
    old = np.asarray(mask) > 0
    p = np.asarray(probability, np.float64)
    sure_fg, sure_bg = p >= confident, p <= 1.0 - confident
    new = old.copy()
    new[sure_fg], new[sure_bg] = True, False
    inst = np.where(new, np.asarray(instances), 0)
    found = points_of_instances(inst)
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    pix = point_pixels(pts)
    uncovered = pts[(inst[pix[:, 0], pix[:, 1]] == 0) & new[pix[:, 0], pix[:, 1]]] if len(pts) else pts
    out = np.concatenate([found, uncovered]) if len(uncovered) else found
    trusted = sure_fg | sure_bg | (old == (p >= 0.5))
    changed_px = np.count_nonzero(old != new) / max(1, np.count_nonzero(old | new))
    n = max(len(pts), len(out), 1)
    changed_pts = 1.0 - min(_matched(pts, out, radius), _matched(out, pts, radius)) / n
    return RefinedLabels(out, new.astype(np.uint8), trusted, float(changed_px + changed_pts))


def label_agreement(instances: np.ndarray, points: np.ndarray, mask: np.ndarray,
                    trusted: np.ndarray | None = None) -> float:
    """Agreement of an instance map with machine-made points and a mask (0..1, see the module doc)."""
    inst = np.asarray(instances)
    fg = np.asarray(mask) > 0
    region = np.ones(fg.shape, bool) if trusted is None else np.asarray(trusted, bool)
    pred = (inst > 0) & region
    dice = 2.0 * np.count_nonzero(pred & fg & region) / max(1, np.count_nonzero(pred) + np.count_nonzero(fg & region))
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    pix = point_pixels(pts)
    hit = inst[pix[:, 0], pix[:, 1]] if len(pts) else np.zeros(0, inst.dtype)
    ids, counts = np.unique(hit[hit > 0], return_counts=True)
    one = set(ids[counts == 1].tolist())
    n_obj = len(np.unique(inst[inst > 0]))
    tp = len(one)
    f1 = 2.0 * tp / max(1, n_obj + len(pts))
    return float((dice + f1) / 2.0)


@dataclass(frozen=True)
class GuardReport:
    network: float
    classical: float

    @property
    def better(self) -> bool:
        return self.network > self.classical

    def describe(self) -> str:
        text = (f"agreement with the machine-made labels: network {self.network:.3f}, classical pipeline "
                f"(threshold + distance watershed) {self.classical:.3f}")
        if not self.better:
            text += ("; WARNING: the network is not better than the classical pipeline its labels come from: "
                     "use the classical result, or check the labels (object size, polarity, threshold)")
        return text


def guard(network: list[np.ndarray], classical: list[np.ndarray], points: list[np.ndarray],
          masks: list[np.ndarray], trusted: list[np.ndarray | None] | None = None) -> GuardReport:
    """The network's and the classical pipeline's mean agreement with the machine-made labels."""
    trusted = trusted or [None] * len(points)

    def mean(maps):
        return float(np.mean([label_agreement(m, p, k, t) for m, p, k, t in zip(maps, points, masks, trusted)]))
    return GuardReport(mean(network), mean(classical))
