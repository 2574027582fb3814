"""Instance settings fitted to the points of a run without exact masks (clicked or machine-made).

With points and a foreground mask only (the LACSS regime, or labels made by ``lazylabels autolabel``)
no traced object says what an object is, but the points say where the objects are: one point each.
The instance step is right where an object holds exactly one point, and wrong where it lost the seed
of a point (the object is missing or merged into its neighbour: two points in one object) or cut an
object in pieces (pieces without a point). So the search of :mod:`.instance_fitting` runs here with
that agreement as its score (:func:`agreement_score`): the F1 of objects holding exactly one point,
pooled over the images,

    2 x (objects with exactly one point) / (points + objects counted).

The points need not be complete (machine-made points miss a fifth of the objects or more), so an
object that holds no point is counted, as a wrong object, only when it is a fragment: smaller than
:data:`FRAGMENT_SHARE` of the median object. A larger one may be an object the points missed, and is
left out of the count: counting it would reward settings that merge it into a pointed neighbour.
Since the score is a proxy (no traced object is seen), a change of the settings is kept only when it
gains more than :data:`MIN_GAIN_POINTS`. The foreground threshold is not searched: points say where
the objects are, not where they end, and a lower threshold that joins two pieces of one pointed object
also widens every mask (on one MIBI seed it cost 0.04 AP50 on the test tiles). The median object's
area (for the fragment size and the size-relative steps) is that of the objects holding exactly one
point under the settings the search starts from (of all its objects when none holds a point alone).

Round objects (round nuclei, as the labels read them: the caller's ``round_objects``): the seed join
is off and not searched. The join exists for the pieces of one elongated object's seed (a rod's, where
the seed head hesitates); round objects do not break that way. What it joins there is the seeds of two
touching nuclei, and the machine points, which give such a pair one point, make the score prefer that
merge. Paired on the same default-budget models (``docs/benchmarks.md``, "The seed join off where the
labels read round"), mean AP50: synthetic +0.025 (6 seeds), MIBI-like +0.007, HeLa -0.005 (3 seeds).

Why it matters: a model trained on machine-made points can learn interfaces that are too wide where
the detection missed an object (its partition of the mask gave the object to a neighbour and drew an
interface through it); with the default interface threshold, seeds fall inside the predicted
interfaces and are lost. In the default-budget benchmark (``docs/benchmarks.md``) one of three MIBI
seeds lost a third of its AP50 that way; the fit gave most of it back (0.353 -> 0.537) without seeing
any ground truth, and raised the mean AP50 of three seeds on MIBI-like, H&E and HeLa images (+0.05,
+0.05, +0.015; synthetic unchanged; one of those twelve models lost 0.03; on EM, where machine points
fail, it lost 0.01).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Mapping, Sequence

import numpy as np

from .instance_fitting import MAX_IMAGES, MIN_OBJECTS, POINTS, SEED_JOINS, FittedInstances, search
from .pipeline import segmentation_from_probabilities
from .points import point_pixels
from .postprocess.settings import NO_SEED_JOIN, PostProcessing
from .tasks import TaskSpec

#: The interface thresholds tried: up to 0.9, since interfaces learned from an incomplete set of
#: points are wide (see the module doc).
POINT_INTERFACE_THRESHOLDS = (0.3, 0.5, 0.7, 0.9)

#: An object without a point counts as a wrong object only when its area is under this share of the
#: median object's (a fragment); a larger one may be an object the points missed.
FRAGMENT_SHARE = 0.5

#: The gain in :func:`agreement_score` a change of the settings must bring to be kept (the score is a
#: proxy; on the 15 default-budget models of the benchmark, 0.01 gave H&E +0.05 AP50 over 0.02 and cost
#: MIBI-like 0.01 and HeLa 0.01, and 0.005 gave nothing more).
MIN_GAIN_POINTS = 0.01


def points_per_object(instances: np.ndarray, points: np.ndarray) -> np.ndarray:
    """How many of the points ((N, 2+) y, x, ...) fall in each object id (index 0: none; points outside
    the image are in no object)."""
    instances = np.asarray(instances)
    pix = point_pixels(points)
    inside = np.all((pix >= 0) & (pix < np.array(instances.shape)), axis=1)
    ids = instances[pix[inside, 0], pix[inside, 1]]
    counts = np.bincount(ids[ids > 0], minlength=int(instances.max()) + 1)
    counts[0] = 0
    return counts


def point_agreement(instances: np.ndarray, points: np.ndarray, median_area: float) -> tuple[int, int, int]:
    """``(objects holding exactly one point, points, objects counted)`` of an instance map and its points:
    the objects counted are those holding a point and the fragments (objects without a point smaller than
    :data:`FRAGMENT_SHARE` x ``median_area``)."""
    counts = points_per_object(instances, points)
    areas = np.bincount(np.asarray(instances).ravel(), minlength=len(counts))[1:]
    counts = counts[1:][areas > 0]
    areas = areas[areas > 0]
    counted = (counts > 0) | (areas < FRAGMENT_SHARE * median_area)
    return int(np.sum(counts == 1)), len(point_pixels(points)), int(np.sum(counted))


def agreement_score(instance_maps: Sequence[np.ndarray], points: Sequence[np.ndarray],
                    median_area: float) -> float:
    """The pooled F1 of :func:`point_agreement` over the images (0 when there is nothing)."""
    matched = total = 0
    for inst, pts in zip(instance_maps, points):
        m, n_points, n_objects = point_agreement(inst, pts, median_area)
        matched, total = matched + m, total + n_points + n_objects
    return 2.0 * matched / total if total else 0.0


def _single_point_areas(instance_maps: Sequence[np.ndarray], points: Sequence[np.ndarray]) -> np.ndarray:
    """The areas of the objects holding exactly one point."""
    areas = []
    for inst, pts in zip(instance_maps, points):
        single = np.flatnonzero(points_per_object(inst, pts) == 1)
        areas.append(np.bincount(np.asarray(inst).ravel(), minlength=int(inst.max()) + 1)[single])
    return np.concatenate(areas) if areas else np.zeros(0)


def fit_instances_to_points(probabilities: Sequence[Mapping[str, np.ndarray]], points: Sequence[np.ndarray],
                            tasks: Sequence[TaskSpec], postprocess: PostProcessing,
                            round_objects: bool = False) -> FittedInstances | None:
    """The instance settings whose objects best hold one point each, from the model's ``probabilities``
    of the images (task name -> (C, Y, X)) and their ``points``, starting from ``postprocess.instances``.
    None with fewer than :data:`~.instance_fitting.MIN_OBJECTS` points, or when the starting settings
    give no object at all.

    ``round_objects``: the objects are round (the caller read it from the labels), so the seed join is
    off and not searched (see the module doc, "Round objects")."""
    n_points = sum(len(point_pixels(p)) for p in points)
    if n_points < MIN_OBJECTS:
        return None
    given = postprocess.instances
    if round_objects:
        postprocess = replace(postprocess, instances=replace(given, seed_join_threshold=NO_SEED_JOIN))

    def instances(post: PostProcessing) -> list[np.ndarray]:
        return [segmentation_from_probabilities(p, tasks, post).instances for p in probabilities]

    start = instances(postprocess)
    areas = _single_point_areas(start, points)
    if not areas.size:                       # no object holds a point alone yet: every object's area
        areas = np.concatenate([np.bincount(i.ravel())[1:] for i in start])
        areas = areas[areas > 0]
    if not areas.size:
        return None
    median_area = float(np.median(areas))

    def score(post: PostProcessing) -> float:       # the starting settings' objects are made once
        return agreement_score(start if post is postprocess else instances(post), points, median_area)

    joins = (NO_SEED_JOIN,) if round_objects else SEED_JOINS
    best, before, after, changed = search(score, postprocess, median_area, POINT_INTERFACE_THRESHOLDS, MIN_GAIN_POINTS,
                                          (postprocess.instances.probability_threshold,), joins)
    if round_objects and given.seed_join_threshold != NO_SEED_JOIN:     # set before the search: named here
        changed = {**changed, "seed_join_threshold": (given.seed_join_threshold, NO_SEED_JOIN)}
    return FittedInstances(best, before, after, len(probabilities), n_points, median_area, changed, POINTS)


def fit_to_points(predict: Callable[[np.ndarray], Mapping[str, np.ndarray]],
                  examples: Sequence[tuple[np.ndarray, np.ndarray]], tasks: Sequence[TaskSpec],
                  postprocess: PostProcessing, round_objects: bool = False) -> FittedInstances | None:
    """:func:`fit_instances_to_points` on at most :data:`~.instance_fitting.MAX_IMAGES` examples
    ``(image, points)`` that hold points, with ``predict(image)`` giving the model's probabilities."""
    examples = [(image, pts) for image, pts in examples if len(point_pixels(pts))][:MAX_IMAGES]
    if not examples:
        return None
    return fit_instances_to_points([predict(image) for image, _ in examples], [p for _, p in examples], tasks,
                                   postprocess, round_objects)
