"""Each object of the machine-made mask keeps one point (engine/autolabel_mask.py ``one_per_basin``): the
texture inside a large object does not make it several, and two objects joined by a neck keep one each."""

import numpy as np
from skimage.draw import disk

from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel
from napari_lazylabels.engine.autolabel_mask import one_per_basin


def pts(*yx):
    return np.array([(y, x, 1.0) for y, x in yx], np.float64)


def two_discs(gap: float, size: int = 120, r: int = 20) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    for x in (size / 2 - gap / 2, size / 2 + gap / 2):
        rr, cc = disk((size / 2, x), r, shape=mask.shape)
        mask[rr, cc] = True
    return mask


def test_one_object_keeps_its_strongest_point():
    mask = two_discs(0.0)      # one disc of radius 20
    points = pts((60, 50), (60, 70), (52, 60), (5, 5))      # three inside, one outside the mask
    keep = one_per_basin(points, np.array([0.4, 0.9, 0.7, 0.1]), mask)
    assert keep.tolist() == [1, 3]       # the strongest inside; the point outside is not the rule's to drop


def test_two_objects_joined_by_a_neck_keep_a_point_each():
    mask = two_discs(34.0)     # discs of radius 20, 34 px apart: a neck about 21 px wide between 40 px bodies
    assert mask[60, 60] and np.count_nonzero(mask[:, 60]) < 30
    points = pts((60, 43), (60, 77))
    assert one_per_basin(points, np.array([1.0, 0.5]), mask).tolist() == [0, 1]
    # without a neck (the same centres, one convex body) they are one object
    body = np.zeros_like(mask)
    body[30:91, 23:98] = True
    assert one_per_basin(points, np.array([1.0, 0.5]), body).tolist() == [0]


def textured_cells(size: int = 160, seed: int = 0):
    """Four bright discs of radius 22 on a dark background, each with dark speckles (organelles)."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 0.1)
    for y, x in ((40, 40), (40, 120), (120, 40), (120, 120)):
        rr, cc = disk((y, x), 22, shape=img.shape)
        img[rr, cc] = 0.9
        for _ in range(6):      # dark specks inside: the bright rest answers as small blobs
            sy, sx = rng.integers(-14, 15, 2)
            rr, cc = disk((y + sy, x + sx), 3, shape=img.shape)
            img[rr, cc] = 0.35
    return img + rng.normal(0, 0.01, img.shape)


def test_a_textured_object_read_at_too_small_a_scale_trains_as_one_point():
    img = textured_cells()
    cfg = dict(object_size=12, threshold="fixed", threshold_value=0.25, detection_threshold=0.02)
    many = autolabel(img, AutolabelConfig(one_per_object=False, **cfg))
    one = autolabel(img, AutolabelConfig(**cfg))
    assert len(many.points) > 4
    assert len(one.points) == 4
    cells = {(int(y) // 80, int(x) // 80) for y, x, _ in one.points}
    assert len(cells) == 4       # one in each cell
    assert np.array_equal(one.foreground, many.foreground)
