"""The objects' size as the machine-made labels read it: a noisy image is read after a light smoothing
(its membranes do not turn into dark objects), and the size read from blobs is corrected by the objects
of the mask (``engine/autolabel_reading.py`` ``sized_by_mask``)."""

import numpy as np
import pytest
from skimage.draw import disk

from napari_lazylabels.engine.autolabel import SIZE_CORRECTION, AutolabelConfig, autolabel, classical_instances
from napari_lazylabels.engine.autolabel_mask import mask_diameter
from napari_lazylabels.engine.autolabel_scale import estimate_scale
from napari_lazylabels.engine.metrics import average_precision
from napari_lazylabels.engine.synthetic import make_image

from test_autolabel_scale import membranes


def _median_diameter(truth):
    areas = np.bincount(np.asarray(truth).ravel())[1:]
    return float(np.median(2 * np.sqrt(areas[areas > 0] / np.pi)))


def test_mask_diameter_counts_the_objects_between_necks():
    mask = np.zeros((200, 200), bool)
    for y in (40, 100, 160):
        for x in (40, 100, 160):
            rr, cc = disk((y, x), 12, shape=mask.shape)
            mask[rr, cc] = True
    assert mask_diameter(mask) == pytest.approx(24, rel=0.1)
    mask[40, 46:95] = True           # a thin bridge joins two discs: still two objects, not one of twice the area
    mask[39:42, 46:95] = True
    assert mask_diameter(mask) == pytest.approx(24, rel=0.1)
    assert mask_diameter(mask[:80, :80]) is None         # one object: too few to tell a size


def test_a_noisy_section_of_cells_between_membranes_is_read_as_bright_cells():
    # EM-like: bright 55 px cells between dark 2 px membranes, noise as on ISBI sections 26 and 28. A 2 px
    # smoothing before the scale read made the membranes answer as dark objects, and no cell was found.
    img, truth = membranes(cell=48)
    img = img + np.random.default_rng(5).normal(0, 0.035, img.shape)
    labels = autolabel(img)
    assert labels.reading.noise > 0.04 and not labels.reading.dark
    assert average_precision(classical_instances(labels.points, labels.foreground), truth) > 0.8


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_size_read_from_blobs_is_corrected_by_the_masks_objects(seed):
    # touching nuclei: the strongest blob answers of the image come from the largest objects and pairs
    im = make_image(seed, (256, 256), touching=0.3)
    true = _median_diameter(im.instances)
    blob = autolabel(im.image, AutolabelConfig(size_from_mask=False)).reading
    read = autolabel(im.image).reading
    assert read.from_mask and not blob.from_mask
    assert abs(read.diameter - true) < abs(blob.diameter - true), (read.diameter, blob.diameter, true)
    assert "read from the mask's objects" in read.describe()


def test_the_correction_is_bounded_and_left_out_when_the_size_is_given():
    img, _ = membranes()         # the membranes' corners answer as 5 px blobs; the cells are 34 px
    blob = estimate_scale(img).diameter
    assert autolabel(img).reading.diameter == pytest.approx(SIZE_CORRECTION * blob)
    given = autolabel(img, AutolabelConfig(object_size=12)).reading
    assert given.diameter == 12 and not given.from_mask and "given" in given.describe()
