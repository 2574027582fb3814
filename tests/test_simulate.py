"""Lazy labels simulated from ground-truth instances."""

import numpy as np
import pytest
from scipy import ndimage

from napari_lazylabels.engine.groundtruth import semantic_from_instances, touching_pairs
from napari_lazylabels.engine.regimes.detection import MIN_BLOB_DEPTH, detection_blobs
from napari_lazylabels.engine.regimes.separation import interface_scribbles
from napari_lazylabels.engine.simulate import annotation_cost, simulate_lazy_labels, total_annotation_cost
from napari_lazylabels.engine.synthetic import make_image


def scene() -> np.ndarray:
    """Two touching rectangles (ids 7 and 300), a free disc (42), a tiny object (9)."""
    inst = np.zeros((64, 64), dtype=np.uint16)
    inst[5:25, 5:20] = 7
    inst[5:25, 20:40] = 300           # shares the boundary between x=19 and x=20
    yy, xx = np.mgrid[:64, :64]
    inst[(yy - 45) ** 2 + (xx - 45) ** 2 <= 10 ** 2] = 42
    inst[50:52, 5:8] = 9              # 2x3 px: too thin for a deep blob
    return inst


def depth_inside(mask: np.ndarray) -> np.ndarray:
    """Distance to the nearest pixel outside the object, the image edge counting as outside."""
    return ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]


def test_blobs_lie_strictly_inside_their_objects_and_carry_the_class():
    inst = scene()
    classes = {7: 1, 300: 2, 42: 3, 9: 1}
    blobs = detection_blobs(inst, classes, rng=0)
    assert blobs.dtype == np.uint8
    for oid, cls in classes.items():
        obj = inst == oid
        blob = blobs > 0
        mine = blob & obj
        assert mine.any(), f"object {oid} has no blob"
        assert np.all(blobs[mine] == cls)
        # one stroke per object
        assert ndimage.label(mine, structure=np.ones((3, 3)))[1] == 1
        if oid != 9:
            # never touching the object's boundary, a few px at least, smaller than the object
            assert depth_inside(obj)[mine].min() >= MIN_BLOB_DEPTH
            assert 4 <= mine.sum() < obj.sum()
    # blobs only inside objects
    assert np.all(inst[blobs > 0] > 0)
    # the tiny object gets a single pixel at its deepest point
    assert (blobs[inst == 9] > 0).sum() == 1


def test_blob_size_follows_blob_fraction():
    yy, xx = np.mgrid[:80, :80]
    disc = ((yy - 40) ** 2 + (xx - 40) ** 2 <= 30 ** 2).astype(np.int32)
    small = detection_blobs(disc, rng=1, blob_fraction=(0.3, 0.3)).sum()
    large = detection_blobs(disc, rng=1, blob_fraction=(0.6, 0.6)).sum()
    area = disc.sum()
    # radius about 0.3 r and 0.6 r: area about 9 % and 36 % (with a wobble)
    assert 0.04 * area < small < 0.16 * area
    assert 0.25 * area < large < 0.5 * area


def test_scribbles_cover_exactly_the_real_interfaces():
    inst = scene()
    sep = interface_scribbles(inst, rng=0, scribble_width=3)
    assert sep.dtype == np.uint8 and set(np.unique(sep)) <= {0, 1}
    # the shared boundary of 7 and 300 runs between x=19 and x=20, rows 5..24
    assert np.all(sep[5:25, 19:21] == 1)
    # width 3: pixel centres within 1.5 px of that boundary, i.e. x in 18..21
    ys, xs = np.nonzero(sep)
    assert xs.min() >= 18 and xs.max() <= 21
    assert ys.min() >= 4 and ys.max() <= 25
    # nothing near the free disc or the tiny object
    assert not np.any(sep[inst == 42]) and not np.any(sep[inst == 9])


def test_scribbles_lie_on_interfaces_of_a_synthetic_image():
    im = make_image(3)
    inst = im.instances
    pairs = touching_pairs(inst)
    assert len(pairs) > 0
    sep = interface_scribbles(inst, rng=0, scribble_width=3)
    # every touching pair has scribble pixels in both of its objects near their boundary
    for a, b in pairs:
        near_a = ndimage.binary_dilation(inst == a) & (inst == b)
        assert np.any(sep[near_a])
    # every scribble pixel is within 1 px (+ the core) of a pixel that has a neighbour of another object
    core = np.zeros(inst.shape, bool)
    h = (inst[:, :-1] != inst[:, 1:]) & (inst[:, :-1] > 0) & (inst[:, 1:] > 0)
    v = (inst[:-1] != inst[1:]) & (inst[:-1] > 0) & (inst[1:] > 0)
    core[:, :-1] |= h
    core[:, 1:] |= h
    core[:-1] |= v
    core[1:] |= v
    assert np.all(ndimage.distance_transform_edt(~core)[sep > 0] <= 1.0)


