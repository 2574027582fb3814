"""GrabCut drafts of strong masks from detection blobs."""

from __future__ import annotations


import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse

from napari_lazylabels.errors import AnnotationError
from napari_lazylabels.engine.grabcut import blob_components, grabcut_drafts


def render(gt: np.ndarray, seed: int = 0) -> np.ndarray:
    """Bright objects on a dark noisy background, slightly blurred (uint16 like a camera)."""
    rng = np.random.default_rng(seed)
    img = np.where(gt > 0, 900.0, 150.0)
    img = ndi.gaussian_filter(img, 1.0) + rng.normal(0, 40, gt.shape)
    return np.clip(img, 0, 4095).astype(np.uint16)


def central_blobs(gt: np.ndarray, classes: dict[int, int] | None = None, frac: float = 0.35) -> np.ndarray:
    """A blob at each object's centre, ``frac`` of its equivalent radius."""
    blobs = np.zeros(gt.shape, np.uint8)
    for i, c in enumerate(ndi.center_of_mass(gt > 0, gt, range(1, gt.max() + 1)), 1):
        r = max(1.0, frac * np.sqrt((gt == i).sum() / np.pi))
        blobs[disk(c, r, shape=gt.shape)] = (classes or {}).get(i, 1)
    return blobs


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / max((a | b).sum(), 1)


def scene() -> np.ndarray:
    gt = np.zeros((128, 128), np.int32)
    gt[disk((25, 25), 12)] = 1
    gt[disk((30, 80), 16)] = 2
    gt[ellipse(85, 35, 10, 18, rotation=0.5)] = 3
    gt[disk((90, 95), 9)] = 4
    gt[ellipse(60, 115, 7, 10)] = 5
    return gt


def test_drafts_recover_disks_from_central_blobs():
    gt = scene()
    classes = {1: 1, 2: 2, 3: 1, 4: 2, 5: 1}
    drafts = grabcut_drafts(render(gt), central_blobs(gt, classes))
    assert drafts.dtype == np.uint8 and drafts.shape == gt.shape
    assert iou(drafts > 0, gt > 0) >= 0.85
    for i, c in classes.items():
        obj = gt == i
        assert iou((drafts > 0) & ndi.binary_dilation(obj, iterations=3), obj) >= 0.85
        assert np.bincount(drafts[obj]).argmax() == c  # class of the blob
    # The bare METHOD form (no first guess, no smoothing) works on these too.
    bare = grabcut_drafts(render(gt), central_blobs(gt, classes), preseed=False, smooth=0)
    assert iou(bare > 0, gt > 0) >= 0.85


def test_touching_disks_are_not_merged():
    gt = np.zeros((80, 110), np.int32)
    gt[disk((40, 35), 18)] = 1
    gt[disk((40, 68), 16)] = 2  # overlaps the first: touching, no visible boundary
    blobs = central_blobs(gt, {1: 1, 2: 2})
    drafts = grabcut_drafts(render(gt, 1), blobs)
    for i in (1, 2):
        mine = drafts == i
        assert (mine & (gt == i)).sum() / mine.sum() >= 0.9   # stays in its own disk
        assert iou(mine, gt == i) >= 0.8
    # Same classes: the drafts still split (each blob is its own object).
    same = grabcut_drafts(render(gt, 1), (blobs > 0).astype(np.uint8))
    assert np.array_equal(same > 0, drafts > 0)


def test_two_blobs_in_one_object_share_it():
    # Both drafts claim the whole disk: the contested pixels are split between them.
    gt = np.zeros((70, 70), np.int32)
    gt[ellipse(35, 35, 14, 26)] = 1
    blobs = np.zeros(gt.shape, np.uint8)
    blobs[33:38, 18:23] = 1
    blobs[33:38, 48:53] = 2
    out = grabcut_drafts(render(gt), blobs)
    assert iou(out > 0, gt > 0) >= 0.85
    for c, x in ((1, 20), (2, 50)):
        part = out == c
        assert part[35, x] and ndi.label(part)[1] == 1
        assert part.sum() >= 0.3 * gt.sum()
    assert out[35, 25] == 1 and out[35, 45] == 2


