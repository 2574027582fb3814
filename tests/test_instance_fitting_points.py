"""Instance settings fitted to the points of a run without exact masks: the fit finds the objects whose
seeds the default interface threshold loses, keeps the defaults where they are right, and a run with
points and a mask only (no exact mask) fits its settings to the points and says so."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from skimage.draw import disk

from napari_lazylabels.engine.instance_fitting import POINTS
from napari_lazylabels.engine.instance_fitting_points import (agreement_score, fit_instances_to_points,
                                                              fit_to_points, point_agreement)
from napari_lazylabels.engine.metrics import average_precision
from napari_lazylabels.engine.pipeline import segmentation_from_probabilities
from napari_lazylabels.engine.postprocess.settings import PostProcessing
from napari_lazylabels.engine.tasks import BOUNDARIES, FOREGROUND, SEEDS, TaskSpec

TASKS = [TaskSpec("locations", 2, "plain", SEEDS), TaskSpec("cells", 2, "refined", FOREGROUND),
         TaskSpec("cell_boundaries", 2, "boundary", BOUNDARIES)]
SHAPE = (128, 128)
#: Two pairs of touching cells and one alone; the second of each pair is the hesitant one.
CENTRES = [(30, 30), (30, 52), (90, 30), (90, 52), (64, 100)]
HESITANT = (2, 4)


def _hesitant_interfaces(seed: int, interface: float = 0.6):
    """Probabilities of five round cells (sure foreground, a seed disk in each; two pairs touch) whose
    boundary head says ``interface`` over the whole of one cell of each pair (wide interfaces learned
    from points that missed objects), the cells' instances and one point per cell."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(SHAPE, np.int32)
    fg, seeds, bnd = (np.zeros(SHAPE, np.float32) for _ in range(3))
    points = []
    for k, (y, x) in enumerate(CENTRES, 1):
        y = y + int(rng.integers(-2, 3))
        truth[disk((y, x), 12, shape=SHAPE)] = k
        fg[disk((y, x), 12, shape=SHAPE)] = 0.95
        seeds[disk((y, x), 3, shape=SHAPE)] = 0.9
        if k in HESITANT:
            bnd[disk((y, x), 12, shape=SHAPE)] = interface
        points.append((y, x, 1))
    probs = {"locations": np.stack([1 - seeds, seeds]), "cells": np.stack([1 - fg, fg]),
             "cell_boundaries": np.stack([1 - bnd, bnd])}
    return probs, truth, np.array(points, np.float64)


def test_point_agreement_counts_objects_with_exactly_one_point():
    inst = np.zeros((10, 30), np.int32)
    inst[:, :10], inst[:, 10:20], inst[:, 20:] = 1, 2, 3
    points = np.array([[5, 5, 1], [5, 12, 1], [5, 15, 1], [50, 50, 1]], np.float64)   # 1 alone, 2 twice
    # Object 3 holds no point: an object the points missed (left out) at its size, a fragment when small.
    assert point_agreement(inst, points, median_area=100) == (1, 4, 2)
    assert point_agreement(inst, points, median_area=1000) == (1, 4, 3)
    assert agreement_score([inst], [points], 100) == 2 * 1 / (4 + 2)
    assert agreement_score([inst], [np.zeros((0, 3))], 100) == 0.0


def test_merging_an_object_the_points_missed_gains_nothing_and_fragments_cost():
    """The bias the score must not have: machine-made points miss objects, and settings that merge a
    missed object into its pointed neighbour must not score better; a fragment cut off must score worse."""
    apart = np.zeros((20, 40), np.int32)
    apart[:, :20], apart[:, 20:] = 1, 2                 # object 2 holds no point
    merged = (apart > 0).astype(np.int32)
    cut = apart.copy()
    cut[:4, :4] = 3                                     # a fragment of object 1, without a point
    points = [np.array([[10, 10, 1]], np.float64)]
    median = 400.0
    assert agreement_score([merged], points, median) == agreement_score([apart], points, median) == 1.0
    assert agreement_score([cut], points, median) < agreement_score([apart], points, median)


