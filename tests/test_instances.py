"""Instances from probabilities: seeded watershed on ideal and degraded predictions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse

from napari_lazylabels.engine.metrics import average_precision
from napari_lazylabels.engine.postprocess.instances import (
    instance_classes,
    instances_from_probabilities,
    semantic_from_probabilities,
)
from napari_lazylabels.engine.postprocess.settings import DISTANCE, InstanceParams
from napari_lazylabels.engine.tasks import BOUNDARIES, FOREGROUND, PARTIAL, SEEDS
from napari_lazylabels.errors import LazyLabelsError, SettingsError

SHAPE = (128, 160)


def ground_truth() -> tuple[np.ndarray, np.ndarray]:
    """Instances (ids 1..N) and classes (1 or 2): disks and ellipses, two touching pairs."""
    gt = np.zeros(SHAPE, np.int32)
    cls = np.zeros(SHAPE, np.int32)
    shapes = [
        (disk((25, 25), 12), 1),
        (disk((25, 45), 11), 2),          # overlaps the first: they touch
        (ellipse(80, 30, 10, 18, rotation=0.4), 1),
        (disk((70, 100), 15), 2),
        (disk((88, 116), 12), 1),         # overlaps the previous one
        (ellipse(25, 120, 8, 14), 2),
        (disk((110, 60), 7), 1),
    ]
    for i, ((rr, cc), c) in enumerate(shapes, 1):
        keep = (rr >= 0) & (rr < SHAPE[0]) & (cc >= 0) & (cc < SHAPE[1])
        gt[rr[keep], cc[keep]] = i
        cls[rr[keep], cc[keep]] = c
    return gt, cls


def interfaces_of(gt: np.ndarray) -> np.ndarray:
    """Pixels of an object next to a pixel of another object (both sides)."""
    larger = ndi.grey_dilation(gt, size=3) > gt
    smaller = ndi.grey_erosion(np.where(gt > 0, gt, gt.max() + 1), size=3) < gt
    return (gt > 0) & (larger | smaller)


def ideal_probabilities(gt: np.ndarray, cls: np.ndarray, n_classes: int = 1,
                        erode: int = 4) -> dict[str, np.ndarray]:
    """What a perfect network would give for ground truth ``gt``."""
    k = n_classes + 1
    sem = cls if n_classes > 1 else (gt > 0).astype(np.int32)
    seg = np.full((k, *gt.shape), 0.05 / (k - 1), np.float32)
    seg[0][gt == 0] = 0.95
    for c in range(1, k):
        seg[c][sem == c] = 0.95
        seg[0][sem == c] = 0.05 / (k - 1)
    det = np.zeros((k, *gt.shape), np.float32)
    inner = np.zeros(gt.shape, bool)
    for i, sl in enumerate(ndi.find_objects(gt), 1):
        inner[sl] |= ndi.binary_erosion(gt[sl] == i, iterations=erode)
    det[0] = ~inner
    for c in range(1, k):
        det[c] = inner & (sem == c)
    sep = np.zeros((2, *gt.shape), np.float32)
    sep[1] = interfaces_of(gt)
    sep[0] = 1 - sep[1]
    return {FOREGROUND: seg, SEEDS: det, BOUNDARIES: sep}


def best_ious(gt: np.ndarray, pred: np.ndarray) -> list[float]:
    """For each GT object, the IoU with the predicted instance overlapping it most."""
    out = []
    for i in range(1, gt.max() + 1):
        m = gt == i
        ids, cnt = np.unique(pred[m], return_counts=True)
        cnt = cnt[ids > 0]
        ids = ids[ids > 0]
        if not len(ids):
            out.append(0.0)
            continue
        p = pred == ids[cnt.argmax()]
        out.append((m & p).sum() / (m | p).sum())
    return out


def test_ideal_probabilities_give_ground_truth():
    gt, cls = ground_truth()
    semantic, inst = instances_from_probabilities(ideal_probabilities(gt, cls))
    assert inst.dtype == np.int32 and semantic.dtype == np.int32
    assert inst.shape == SHAPE
    assert inst.max() == gt.max()
    assert min(best_ious(gt, inst)) >= 0.8
    # Sequential ids, and the whole foreground is covered (interfaces given back).
    assert set(np.unique(inst)) == set(range(gt.max() + 1))
    assert np.array_equal(inst > 0, gt > 0)


def test_touching_disks_without_interfaces_split_by_seeds():
    gt = np.zeros((60, 80), np.int32)
    gt[disk((30, 25), 14)] = 1
    gt[disk((30, 51), 13)] = 2  # overlaps and overwrites: touching, no gap
    assert ndi.label(gt > 0)[1] == 1
    probs = ideal_probabilities(gt, gt > 0)
    del probs[BOUNDARIES]
    _, inst = instances_from_probabilities(probs)
    assert inst.max() == 2
    assert min(best_ious(gt, inst)) >= 0.8
    # The same with a separation head that predicts nothing.
    probs[BOUNDARIES] = np.stack([np.ones(gt.shape), np.zeros(gt.shape)]).astype(np.float32)
    _, inst2 = instances_from_probabilities(probs)
    assert np.array_equal(inst, inst2)


def test_rods_side_by_side_split_along_their_seeds():
    """Two rods side by side with no neck and no interface: the region's distance ridge runs along the
    line where they touch, so the default watershed (foreground probability and distance) floods that line
    first from one seed. ``seed_pull`` lowers the elevation along each rod's core by the seed head's
    probability, which puts the cut where neither rod's seed is likely: between them. (The seeds reach over
    the pixels where the head gives more than 0.3, which mends most of it already: plain IoU 0.90.)"""
    gt = np.zeros((40, 60), np.int32)
    gt[5:35, 10:20] = 1
    gt[5:35, 20:30] = 2
    core = np.zeros(gt.shape, np.float32)
    core[8:32, 13:17] = core[8:32, 23:27] = 1
    seed_p = ndi.gaussian_filter(core, 2.0)
    seed_p /= seed_p.max()
    fg = (gt > 0).astype(np.float32)
    probs = {FOREGROUND: np.stack([1 - fg, fg]), SEEDS: np.stack([1 - seed_p, seed_p])}
    _, plain = instances_from_probabilities(probs)
    _, pulled = instances_from_probabilities(probs, seed_pull=1.0)
    assert plain.max() == pulled.max() == 2
    assert min(best_ious(gt, plain)) < min(best_ious(gt, pulled)) - 0.04   # (0.90: the seeds reach to 0.3)
    assert min(best_ious(gt, pulled)) >= 0.95


def test_the_broken_seed_of_a_rod_joins_into_one_and_two_rods_keep_two():
    """A long rod whose seed head's argmax breaks into three pieces (the head hesitates between them, at
    0.4) is one object; two rods side by side, whose seeds are apart where the head gives 0.1, stay two."""
    gt = np.zeros((50, 60), np.int32)
    gt[5:45, 10:18] = 1
    gt[5:45, 18:26] = 2
    seed_p = np.zeros(gt.shape, np.float32)
    seed_p[8:42, 12:16] = 0.4                 # along rod 1: hesitant
    seed_p[8:14, 12:16] = seed_p[22:28, 12:16] = seed_p[36:42, 12:16] = 0.9   # three confident pieces
    seed_p[8:42, 20:24] = 0.9                 # rod 2: one piece
    seed_p[8:42, 16:20] = 0.1                 # between the rods
    fg = (gt > 0).astype(np.float32)
    probs = {FOREGROUND: np.stack([1 - fg, fg]), SEEDS: np.stack([1 - seed_p, seed_p])}
    _, inst = instances_from_probabilities(probs)
    assert inst.max() == 2
    assert inst[10, 14] == inst[25, 14] == inst[39, 14] != inst[25, 22]   # rod 1's three pieces: one object
    # The argmax alone (nothing joins where the head hesitates): one object per piece.
    confident = np.where(seed_p > 0.5, seed_p, 0)
    joinless = dict(probs, **{SEEDS: np.stack([1 - confident, confident])})
    assert instances_from_probabilities(joinless)[1].max() == 4
    assert instances_from_probabilities(probs, InstanceParams(seed_join_threshold=0.5))[1].max() == 4   # join off


def test_segmentation_only_falls_back_to_distance_peaks():
    gt, cls = ground_truth()
    probs = {FOREGROUND: ideal_probabilities(gt, cls)[FOREGROUND]}
    semantic, inst = instances_from_probabilities(probs)
    assert np.array_equal(inst > 0, gt > 0)
    ious = best_ious(gt, inst)
    # Separate objects come back whole; touching pairs are split at their neck.
    assert np.mean(np.array(ious) >= 0.8) >= 6 / 7
    assert gt.max() - 1 <= inst.max() <= gt.max() + 2
    # seed_source="distance" forces the same fallback when detection exists.
    full = ideal_probabilities(gt, cls)
    del full[BOUNDARIES]
    _, forced = instances_from_probabilities(full, InstanceParams(seed_source=DISTANCE))
    assert np.array_equal(forced, inst)


def test_interfaces_split_objects_without_a_neck():
    gt = np.zeros((60, 80), np.int32)
    gt[disk((30, 30), 15)] = 1
    gt[disk((30, 45), 15)] = 2  # heavy overlap: one convex blob, no neck
    probs = ideal_probabilities(gt, gt > 0)
    # One detection blob over both (as a network may predict for a merged pair).
    inner = ndi.binary_erosion(gt > 0, iterations=4)
    probs[SEEDS] = np.stack([~inner, inner]).astype(np.float32)
    _, merged = instances_from_probabilities({k: v for k, v in probs.items() if k != BOUNDARIES})
    assert merged.max() == 1
    _, inst = instances_from_probabilities(probs)
    assert inst.max() == 2
    assert min(best_ious(gt, inst)) >= 0.8
    assert np.array_equal(inst > 0, gt > 0)


def test_approximation_seeds_when_detection_missing():
    gt, cls = ground_truth()
    probs = ideal_probabilities(gt, cls)
    probs[PARTIAL] = probs.pop(SEEDS)
    _, inst = instances_from_probabilities(probs, InstanceParams(seed_source=PARTIAL))
    assert min(best_ious(gt, inst)) >= 0.8
    _, inst2 = instances_from_probabilities(probs)  # detection asked for, approximation used
    assert np.array_equal(inst, inst2)


def test_unseeded_object_kept_and_specks_dropped():
    gt, cls = ground_truth()
    probs = ideal_probabilities(gt, cls)
    # Object 7 loses its seed: still an instance of its own.
    probs[SEEDS][1][gt == 7] = 0
    probs[SEEDS][0][gt == 7] = 1
    # Specks of foreground (a few px each), one with a seed.
    seg = probs[FOREGROUND]
    for y, x in [(5, 5), (5, 90), (120, 150)]:
        seg[1, y:y + 3, x:x + 3], seg[0, y:y + 3, x:x + 3] = 0.95, 0.05
    probs[SEEDS][1, 5:8, 90:93], probs[SEEDS][0, 5:8, 90:93] = 1, 0
    _, inst = instances_from_probabilities(probs, InstanceParams(min_size=30))
    assert inst.max() == gt.max()
    assert min(best_ious(gt, inst)) >= 0.8
    assert not inst[5:8, 5:8].any() and not inst[5:8, 90:93].any()
    _, keep = instances_from_probabilities(probs, InstanceParams(min_size=0))
    assert keep.max() == gt.max() + 3


def test_small_fragment_merged_into_neighbour():
    gt = np.zeros((60, 60), np.int32)
    gt[disk((30, 30), 15)] = 1
    probs = ideal_probabilities(gt, gt > 0)
    # A spurious second seed on the rim cuts off a small fragment.
    probs[SEEDS][1, 30, 43:45], probs[SEEDS][0, 30, 43:45] = 1, 0
    probs[BOUNDARIES][1, 20:41, 40], probs[BOUNDARIES][0, 20:41, 40] = 1, 0
    _, inst = instances_from_probabilities(probs, InstanceParams(min_seed_area=1, min_size=80))
    assert inst.max() == 1
    assert np.array_equal(inst > 0, gt > 0)


def test_empty_probabilities_give_zeros():
    seg = np.zeros((2, 40, 50), np.float32)
    seg[0] = 1
    probs = {FOREGROUND: seg, SEEDS: seg.copy(), BOUNDARIES: seg.copy()}
    semantic, inst = instances_from_probabilities(probs)
    assert not semantic.any() and not inst.any() and inst.shape == (40, 50)
    assert instance_classes(inst, semantic) == {}


def test_class_assignment_two_classes():
    gt, cls = ground_truth()
    probs = ideal_probabilities(gt, cls, n_classes=2)
    # A few wrongly classed pixels inside object 4 (class 2) do not change its class.
    probs[FOREGROUND][1, 65:68, 95:98], probs[FOREGROUND][2, 65:68, 95:98] = 0.9, 0.05
    semantic, inst = instances_from_probabilities(probs)
    assert np.array_equal(semantic, np.where((gt == 4) & (semantic == 1), 1, cls))
    assert semantic[66, 96] == 1
    classes = instance_classes(inst, semantic)
    assert len(classes) == gt.max()
    for i in range(1, gt.max() + 1):
        j = np.bincount(inst[gt == i]).argmax()
        assert classes[int(j)] == cls[gt == i][0]


def test_semantic_is_argmax_and_missing_segmentation_is_an_error():
    rng = np.random.default_rng(1)
    p = rng.random((3, 20, 30)).astype(np.float32)
    p /= p.sum(0)
    assert np.array_equal(semantic_from_probabilities({FOREGROUND: p}), p.argmax(0))
    with pytest.raises(LazyLabelsError, match="foreground"):
        instances_from_probabilities({SEEDS: p})
    with pytest.raises(LazyLabelsError, match="boundaries"):
        instances_from_probabilities({FOREGROUND: p, BOUNDARIES: p[:, :10]})
    with pytest.raises(SettingsError, match="seed_source"):
        InstanceParams(seed_source="magic")


def test_a_large_crowded_image_gives_every_object():
    rng = np.random.default_rng(0)
    shape = (1024, 1024)
    gt = np.zeros(shape, np.int32)
    n = 0
    while n < 500:
        r = int(rng.integers(6, 16))
        y, x = rng.integers(r, shape[0] - r, 2)
        rr, cc = disk((y, x), r, shape=shape)
        if gt[rr, cc].any():
            continue
        n += 1
        gt[rr, cc] = n
    probs = ideal_probabilities(gt, gt > 0, erode=3)
    _, inst = instances_from_probabilities(probs)
    assert inst.max() == 500
    assert average_precision(inst, gt, 0.9) == 1.0
