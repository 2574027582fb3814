"""Touching round nuclei that the blob detector sees as one blob take two points (``--split-pairs``,
engine/autolabel_mask.py ``split_pairs``); a round object, or a small one, keeps its one point."""

import numpy as np
import pytest
from skimage.draw import disk

from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel
from napari_lazylabels.engine.autolabel_mask import split_pairs
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


def test_the_option_is_off_by_default_and_splits_the_pair_when_on():
    rng = np.random.default_rng(0)
    img = 0.1 + 0.8 * scene() + rng.normal(0, 0.01, (100, 160))
    cfg = dict(object_size=20, threshold="fixed", threshold_value=0.5)
    assert not AutolabelConfig().split_pairs
    plain = autolabel(img, AutolabelConfig(**cfg))
    split = autolabel(img, AutolabelConfig(split_pairs=True, **cfg))
    assert len(plain.points) == 4          # the pair holds one blob
    assert len(split.points) == 5
    assert len(split.point_confidence) == 5
    with pytest.raises(SettingsError):
        AutolabelConfig(split_pairs="yes")
