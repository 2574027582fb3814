"""The machine-made mask grows at the points of dim objects it missed (engine/autolabel_mask.py), and
only there: not into a textured region, not as an extension of an object already found."""

import numpy as np
from skimage.draw import disk

from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel
from napari_lazylabels.engine.autolabel_mask import grown_to_points, region_confidence


def bright_and_dim(dim: float = 0.7, size: int = 160, seed: int = 0):
    """Four bright discs (1.0) and two dim ones (``dim``) of radius 8 on 0.2, with a little noise."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 0.2)
    truth = np.zeros((size, size), np.int32)
    centres = [(30, 30), (30, 130), (130, 30), (130, 130), (80, 55), (80, 105)]
    for k, (y, x) in enumerate(centres, 1):
        rr, cc = disk((y, x), 8, shape=img.shape)
        img[rr, cc] = 1.0 if k <= 4 else dim
        truth[rr, cc] = k
    return img + rng.normal(0, 0.01, img.shape), truth


def dice(a, b):
    return 2 * np.sum(a & b) / max(1, np.sum(a) + np.sum(b))


def test_a_dim_object_missed_by_the_threshold_gets_its_own_piece_and_keeps_its_point():
    img, truth = bright_and_dim()
    cfg = dict(object_size=16, threshold="fixed", threshold_value=0.85)
    grown = autolabel(img, AutolabelConfig(**cfg))
    plain = autolabel(img, AutolabelConfig(grow_mask=False, **cfg))
    assert len(plain.points) == 4 and len(grown.points) == 6
    dim = truth > 4
    assert not np.any(plain.foreground[dim]) and dice(grown.foreground > 0, dim | (plain.foreground > 0)) > 0.9
    for k in (5, 6):        # each dim disc is a piece of its own, about its size
        piece = grown.pieces[truth == k]
        assert np.all(piece == piece[0]) and 0.8 < np.sum(grown.pieces == piece[0]) / np.sum(truth == k) < 1.3
    # the grown pieces are as trusted as their points (their contrast is to a local level, not the threshold)
    assert not grown.doubtful()[1]


def test_a_point_in_a_textured_region_or_next_to_a_found_object_grows_nothing():
    rng = np.random.default_rng(1)
    img = np.full((120, 120), 0.2)
    img[:, 60:] = 0.5 + rng.normal(0, 0.02, (120, 60))        # a wide plateau: no object's size
    found = np.zeros(img.shape, bool)
    rr, cc = disk((20, 20), 8)
    found[rr, cc] = True
    img[found] = 1.0
    rr, cc = disk((20, 32), 6)                                 # a dim shoulder of the found disc
    img[rr, cc] = np.maximum(img[rr, cc], 0.6)
    points = np.array([[90.0, 90.0, 1], [20.0, 35.0, 1]])
    out, inside = grown_to_points(found, img, False, points, 16.0, 10)
    assert np.array_equal(out, found) and not inside.any()


def test_confidence_of_grown_pieces_is_their_points():
    mask = np.zeros((40, 40), bool)
    mask[5:15, 5:15] = mask[25:35, 25:35] = True
    grown = np.zeros_like(mask)
    grown[25:35, 25:35] = True
    smoothed = np.where(mask, 1.0, 0.0)
    smoothed[grown] = 0.45                                     # just under the threshold 0.5: "no contrast"
    points = np.array([[10.0, 10.0, 1], [30.0, 30.0, 1]])
    _, plain = region_confidence(mask, smoothed, 0.5, points)
    _, conf = region_confidence(mask, smoothed, 0.5, points, grown, np.array([1.0, 0.8]))
    assert plain[2] < 0.5 and conf[2] == 0.8 and conf[1] == plain[1]
