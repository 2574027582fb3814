"""Where the labels read round, the points fit turns the seed join off (engine/instance_fitting_points.py,
"Round objects"): touching round nuclei whose seeds the join would merge stay apart, even when the
points, as machine-made points do, give each such pair one point and so cannot tell the merge is wrong."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse
from test_instance_fitting import TASKS, _touching_pairs_bridged

from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.instance_fitting_points import fit_instances_to_points
from napari_lazylabels.engine.metrics import average_precision
from napari_lazylabels.engine.pipeline import segmentation_from_probabilities
from napari_lazylabels.engine.postprocess.settings import NO_SEED_JOIN, PostProcessing
from napari_lazylabels.engine.regimes.lacss import MASK_KEY, POINTS_KEY
from napari_lazylabels.recipes.instance_fit import labels_read_round

JOIN = PostProcessing().instances.seed_join_threshold


def _bridged_pairs(seed: int):
    """Two pairs of touching round nuclei whose seed head links the pair's cores by a hesitant bridge
    (test_instance_fitting's), the nuclei, and one point per pair, on its first nucleus (the second is
    the one machine points miss)."""
    probs, truth = _touching_pairs_bridged(seed)
    points = np.array([(*ndi.center_of_mass(truth == k), 1) for k in (1, 3)], np.float64)
    return probs, truth, points


def test_round_objects_keep_touching_nuclei_apart_that_the_points_cannot_tell():
    probs, truths, points = zip(*[_bridged_pairs(s) for s in range(3)])
    # The bias: one point per pair scores the merged pair as well as the two nuclei, so the join stays on.
    fit = fit_instances_to_points(probs, points, TASKS, PostProcessing())
    assert fit is not None and fit.instances.seed_join_threshold == JOIN
    merged = segmentation_from_probabilities(probs[0], TASKS, PostProcessing(instances=fit.instances)).instances
    assert merged.max() == 2
    # Round objects: the join is off, and each nucleus is an object.
    fit = fit_instances_to_points(probs, points, TASKS, PostProcessing(), round_objects=True)
    assert fit is not None and fit.instances.seed_join_threshold == NO_SEED_JOIN
    assert fit.changed["seed_join_threshold"] == (JOIN, NO_SEED_JOIN)
    assert "seed_join_threshold 0.3 -> 0.5" in fit.summary()
    for p, t in zip(probs, truths):
        apart = segmentation_from_probabilities(p, TASKS, PostProcessing(instances=fit.instances)).instances
        assert average_precision(apart, t) == 1.0


LONE = ((20, 20), (20, 60), (20, 100), (60, 20), (100, 20), (100, 60))


def _item(mask: np.ndarray, points: np.ndarray | None) -> LazyAnnotations:
    labels = {MASK_KEY: mask.astype(np.uint8)}
    if points is not None:
        labels[POINTS_KEY] = points
    return LazyAnnotations(image=mask.astype(np.float32), labels=labels)


def test_the_labels_read_round_on_most_images_with_points_and_a_mask():
    shape = (120, 120)
    points = np.array([(y, x, 1) for y, x in LONE], np.float64)
    discs, rods = np.zeros(shape, bool), np.zeros(shape, bool)
    for y, x in LONE:
        discs[disk((y, x), 10, shape=shape)] = True
        rods[ellipse(y, x, 4, 15, shape=shape)] = True
    assert labels_read_round([_item(discs, points), _item(discs, points), _item(rods, points)])
    assert not labels_read_round([_item(discs, points), _item(rods, points)])       # half is not most
    assert not labels_read_round([_item(rods, points)] * 3)
    assert not labels_read_round([_item(discs, None)] * 3)                           # no points: nothing read
    assert not labels_read_round([])