def test_crowded_scene_with_small_inner_blobs():
    rng = np.random.default_rng(7)
    gt = np.zeros((192, 192), np.int32)
    n = 0
    for _ in range(2000):
        a = rng.uniform(6, 16)
        rr, cc = ellipse(*rng.uniform(0, 192, 2), a, a * rng.uniform(0.6, 1), shape=gt.shape,
                         rotation=rng.uniform(0, np.pi))
        overlap = gt[rr, cc] > 0
        if len(rr) < 40 or overlap.mean() > 0.1 or (overlap.any() and rng.random() > 0.5):
            continue
        n += 1
        gt[rr, cc] = n
        if n == 40:
            break
    # Levels differ per object (dim ones next to bright ones); blobs are each object's
    # inner quarter-depth core, with the object's id as its class to score each draft.
    levels = np.concatenate([[150.0], rng.uniform(500, 1100, n)])
    img = ndi.gaussian_filter(levels[gt], 1.0) + rng.normal(0, 40, gt.shape)
    blobs = np.zeros(gt.shape, np.uint8)
    for i, sl in enumerate(ndi.find_objects(gt), 1):
        depth = ndi.distance_transform_edt(gt[sl] == i)
        blobs[sl][depth >= 0.75 * depth.max()] = i
    calls = []
    out = grabcut_drafts(img, blobs, progress=lambda i, total: calls.append((i, total)))
    assert calls == [(i, n) for i in range(1, n + 1)]
    ious = np.array([iou(out == i, gt == i) for i in range(1, n + 1)])
    assert ious.mean() >= 0.9 and (ious >= 0.85).mean() >= 0.9
    # Reproducible (GrabCut's k-means is seeded).
    assert np.array_equal(out, grabcut_drafts(img, blobs))


def test_existing_pixels_are_never_changed():
    gt = scene()
    img, blobs = render(gt), central_blobs(gt)
    existing = np.zeros(gt.shape, np.uint16)
    existing[20:40, 70:90] = 2        # part of object 2, another class than its blob
    existing[0:5, 0:128] = 3          # a stripe over background
    existing[60:62, 30:40] = 1        # a few pixels inside object 3
    out = grabcut_drafts(img, blobs, existing)
    assert out.dtype == np.uint16
    painted = existing > 0
    assert np.array_equal(out[painted], existing[painted])
    # The rest of the objects is drafted around the painted pixels, except
    # object 2: its blob lies in the painted square, so it counts as done.
    free = (gt > 0) & (gt != 2) & ~painted
    assert iou((out > 0) & free, free) >= 0.85
    assert not out[(gt == 2) & ~painted].any()
    # A blob already painted over is skipped: nothing new around it.
    existing2 = np.zeros(gt.shape, np.uint8)
    existing2[blobs > 0] = 1
    existing2[gt == 4] = 0
    out2 = grabcut_drafts(img, blobs, existing2)
    assert np.array_equal(out2[gt != 4] > 0, existing2[gt != 4] > 0)
    assert iou((out2 > 0) & (gt == 4), gt == 4) >= 0.85


def test_only_restricts_to_selected_blobs():
    gt = scene()
    img, blobs = render(gt), central_blobs(gt)
    comps, classes = blob_components(blobs)
    assert len(classes) == 5
    pick = int(comps[gt == 3].max())
    calls = []
    out = grabcut_drafts(img, blobs, only={pick, 999}, progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 1)]
    assert iou(out > 0, gt == 3) >= 0.85
    assert not out[ndi.binary_dilation(gt == 3, iterations=2) == 0].any()