def test_interface_coverage_paints_a_fraction_of_the_pairs():
    inst = np.zeros((40, 80), np.int32)
    for i in range(4):                    # four separate touching pairs
        inst[5:15, 20 * i + 2:20 * i + 9] = 2 * i + 1
        inst[5:15, 20 * i + 9:20 * i + 16] = 2 * i + 2
    assert len(touching_pairs(inst)) == 4
    count = lambda s: ndimage.label(s)[1]  # noqa: E731
    assert count(interface_scribbles(inst, rng=0, interface_coverage=1.0)) == 4
    assert count(interface_scribbles(inst, rng=0, interface_coverage=0.5)) == 2
    assert not interface_scribbles(inst, rng=0, interface_coverage=0.0).any()


def test_max_gap_bridges_ground_truth_gaps():
    inst = np.zeros((30, 40), np.int32)
    inst[5:25, 5:18] = 1
    inst[5:25, 21:35] = 2                 # a 3 px background gap (x = 18..20)
    assert len(touching_pairs(inst)) == 0
    assert not interface_scribbles(inst, rng=0).any()
    assert touching_pairs(inst, max_gap=3).tolist() == [[1, 2]]
    sep = interface_scribbles(inst, rng=0, max_gap=3)
    assert np.all(sep[5:25, 17:22] == 1)          # spans the gap and 1 px of each object
    assert sep[5:25, :17].sum() == 0 and sep[5:25, 22:].sum() == 0


def test_simulate_lazy_labels_layers_and_determinism():
    inst = scene()
    lazy = simulate_lazy_labels(inst, rng=np.random.default_rng(5))
    assert set(lazy) == {"detection", "separation", "segmentation"}
    assert lazy["segmentation"] is None
    for k in ("detection", "separation"):
        assert lazy[k].shape == inst.shape and lazy[k].dtype == np.uint8
    again = simulate_lazy_labels(inst, rng=np.random.default_rng(5))
    assert np.array_equal(lazy["detection"], again["detection"])
    assert np.array_equal(lazy["separation"], again["separation"])
    strong = simulate_lazy_labels(inst, {7: 2, 300: 1, 42: 1, 9: 2}, rng=0, strong=True)
    seg = strong["segmentation"]
    assert seg.dtype == np.uint8
    assert np.all(seg[inst == 7] == 2) and np.all(seg[inst == 300] == 1) and np.all(seg[inst == 0] == 0)


def test_many_classes_give_uint16():
    inst = scene()
    lazy = simulate_lazy_labels(inst, {7: 1, 300: 400, 42: 2, 9: 1}, rng=0, strong=True)
    assert lazy["detection"].dtype == np.uint16 and lazy["segmentation"].dtype == np.uint16
    assert lazy["detection"].max() == 400


def test_semantic_from_instances():
    inst = scene()
    assert np.array_equal(semantic_from_instances(inst), (inst > 0).astype(np.uint8))
    sem = semantic_from_instances(inst, {7: 1, 300: 2, 42: 3, 9: 1})
    assert sem[10, 10] == 1 and sem[10, 30] == 2 and sem[45, 45] == 3 and sem[0, 0] == 0
    with pytest.raises(ValueError, match="no class"):
        semantic_from_instances(inst, {7: 1})
    with pytest.raises(ValueError):
        semantic_from_instances(inst.astype(float))
    assert not semantic_from_instances(np.zeros((8, 8), int), {}).any()


def test_every_object_of_a_synthetic_image_gets_one_blob_of_its_class():
    im = make_image(11, n_classes=2)
    blobs = detection_blobs(im.instances, im.classes, rng=0)
    lab, n = ndimage.label(blobs > 0, structure=np.ones((3, 3)))
    assert n == im.instances.max()
    owner = ndimage.maximum(im.instances, lab, np.arange(1, n + 1))
    assert sorted(owner.astype(int)) == list(range(1, n + 1))
    assert np.array_equal(blobs[blobs > 0], im.semantic[blobs > 0])


def test_annotation_cost_counts_pixels_strokes_and_objects():
    det = np.zeros((20, 20), np.uint8)
    det[2:4, 2:4] = 1                 # 4 px
    det[10:13, 10:13] = 2             # 9 px
    sep = np.zeros_like(det)
    sep[5, 0:6] = 1                   # 6 px
    seg = np.zeros_like(det)
    seg[0:6, 0:6] = 1                 # 36 px
    seg[8:16, 8:16] = 2               # 64 px
    cost = annotation_cost({"detection": det, "separation": sep, "segmentation": seg})
    assert cost["painted_pixels"] == 4 + 9 + 6 + 36 + 64
    assert cost["strokes"] == 3 and cost["blobs"] == 2 and cost["interfaces"] == 1
    assert cost["objects_traced"] == 2 and cost["strong_images"] == 1
    weak = annotation_cost({"detection": det, "separation": sep, "segmentation": None})
    assert weak["objects_traced"] == 0 and weak["mask_pixels"] == 0 and weak["painted_pixels"] == 19
    # touching objects of one class: instances tell them apart
    inst = scene()
    lazy = simulate_lazy_labels(inst, rng=0, strong=True)
    assert annotation_cost(lazy)["objects_traced"] == 3            # 7 and 300 merge
    assert annotation_cost(lazy, instances=inst)["objects_traced"] == 4
    total = total_annotation_cost([cost, weak])
    assert total["strokes"] == 6 and total["strong_images"] == 1
