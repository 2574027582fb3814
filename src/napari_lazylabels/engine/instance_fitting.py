"""Instance settings fitted to the user's own exact masks, after training (no test data, no ground truth).

The instance step turns the heads' probabilities into objects with a few settings
(:class:`~.postprocess.settings.InstanceParams`). Their defaults suit nuclei of 110-1300 px; on other
images they cost accuracy (on phase contrast, debris and halo fragments of 30-800 px stay as objects).
The user's exact masks say what an object is on *these* images, so the trained model predicts the
images that have them and the settings that reproduce those objects best are kept:

1. the objects the labels determine: the exact mask cut by the painted interfaces, each piece grown
   back over the mask (:func:`exact_objects`);
2. a small search, one group of settings at a time (about 25 post-processings per image, no network
   pass besides the first): the foreground and interface thresholds together, then the smallest
   object (``min_size``) as a share of the median object's area, then the smallest seed with the seed
   join on or off (``seed_join_threshold`` 0.3 or 0.5);
3. the score of a setting is the mean of AP50 and object Dice over the images
   (:func:`~.metrics.summarize`); a change is kept only when it gains more than :data:`MIN_GAIN`.

The model is predicted on the very images it was trained on, so its probabilities are more confident
there than on new images; the search therefore only moves a setting on a clear gain, and the
size-relative steps come from the objects' sizes, which do not depend on that confidence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np
from skimage.measure import label
from skimage.segmentation import watershed

from .metrics import aggregate, summarize
from .pipeline import segmentation_from_probabilities
from .postprocess.settings import NO_SEED_JOIN, InstanceParams, PostProcessing
from .tasks import TaskSpec

#: The foreground thresholds tried (None: the head's argmax) and the interface thresholds.
PROBABILITY_THRESHOLDS = (None, 0.3, 0.4, 0.5, 0.6, 0.7)
INTERFACE_THRESHOLDS = (0.3, 0.5, 0.7)
#: The smallest object tried, as shares of the median exact object's area (and the current setting).
MIN_SIZE_SHARES = (0.05, 0.1, 0.2, 0.35, 0.5)
#: The smallest seed tried, as shares of the median exact object's area (and the current setting).
MIN_SEED_SHARES = (0.01, 0.03, 0.06)
#: The seed joins tried with each smallest seed: the default (pieces of a seed join over p > 0.3) and none.
SEED_JOINS = (InstanceParams().seed_join_threshold, NO_SEED_JOIN)
#: A setting replaces the current one only when the score gains more than this.
MIN_GAIN = 0.005
#: At most this many images with exact masks are predicted for the fit (the first ones).
MAX_IMAGES = 16
#: Fewer exact objects than this: nothing is fitted (too few to tell settings apart).
MIN_OBJECTS = 5
#: What the settings may be fitted to (:attr:`FittedInstances.target`), and how each is scored.
EXACT_MASKS, POINTS = "exact masks", "points"
SCORE_WORDS = {EXACT_MASKS: "mean of AP50 and object Dice",
               POINTS: "F1 of objects holding exactly one point"}


@dataclass(frozen=True)
class FittedInstances:
    """What the fit chose and why (also stored in the model's provenance).

    Attributes:
        instances: the instance settings chosen.
        before: the score (mean of AP50 and object Dice on the exact masks) of the settings it began with.
        after: the score of the chosen settings.
        images: how many images with exact masks were predicted.
        objects: how many exact objects they hold.
        median_area: the median exact object's area (px).
        changed: the settings that moved, name -> (before, after).
        target: what the settings were fitted to: ``"exact masks"`` (``objects`` counts the traced
            objects) or ``"points"`` (``objects`` counts the points; :mod:`.instance_fitting_points`).
    """

    instances: InstanceParams
    before: float
    after: float
    images: int
    objects: int
    median_area: float
    changed: dict
    target: str = EXACT_MASKS

    def _what(self) -> str:
        return f"{self.objects} {'traced objects' if self.target == EXACT_MASKS else self.target}"

    def summary(self) -> str:
        score = SCORE_WORDS.get(self.target, "")
        if not self.changed:
            return (f"instance settings checked on {self._what()} in {self.images} image(s): "
                    f"the defaults are best (score {self.after:.3f})")
        moved = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in self.changed.items())
        return (f"instance settings fitted to {self._what()} in {self.images} image(s): {moved} "
                f"(score {self.before:.3f} -> {self.after:.3f}; {score})")

    def to_dict(self) -> dict:
        return {"before": round(self.before, 4), "after": round(self.after, 4), "images": self.images,
                "objects": self.objects, "median_area": round(self.median_area, 1),
                "changed": {k: list(v) for k, v in self.changed.items()}, "target": self.target}


def exact_objects(mask: np.ndarray, interfaces: np.ndarray | None = None) -> np.ndarray:
    """The objects an exact mask and the painted interfaces determine: the mask cut along the
    interfaces into connected pieces of one label value each (so a mask painted object by object keeps
    its objects, and one painted by class is split where it is cut), each piece grown back over the
    mask (int32 instance labels)."""
    mask = np.asarray(mask)
    inside = mask > 0
    cut = inside if interfaces is None else inside & ~(np.asarray(interfaces) > 0)
    pieces = label(np.where(cut, mask, 0), background=0, connectivity=1)
    return watershed(np.zeros(mask.shape, np.float32), markers=pieces, mask=inside).astype(np.int32)


def _score(probs: Sequence[Mapping[str, np.ndarray]], truths: Sequence[np.ndarray], tasks: Sequence[TaskSpec],
           postprocess: PostProcessing) -> float:
    agg = aggregate([summarize(segmentation_from_probabilities(p, tasks, postprocess).instances, t,
                               thresholds=(0.5,), hausdorff=False) for p, t in zip(probs, truths)])
    return 0.5 * (float(agg["ap50"]) + float(agg["object_dice"]))


def _candidates(current: InstanceParams, group: int, median_area: float,
                interface_thresholds: Sequence[float] = INTERFACE_THRESHOLDS,
                probability_thresholds: Sequence[float | None] = PROBABILITY_THRESHOLDS,
                seed_joins: Sequence[float] = SEED_JOINS) -> list[InstanceParams]:
    """Group ``group`` of the settings tried one group after the other, around the best so far."""
    def sizes(shares):
        return sorted({max(1, int(round(s * median_area))) for s in shares})
    if group == 0:
        return [replace(current, probability_threshold=p, interface_threshold=i)
                for p in probability_thresholds for i in interface_thresholds]
    if group == 1:
        return [replace(current, min_size=m) for m in sizes(MIN_SIZE_SHARES)]
    return [replace(current, min_seed_area=m, seed_join_threshold=j)
            for m in sizes(MIN_SEED_SHARES) for j in seed_joins]


#: How many groups :func:`_candidates` has.
GROUPS = 3


def fit_instances(probabilities: Sequence[Mapping[str, np.ndarray]], objects: Sequence[np.ndarray],
                  tasks: Sequence[TaskSpec], postprocess: PostProcessing) -> FittedInstances | None:
    """The instance settings that best reproduce ``objects`` (instance labels of each image) from the
    model's ``probabilities`` of those images (task name -> (C, Y, X)), starting from
    ``postprocess.instances``. None when the images hold fewer than :data:`MIN_OBJECTS` objects."""
    areas = np.concatenate([np.bincount(o.ravel())[1:] for o in objects]) if objects else np.zeros(0)
    areas = areas[areas > 0]
    if areas.size < MIN_OBJECTS:
        return None
    median_area = float(np.median(areas))
    best, before, after, changed = search(lambda post: _score(probabilities, objects, tasks, post), postprocess,
                                          median_area)
    return FittedInstances(best, before, after, len(objects), int(areas.size), median_area, changed)


def search(score: Callable[[PostProcessing], float], postprocess: PostProcessing, median_area: float,
           interface_thresholds: Sequence[float] = INTERFACE_THRESHOLDS,
           min_gain: float = MIN_GAIN,
           probability_thresholds: Sequence[float | None] = PROBABILITY_THRESHOLDS,
           seed_joins: Sequence[float] = SEED_JOINS) -> tuple[InstanceParams, float, float, dict]:
    """The search of the module doc from ``postprocess.instances``: ``(best settings, score before, score
    after, the settings that moved as name -> (before, after))``. ``score(post)``: higher is better; a
    change is kept when it gains more than ``min_gain``. ``interface_thresholds`` and
    ``probability_thresholds``: the values the first group tries; ``seed_joins``: the seed joins the
    last one tries."""
    start = best = postprocess.instances
    before = best_score = score(postprocess)
    for group in range(GROUPS):
        for params in _candidates(best, group, median_area, interface_thresholds, probability_thresholds, seed_joins):
            s = score(replace(postprocess, instances=params))
            if s > best_score + min_gain:
                best, best_score = params, s
    changed = {k: (getattr(start, k), getattr(best, k)) for k in InstanceParams.__dataclass_fields__
               if getattr(start, k) != getattr(best, k)}
    return best, before, best_score, changed


def fit_to_exact_masks(predict: Callable[[np.ndarray], Mapping[str, np.ndarray]],
                       examples: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
                       tasks: Sequence[TaskSpec], postprocess: PostProcessing) -> FittedInstances | None:
    """:func:`fit_instances` on at most :data:`MAX_IMAGES` examples ``(image, exact mask, interfaces or
    None)``, with ``predict(image)`` giving the model's probabilities of an image."""
    examples = list(examples)[:MAX_IMAGES]
    objects = [exact_objects(mask, interfaces) for _, mask, interfaces in examples]
    keep = [i for i, o in enumerate(objects) if o.any()]
    if not keep:
        return None
    probs = [predict(examples[i][0]) for i in keep]
    return fit_instances(probs, [objects[i] for i in keep], tasks, postprocess)
