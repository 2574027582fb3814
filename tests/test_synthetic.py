"""The seeded synthetic image generator and the lazy data sets made from it."""


import numpy as np
from scipy import ndimage

from napari_lazylabels.engine.groundtruth import touching_pairs
from napari_lazylabels.engine.synthetic import SyntheticImage, make_image, make_lazy_dataset, make_test_set
from napari_lazylabels.engine.regimes.targets import check_inputs


def test_same_seed_same_image_other_seed_other_image():
    a, b, c = make_image(7), make_image(7), make_image(8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.instances, b.instances)
    assert a.classes == b.classes
    assert not np.array_equal(a.instances, c.instances)


def test_shapes_types_and_consistent_ground_truth():
    im = make_image(1, shape=(96, 160), n_classes=2)
    assert isinstance(im, SyntheticImage)
    assert im.image.shape == im.instances.shape == im.semantic.shape == (96, 160)
    assert im.image.dtype == np.float32 and np.all(np.isfinite(im.image))
    assert im.instances.dtype == np.int32 and im.semantic.dtype == np.int32
    n = int(im.instances.max())
    assert n > 0 and set(np.unique(im.instances)) == set(range(n + 1))
    assert set(im.classes) == set(range(1, n + 1)) and set(im.classes.values()) <= {1, 2}
    for oid, cls in im.classes.items():
        assert np.all(im.semantic[im.instances == oid] == cls)
    assert np.all(im.semantic[im.instances == 0] == 0)


def test_objects_are_single_nuclei_of_realistic_size():
    im = make_image(2)
    n = int(im.instances.max())
    lab_counts = [ndimage.label(im.instances == i)[1] for i in range(1, n + 1)]
    assert lab_counts == [1] * n                      # every instance is one piece
    areas = np.bincount(im.instances.ravel())[1:]
    eq_radius = np.sqrt(areas / np.pi)
    whole = [i for i, sl in enumerate(ndimage.find_objects(im.instances))
             if sl[0].start > 0 and sl[1].start > 0 and sl[0].stop < 256 and sl[1].stop < 256]
    assert 5 < np.median(eq_radius[whole]) < 18
    assert eq_radius[whole].max() < 22
    assert 0.1 < (im.instances > 0).mean() < 0.45


def test_touching_nuclei_are_common_but_not_the_rule():
    fractions = []
    for seed in range(6):
        inst = make_image(seed).instances
        touching = np.unique(touching_pairs(inst))
        fractions.append(len(touching) / inst.max())
    assert all(f > 0 for f in fractions)               # every image has touching nuclei
    assert 0.2 < np.mean(fractions) < 0.55


def test_nuclei_are_brighter_than_background_and_interfaces_are_not_dark_gaps():
    im = make_image(4)
    fg = im.instances > 0
    inner = ndimage.binary_erosion(fg, iterations=3)
    bg = ndimage.binary_erosion(~fg, iterations=4)
    assert np.median(im.image[inner]) > 2.5 * np.median(im.image[bg])
    # where nuclei touch the image stays far brighter than background
    inst = im.instances
    h = (inst[:, :-1] != inst[:, 1:]) & (inst[:, :-1] > 0) & (inst[:, 1:] > 0)
    assert h.any()
    assert np.median(im.image[:, :-1][h]) > 2.0 * np.median(im.image[bg])


def test_second_class_looks_different():
    small, large, bright, dim = [], [], [], []
    for seed in range(3):
        im = make_image(seed, n_classes=2)
        for oid, cls in im.classes.items():
            m = im.instances == oid
            (small if cls == 2 else large).append(m.sum())
            (bright if cls == 2 else dim).append(np.median(im.image[m]))
    assert small and large
    assert np.median(small) < 0.6 * np.median(large)
    assert np.median(bright) > 1.4 * np.median(dim)


def test_lazy_dataset():
    items, truths = make_lazy_dataset(12, seed=3, shape=(64, 96), n_classes=2, strong_fraction=0.1)
    assert len(items) == len(truths) == 12
    assert [it.name for it in items[:2]] == ["synthetic_000", "synthetic_001"]
    strong = [it for it in items if it.labels["segmentation"] is not None]
    assert len(strong) == 1                            # round(1.2) = 1
    for it, truth in zip(items, truths):
        assert np.array_equal(it.image, truth.image)
        assert it.annotated["detection"] and it.annotated["separation"]
        assert it.annotated["segmentation"] == (it.labels["segmentation"] is not None)
        blobs = it.labels["detection"]
        assert np.all(truth.semantic[blobs > 0] == blobs[blobs > 0])
        if it.labels["segmentation"] is not None:
            assert np.array_equal(it.labels["segmentation"], truth.semantic)
    clean = check_inputs(items, 2)
    assert len(clean) == 12
    again, _ = make_lazy_dataset(12, seed=3, shape=(64, 96), n_classes=2, strong_fraction=0.1)
    assert all(np.array_equal(a.labels["detection"], b.labels["detection"]) for a, b in zip(items, again))
    # at least one strong image whenever strong_fraction > 0, none at 0
    few, _ = make_lazy_dataset(3, seed=0, shape=(48, 48), strong_fraction=0.01)
    assert sum(it.labels["segmentation"] is not None for it in few) == 1
    none, _ = make_lazy_dataset(3, seed=0, shape=(48, 48), strong_fraction=0.0)
    assert all(it.labels["segmentation"] is None for it in none)


def test_test_set_is_deterministic_and_distinct_from_training():
    a = make_test_set(2, seed=0, shape=(64, 64))
    b = make_test_set(2, seed=0, shape=(64, 64))
    _, train = make_lazy_dataset(2, seed=0, shape=(64, 64), strong_fraction=0.0)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert not any(np.array_equal(x.image, t.image) for x in a for t in train)
