"""Touching round nuclei that the blob detector sees as one blob take two points (``--split-pairs``,
engine/autolabel_mask.py ``split_pairs``); a round object, or a small one, keeps its one point. By default
(``auto``) only where the objects are round (``objects_round``): not where they are elongated or ragged."""

import numpy as np
import pytest
from skimage.draw import disk, ellipse, polygon

from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel
from napari_lazylabels.engine.autolabel_mask import cut_between_points, objects_round, split_pairs
from napari_lazylabels.errors import SettingsError


def scene():
    """Three lone discs of radius 10, and a pair of them touching without a neck (centres 16 px apart)."""
    mask = np.zeros((100, 160), bool)
    for y, x in ((25, 25), (25, 75), (75, 25), (60, 100), (60, 116)):
        rr, cc = disk((y, x), 10, shape=mask.shape)
        mask[rr, cc] = True
    return mask


def test_a_large_elongated_part_takes_two_points_near_its_nuclei_centres():
    mask = scene()
    points = np.array([(25, 25, 1), (25, 75, 1), (75, 25, 1), (60, 108, 2)], np.float64)   # one on the pair
    out, conf = split_pairs(points, np.array([1.0, 0.9, 0.8, 0.7]), mask)
    assert len(out) == 5 and len(conf) == 5
    assert np.array_equal(out[:3], points[:3]) and conf[:3].tolist() == [1.0, 0.9, 0.8]   # the rest kept
    new = out[3:]
    assert sorted(np.round(new[:, 1]).tolist()) == pytest.approx([100, 116], abs=3)     # one in each nucleus
    assert np.all(np.abs(new[:, 0] - 60) <= 2)
    assert new[:, 2].tolist() == [2.0, 2.0] and conf[3:].tolist() == [0.7, 0.7]        # class and confidence


def test_round_parts_and_a_pair_with_both_points_stay_as_they_are():
    mask = scene()
    points = np.array([(25, 25, 1), (25, 75, 1), (75, 25, 1), (60, 100, 1), (60, 116, 1)], np.float64)
    out, conf = split_pairs(points, np.ones(5), mask)
    assert np.array_equal(out, points) and len(conf) == 5
    # a part twice the median but round (a large nucleus) is not split
    big = np.zeros((100, 160), bool)
    for (y, x), r in (((25, 25), 10), ((25, 75), 10), ((75, 25), 10), ((60, 110), 15)):
        rr, cc = disk((y, x), r, shape=big.shape)
        big[rr, cc] = True
    pts = np.array([(25, 25, 1), (25, 75, 1), (75, 25, 1), (60, 110, 1)], np.float64)
    assert np.array_equal(split_pairs(pts, np.ones(4), big)[0], pts)


LONE = ((20, 20), (20, 60), (20, 100), (60, 20), (100, 20), (100, 60))


def test_round_objects_are_told_from_elongated_or_ragged_ones():
    shape = (120, 120)
    points = np.array([(y, x, 1) for y, x in LONE], np.float64)
    discs = np.zeros(shape, bool)
    for y, x in LONE:
        discs[disk((y, x), 10, shape=shape)] = True
    assert objects_round(cut_between_points(points, discs))
    assert not objects_round(cut_between_points(points[:3], discs))     # three parts are too few to say
    long = np.zeros(shape, bool)
    for y, x in LONE:
        long[ellipse(y, x, 4, 15, shape=shape)] = True       # 3.75 times as long as wide
    assert not objects_round(cut_between_points(points, long))
    ragged = np.zeros(shape, bool)
    for y, x in LONE:                                        # crosses: far from convex
        ragged[polygon([y - 12, y - 12, y + 12, y + 12], [x - 3, x + 3, x + 3, x - 3], shape)] = True
        ragged[polygon([y - 3, y - 3, y + 3, y + 3], [x - 12, x + 12, x + 12, x - 12], shape)] = True
    assert not objects_round(cut_between_points(points, ragged))


def image_of(mask, seed=0):
    return 0.1 + 0.8 * mask + np.random.default_rng(seed).normal(0, 0.01, mask.shape)


CFG = dict(object_size=20, threshold="fixed", threshold_value=0.5)


def round_nuclei():
    """The scene with five lone nuclei, enough to read their shape (also the napari panel's test image)."""
    mask = scene()
    for y, x in ((75, 75), (25, 130)):
        mask[disk((y, x), 10, shape=mask.shape)] = True
    return image_of(mask)


def test_by_default_the_pair_is_split_where_the_nuclei_are_round():
    img = round_nuclei()
    assert AutolabelConfig().split_pairs == "auto"
    split = autolabel(img, AutolabelConfig(**CFG))
    assert len(split.points) == 7 and len(split.point_confidence) == 7
    assert split.reading.pairs_split and "round objects" in split.describe()
    on_pair = split.points[(split.points[:, 1] > 95) & (np.abs(split.points[:, 0] - 60) < 8)]
    assert sorted(np.round(on_pair[:, 1]).tolist()) == pytest.approx([100, 116], abs=3)   # one in each
    plain = autolabel(img, AutolabelConfig(split_pairs="off", **CFG))
    assert len(plain.points) == 6 and not plain.reading.pairs_split       # the pair holds one blob


def test_by_default_elongated_objects_are_not_split_and_on_splits_always():
    img = np.zeros((120, 200), bool)
    for y, x in ((20, 30), (20, 90), (20, 150), (60, 30), (100, 30), (100, 90), (60, 100)):
        img[ellipse(y, x, 6, 20, shape=img.shape)] = True
    img[ellipse(80, 160, 9, 34, shape=img.shape)] = True     # a long one, twice the others' area
    found = autolabel(image_of(img, 1), AutolabelConfig(**CFG))
    assert not found.reading.pairs_split
    forced = autolabel(image_of(img, 1), AutolabelConfig(split_pairs="on", **CFG))
    assert forced.reading.pairs_split and len(forced.points) > len(found.points)
    assert "touching pairs split as set" in forced.describe() and "round objects" not in forced.describe()
    with pytest.raises(SettingsError, match="split pairs"):
        AutolabelConfig(split_pairs="yes")
