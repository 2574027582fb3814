"""Segmentation metrics on hand-made cases with known answers."""

import numpy as np
import pytest

from napari_lazylabels.engine.metrics import (
    AP_THRESHOLDS,
    aggregate,
    ap_sweep,
    average_precision,
    dice,
    dice_per_class,
    match_instances,
    object_dice,
    object_hausdorff,
    summarize,
)


def squares(*corners, shape=(40, 60), size=10, ids=None):
    """An instance map of size x size squares with top-left corners ``corners``."""
    out = np.zeros(shape, np.int32)
    for k, (y, x) in enumerate(corners):
        out[y:y + size, x:x + size] = ids[k] if ids else k + 1
    return out


def test_perfect_prediction_scores_one():
    gt = squares((2, 2), (2, 12), (20, 30))        # two touching squares and a free one
    s = summarize(gt, gt, gt > 0, gt > 0)
    assert s["dice"] == s["ap50"] == s["ap75"] == s["ap_mean"] == s["object_dice"] == 1.0
    assert s["object_hausdorff"] == 0.0
    assert s["counts"][0.5] == [3, 0, 0] and s["dice_class"] == {1: 1.0}
    # ids need not agree, only the objects
    relabelled = squares((2, 2), (2, 12), (20, 30), ids=[900, 5, 70000])
    assert average_precision(relabelled, gt) == 1.0 and object_dice(relabelled, gt) == 1.0


def test_shifted_object_gives_known_iou_ap_dice_and_hausdorff():
    gt = squares((2, 2), (20, 30))
    pred = squares((2, 2), (20, 35))               # second one shifted 5 px: IoU 50/150
    m = match_instances(pred, gt, 0.5)
    assert (m.tp, m.fp, m.fn) == (1, 1, 1)
    assert m.pairs == [(1, 1, 1.0)]
    assert average_precision(pred, gt, 0.5) == pytest.approx(1 / 3)
    assert average_precision(pred, gt, 0.3) == 1.0
    assert match_instances(pred, gt, 0.3).pairs[1] == (2, 2, pytest.approx(1 / 3))
    assert dice(pred, gt) == pytest.approx(2 * 150 / 400)
    # object Dice: 1 for the first pair, 0.5 for the second, equal weights
    assert object_dice(pred, gt) == pytest.approx(0.75)
    # object Hausdorff: 0 and 5, equal weights
    assert object_hausdorff(pred, gt) == pytest.approx(2.5)


def test_merged_objects():
    gt = squares((5, 5), (5, 15))                  # two touching squares
    pred = np.zeros_like(gt)
    pred[5:15, 5:25] = 1                           # one object over both: IoU 0.5 with each
    m = match_instances(pred, gt, 0.5)
    assert (m.tp, m.fp, m.fn) == (1, 0, 1)
    assert average_precision(pred, gt, 0.5) == 0.5
    assert average_precision(pred, gt, 0.55) == 0.0     # tp 0, fp 1, fn 2
    sweep = ap_sweep(pred, gt)
    assert list(sweep) == list(AP_THRESHOLDS)
    assert sweep[0.5] == 0.5 and all(v == 0.0 for t, v in sweep.items() if t > 0.5)
    assert dice(pred, gt) == 1.0
    # GlaS: each gt square's best match is the merged object (Dice 2*100/300);
    # the merged object's best gt is one square (same Dice)
    assert object_dice(pred, gt) == pytest.approx(2 / 3)


def test_matching_is_one_to_one_below_half_iou():
    gt = squares((5, 5), (5, 15))
    pred = squares((5, 10), size=10)               # straddles both: IoU 50/150 with each
    m = match_instances(pred, gt, 0.2)
    assert m.tp == 1 and m.fp == 0 and m.fn == 1


def test_empty_images():
    z = np.zeros((20, 30), np.int32)
    gt = squares((2, 2), shape=(20, 30))
    assert dice(z, z) == 1.0 and dice(z, gt) == 0.0
    assert average_precision(z, z) == 1.0 and average_precision(z, gt) == 0.0
    assert average_precision(gt, z) == 0.0
    assert object_dice(z, z) == 1.0 and object_dice(z, gt) == 0.0
    assert object_hausdorff(z, z) == 0.0
    assert object_hausdorff(z, gt) == pytest.approx(np.hypot(20, 30))
    assert object_hausdorff(gt, z) == pytest.approx(np.hypot(20, 30))
    s = summarize(z, gt)
    assert s["counts"][0.5] == [0, 0, 1] and s["n_pred"] == 0 and s["n_gt"] == 1
    assert not any(np.isnan(v) for v in s.values() if isinstance(v, float))


def test_object_hausdorff_uses_the_nearest_object_when_none_overlaps():
    gt = squares((0, 0), shape=(20, 60))
    pred = squares((0, 20), shape=(20, 60))        # 20 px to the right, no overlap
    assert object_hausdorff(pred, gt) == pytest.approx(20.0)
    assert object_dice(pred, gt) == 0.0
    # a far extra false positive is paired with its nearest gt object, area-weighted
    pred2 = pred.copy()
    pred2[0:10, 50:60] = 2                         # 50 px from gt
    assert object_hausdorff(pred2, gt) == pytest.approx(0.5 * (20.0 + 0.5 * 20.0 + 0.5 * 50.0))