def test_fit_finds_the_cells_whose_seeds_the_interfaces_lost():
    data = [_hesitant_interfaces(s) for s in range(3)]
    probs, truths, points = zip(*data)
    before = [segmentation_from_probabilities(p, TASKS, PostProcessing()).instances for p in probs]
    assert all(b.max() == 3 for b in before)     # the hesitant cells' seeds are lost: merged into their pair
    fit = fit_instances_to_points(probs, points, TASKS, PostProcessing())
    assert fit is not None and fit.target == POINTS and fit.objects == 15
    assert fit.instances.interface_threshold > 0.6 and fit.after > fit.before
    after = [segmentation_from_probabilities(p, TASKS, PostProcessing(instances=fit.instances)).instances
             for p in probs]
    assert np.mean([average_precision(a, t) for a, t in zip(after, truths)]) == 1.0
    assert "15 points" in fit.summary() and fit.to_dict()["target"] == POINTS


def test_fit_keeps_defaults_that_are_already_right_and_needs_points():
    data = [_hesitant_interfaces(s, interface=0.2) for s in range(2)]
    probs, _, points = zip(*data)
    fit = fit_instances_to_points(probs, points, TASKS, PostProcessing())
    assert fit is not None and fit.changed == {} and "defaults are best" in fit.summary()
    assert fit_instances_to_points(probs, [p[:2] for p in points], TASKS, PostProcessing()) is None
    seen = []
    assert fit_to_points(lambda im: seen.append(im) or probs[0], [(np.zeros(SHAPE), np.zeros((0, 3)))], TASKS,
                         PostProcessing()) is None and seen == []    # no image with points: nothing predicted


def test_fit_post_processes_the_starting_settings_once(monkeypatch):
    """The objects of the settings the search starts from are made once per image (they give the median
    area and the score before), then each candidate's once."""
    import napari_lazylabels.engine.instance_fitting_points as fitting
    data = [_hesitant_interfaces(s) for s in range(2)]
    probs, _, points = zip(*data)
    start, calls = PostProcessing(), []

    def counted(p, tasks, post):
        calls.append(post is start)
        return segmentation_from_probabilities(p, tasks, post)

    monkeypatch.setattr(fitting, "segmentation_from_probabilities", counted)
    fit = fitting.fit_instances_to_points(probs, points, TASKS, start)
    assert fit is not None and fit.changed
    assert sum(calls) == len(probs) and len(calls) > 2 * len(probs)


def test_fit_keeps_the_models_foreground_threshold():
    """Points say where objects are, not where they end: a lower foreground threshold would bring back a
    faint pointed cell (a better point score) but widen every mask, and the fit does not try it."""
    data = [_hesitant_interfaces(s, interface=0.2) for s in range(3)]
    probs, _, points = zip(*data)
    for p, pts in zip(probs, points):                 # the lone cell is faint: under argmax it is lost
        y, x = int(pts[-1][0]), int(pts[-1][1])
        p["cells"][1][disk((y, x), 12, shape=SHAPE)] = 0.4
        p["cells"][0] = 1 - p["cells"][1]
    lowered = PostProcessing(instances=replace(PostProcessing().instances, probability_threshold=0.3))
    assert (agreement_score([segmentation_from_probabilities(p, TASKS, lowered).instances for p in probs], points,
                            450) >
            agreement_score([segmentation_from_probabilities(p, TASKS, PostProcessing()).instances for p in probs],
                            points, 450) + 0.1)
    fit = fit_instances_to_points(probs, points, TASKS, PostProcessing())
    assert fit is not None and "probability_threshold" not in fit.changed
    assert fit.instances.probability_threshold == PostProcessing().instances.probability_threshold


def test_a_run_with_points_and_a_mask_only_fits_to_the_points(train_tiny, tmp_path):
    from napari_lazylabels.engine.annotations import LazyAnnotations
    from napari_lazylabels.engine.regimes.lacss import REGIME
    from napari_lazylabels.engine.synthetic import make_image
    from napari_lazylabels.io.modelio import load_model

    items = []
    for s in range(2):
        im = make_image(60 + s, shape=(96, 96), touching=0.3)
        items.append(LazyAnnotations(image=im.image, labels=REGIME.simulate(im.instances), name=f"im{s}"))
    run = train_tiny(items, steps=3, model_dir=tmp_path / "m")
    assert run.fitted is not None and run.fitted.target == POINTS
    assert run.fitted.objects == sum(len(it.labels["points"]) for it in items)
    saved = load_model(tmp_path / "m")
    assert saved.provenance["instance_fit"] == run.fitted.to_dict()
    assert saved.postprocess.instances == run.fitted.instances
