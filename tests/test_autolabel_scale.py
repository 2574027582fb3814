"""The object scale read from blobs, not ridges: halos around cells, membranes between them, and
cells that show only by their texture (phase contrast)."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk

from napari_lazylabels.engine.autolabel import autolabel
from napari_lazylabels.engine.autolabel_scale import estimate_scale


def _centres(size: int, step: int, jitter: int, seed: int):
    rng = np.random.default_rng(seed)
    for y in range(step // 2, size - step // 2 + 1, step):
        for x in range(step // 2, size - step // 2 + 1, step):
            yield y + int(rng.integers(-jitter, jitter + 1)), x + int(rng.integers(-jitter, jitter + 1))


def haloed_cells(radius: int = 16, halo: int = 3, size: int = 320, seed: int = 0, bright_halo: bool = False):
    """Bright discs each in a thin ring (a dark halo, or a bright one) on a grey background."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 0.4)
    truth = np.zeros((size, size), np.int32)
    for k, (y, x) in enumerate(_centres(size, 3 * radius + 2 * halo, 3, seed), start=1):
        rr, cc = disk((y, x), radius + halo, shape=img.shape)
        img[rr, cc] = 1.0 if bright_halo else 0.0
        rr, cc = disk((y, x), radius, shape=img.shape)
        img[rr, cc] = 0.7
        truth[rr, cc] = k
    return ndi.gaussian_filter(img, 1.0) + rng.normal(0, 0.01, img.shape), truth


def textured_cells(radius: int = 20, size: int = 400, seed: int = 1):
    """Phase-contrast-like cells: inside as grey as the background on average but textured, outlined
    by a thin, faint bright halo; the background flat."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 0.5)
    truth = np.zeros((size, size), np.int32)
    texture = rng.normal(0, 1, img.shape)       # a fine grain, as grey as the background on average
    texture *= 0.1 / texture.std()
    for k, (y, x) in enumerate(_centres(size, 4 * radius, 4, seed), start=1):
        rr, cc = disk((y, x), radius + 2, shape=img.shape)
        img[rr, cc] = 0.65
        rr, cc = disk((y, x), radius, shape=img.shape)
        img[rr, cc] = 0.5 + texture[rr, cc]
        truth[rr, cc] = k
    return img + rng.normal(0, 0.01, img.shape), truth


def membranes(size: int = 320, cell: int = 32, seed: int = 2):
    """EM-like: bright cells separated only by dark 2 px membranes (a jittered grid's Voronoi cells)."""
    rng = np.random.default_rng(seed)
    pts = np.array(list(_centres(size, cell, cell // 4, seed)))
    yy, xx = np.mgrid[:size, :size]
    d = np.min((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2, axis=-1)
    owner = np.argmin((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2, axis=-1)
    del d
    edge = ndi.morphological_gradient(owner, size=2) > 0
    img = np.where(edge, 0.1, 0.8) + rng.normal(0, 0.02, (size, size))
    truth = np.where(edge, 0, owner + 1).astype(np.int32)
    return img, truth


def _median_diameter(truth):
    areas = np.bincount(truth.ravel())[1:]
    return float(np.median(2 * np.sqrt(areas[areas > 0] / np.pi)))


def test_a_dark_halo_does_not_set_the_scale():
    img, truth = haloed_cells()
    est = estimate_scale(img)
    true = _median_diameter(truth)
    assert not est.dark and not est.texture
    assert true / 1.5 <= est.diameter <= true * 1.5, (est.diameter, true)


def test_a_bright_halo_around_a_grey_cell_is_not_taken_for_the_cell():
    img, truth = haloed_cells(bright_halo=True)
    est = estimate_scale(img)
    true = _median_diameter(truth)
    assert est.diameter >= true / 1.5, (est.diameter, true)        # a 3 px ring is not the object


@pytest.mark.xfail(strict=True, reason="known limit: the bright corners between meeting membranes answer as "
                   "small blobs (about 5 px) more than the 34 px cells do; on the ISBI sections the estimate is "
                   "10-16 px for cells of about 29 (docs/benchmarks.md)")
def test_membranes_do_not_set_the_scale():
    img, truth = membranes()
    est = estimate_scale(img)
    true = _median_diameter(truth)
    assert not est.dark
    assert true / 1.6 <= est.diameter <= true * 1.6, (est.diameter, true)


def test_textured_cells_are_found_by_their_texture():
    img, truth = textured_cells()
    labels = autolabel(img)
    assert labels.reading.texture and "texture" in labels.describe()
    true = _median_diameter(truth)
    assert true / 1.5 <= labels.reading.diameter <= true * 1.5, (labels.reading.diameter, true)
    fg, t = labels.foreground > 0, truth > 0
    assert 2 * np.sum(fg & t) / (fg.sum() + t.sum()) > 0.75
    pix = np.floor(labels.points[:, :2] + 0.5).astype(int)
    hit = truth[pix[:, 0], pix[:, 1]]
    assert len(set(hit[hit > 0])) >= 0.8 * truth.max()         # most cells have a point
    assert len(labels.points) <= 1.5 * truth.max()             # about one each, not one per speck


def test_intensity_blobs_are_not_read_as_texture():
    img, truth = haloed_cells(halo=0)
    assert not estimate_scale(img).texture