def test_blob_components_split_touching_blobs_of_different_classes():
    blobs = np.zeros((10, 10), np.uint8)
    blobs[2:5, 2:5] = 1
    blobs[2:5, 5:8] = 2
    blobs[7, 1] = 1
    blobs[8, 2] = 1  # diagonal neighbour: same blob
    comps, classes = blob_components(blobs)
    assert classes == {1: 1, 2: 2, 3: 1}
    assert comps[7, 1] == comps[8, 2] == 3


def test_blob_at_border_and_box_outside_image():
    gt = np.zeros((64, 64), np.int32)
    gt[disk((0, 0), 14, shape=gt.shape)] = 1
    gt[disk((40, 63), 12, shape=gt.shape)] = 2
    blobs = np.zeros(gt.shape, np.uint8)
    blobs[0:4, 0:4] = 1
    blobs[37:44, 58:64] = 1
    out = grabcut_drafts(render(gt), blobs, margin=30)
    for i in (1, 2):
        assert iou((out > 0) & (gt == i), gt == i) >= 0.85


def test_degenerate_inputs_do_not_crash():
    # Constant image.
    blobs = np.zeros((40, 40), np.uint8)
    blobs[18:22, 18:22] = 1
    blobs[5, 5] = 1                                 # one-pixel blob
    out = grabcut_drafts(np.full((40, 40), 7.0), blobs)
    assert out.shape == blobs.shape and out[blobs > 0].all()
    # Blob covering the whole image: no background samples.
    full = np.ones((20, 20), np.uint8)
    out = grabcut_drafts(np.random.default_rng(0).random((20, 20)), full)
    assert out.all()
    # Blob covering its whole search box (box clipped by the image).
    out = grabcut_drafts(np.zeros((12, 12), np.float32), full[:12, :12] * 3, margin=0, grow=0)
    assert (out == 3).all()
    # No blobs: nothing drafted; existing returned as is.
    ex = np.zeros((20, 20), np.int32)
    ex[3, 3] = 4
    out = grabcut_drafts(np.zeros((20, 20)), np.zeros((20, 20), np.uint8), ex)
    assert out.dtype == np.int32 and np.array_equal(out, ex)
    # NaNs in the image and RGB / 2-channel images.
    img = np.random.default_rng(1).random((40, 40, 2))
    img[0, 0] = np.nan
    assert grabcut_drafts(img, blobs)[blobs > 0].all()
    assert grabcut_drafts(np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8),
                          blobs)[blobs > 0].all()
    # Large class values need a wider dtype.
    big = blobs.astype(np.uint16) * 300
    assert grabcut_drafts(np.full((40, 40), 7.0), big).dtype == np.uint16


def test_bad_shapes_are_one_line_errors():
    with pytest.raises(AnnotationError, match="does not match"):
        grabcut_drafts(np.zeros((10, 12)), np.zeros((10, 10), np.uint8))
    with pytest.raises(AnnotationError, match="existing"):
        grabcut_drafts(np.zeros((10, 10)), np.zeros((10, 10), np.uint8), np.zeros((9, 9), np.uint8))


def test_rgb_image():
    gt = scene()
    gray = render(gt).astype(np.float32)
    rgb = np.stack([gray, gray * 0.5, gray * 0.2], axis=-1)
    out = grabcut_drafts(rgb, central_blobs(gt))
    assert iou(out > 0, gt > 0) >= 0.85


def test_hundred_blobs_on_a_large_image():
    rng = np.random.default_rng(3)
    gt = np.zeros((512, 512), np.int32)
    n = 0
    while n < 100:
        r = int(rng.integers(8, 16))
        y, x = rng.integers(r, 512 - r, 2)
        rr, cc = disk((y, x), r, shape=gt.shape)
        if gt[rr, cc].any():
            continue
        n += 1
        gt[rr, cc] = n
    blobs = central_blobs(gt)
    out = grabcut_drafts(render(gt), blobs)
    assert iou(out > 0, gt > 0) >= 0.85