def test_dice_per_class():
    gt = np.zeros((10, 10), np.int32)
    gt[:5] = 1
    gt[5:] = 2
    pred = gt.copy()
    pred[:5, :5] = 2                               # half of class 1 called class 2
    d = dice_per_class(pred, gt, 3)
    assert d[1] == pytest.approx(2 * 25 / 75)
    assert d[2] == pytest.approx(2 * 50 / 125)
    assert d[3] == 1.0                             # absent from both


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((4, 4), int), np.zeros((4, 5), int))
    with pytest.raises(ValueError, match="integer"):
        average_precision(np.zeros((4, 4)), np.zeros((4, 4), int))


def test_aggregate_pools_counts_and_averages_dice():
    gt = squares((2, 2), (20, 30))
    perfect = summarize(gt, gt)
    shifted = summarize(squares((2, 2), (20, 35)), gt)
    empty = summarize(np.zeros_like(gt), gt)
    agg = aggregate([perfect, shifted, empty])
    # tp 2+1+0, fp 0+1+0, fn 0+1+2
    assert agg["counts"][0.5] == [3, 1, 3]
    assert agg["ap50"] == pytest.approx(3 / 7)
    assert agg["dice"] == pytest.approx((1.0 + 0.75 + 0.0) / 3)
    assert agg["n_images"] == 3 and agg["n_gt"] == 6
    with_cls = aggregate([summarize(gt, gt, gt > 0, gt > 0), summarize(gt * 0, gt, gt * 0, gt > 0)])
    assert with_cls["dice_class"] == {1: 0.5}


def test_many_objects_are_matched_one_to_one():
    # 24 x 24 = 576 objects, predicted shifted by 1 px
    gt = np.zeros((480, 480), np.int32)
    k = 0
    for y in range(24):
        for x in range(24):
            k += 1
            gt[y * 20 + 2:y * 20 + 17, x * 20 + 2:x * 20 + 17] = k
    pred = np.roll(gt, 1, axis=1) * 7 + 3 * (np.roll(gt, 1, axis=1) > 0)
    s = summarize(pred, gt)
    # IoU of a 15x15 square shifted by 1: 210 / 240
    assert s["counts"][0.85] == [576, 0, 0] and s["counts"][0.9] == [0, 576, 576]
    assert s["object_hausdorff"] == pytest.approx(1.0)


def test_best_overlap_scores_pair_each_true_object_with_its_largest_overlap_and_skip_small_ones():
    from napari_lazylabels.engine.metrics import best_overlap_scores, pixel_f1, pool_best_overlap
    gt = np.zeros((20, 40), np.int32)
    gt[0:10, 0:10] = 1            # 100 px
    gt[0:10, 20:30] = 2           # 100 px, not found
    gt[15:19, 35:39] = 3          # 16 px: under 20, left out
    pred = np.zeros_like(gt)
    pred[0:10, 0:6] = 5           # 60 px inside object 1: the largest overlap
    pred[0:10, 6:12] = 6          # 60 px, 40 of them inside object 1
    pred[15:19, 0:4] = 7          # 16 px: left out
    s = best_overlap_scores(pred, gt)
    assert s["n_objects"] == 2
    assert s["mdice"] == pytest.approx((2 * 60 / 160 + 0.0) / 2)
    assert s["miou"] == pytest.approx((60 / 100 + 0.0) / 2)
    assert s["pixel_f1"] == pytest.approx(2 * 100 / (120 + 200))   # small objects left out of it too
    assert pixel_f1(pred, gt) == pytest.approx(2 * 100 / (136 + 216))
    pooled = pool_best_overlap([s, best_overlap_scores(gt, gt)])
    assert pooled["n_objects"] == 4 and pooled["mdice"] == pytest.approx((2 * 60 / 160 + 0 + 1 + 1) / 4)
    assert best_overlap_scores(np.zeros_like(gt), np.zeros_like(gt))["mdice"] == 1.0
    missed = best_overlap_scores(np.zeros_like(gt), gt)            # nothing found: 0, no error
    assert missed["mdice"] == missed["miou"] == 0.0 and missed["n_objects"] == 2


def test_summarize_without_hausdorff_gives_the_same_counts_and_skips_only_it():
    import numpy as np
    from napari_lazylabels.engine.metrics import summarize
    gt = np.zeros((40, 40), np.int32)
    gt[5:15, 5:15], gt[20:30, 20:35] = 1, 2
    pred = np.zeros_like(gt)
    pred[6:16, 5:15], pred[0:40, 18:40] = 3, 4
    full, quick = summarize(pred, gt), summarize(pred, gt, hausdorff=False)
    assert np.isnan(quick["object_hausdorff"]) and full["object_hausdorff"] > 0
    assert {k: v for k, v in full.items() if k != "object_hausdorff"} == \
        {k: v for k, v in quick.items() if k != "object_hausdorff"}
