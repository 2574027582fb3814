"""Level-set growth of objects and the final growth at inference (post-processing, keyed by head role)."""

import math

import numpy as np
from scipy import ndimage as ndi

from napari_lazylabels.engine.postprocess.growth import (final_growth, grow_objects, grow_region, level_set,
                                                         seeds_from_classes, split_foreground)
from napari_lazylabels.engine.tasks import FOREGROUND, PARTIAL, SEEDS


def disk(shape, cy, cx, r):
    y, x = np.ogrid[:shape[0], :shape[1]]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


SHAPE = (64, 64)
SHAT = disk(SHAPE, 32, 32, 20)
SEED = disk(SHAPE, 30, 34, 4)


# --- the growth rule ---------------------------------------------------------------------

def test_lambda_zero_keeps_the_region():
    assert np.array_equal(grow_region(SEED, SHAT, 0.0), SEED)
    assert np.array_equal(level_set(SEED, SHAT, 0.0) <= 0, SEED)


def test_very_large_lambda_gives_the_predicted_region():
    assert np.array_equal(grow_region(SEED, SHAT, 1e6), SHAT)
    assert np.array_equal(grow_region(SEED, SHAT, math.inf), SHAT)


def test_larger_lambda_grows_more_and_never_shrinks():
    sizes = []
    previous = SEED
    for lam in (0.1, 0.3, 0.5, 1.0, 2.0, 5.0):
        grown = grow_region(SEED, SHAT, lam)
        assert np.all(grown[SEED])                       # S^r is kept
        assert np.all(grown[previous])                   # monotone in lambda
        assert not np.any(grown & ~SHAT & ~SEED)         # never outside Shat
        sizes.append(int(grown.sum()))
        previous = grown
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_growth_slows_near_the_predicted_boundary():
    """Each round takes a part of the remaining depth: the gain shrinks round by round."""
    region, gains = SEED, []
    for _ in range(4):
        grown = grow_region(region, SHAT, 0.5)
        gains.append(int(grown.sum() - region.sum()))
        region = grown
    assert gains[0] > 0 and gains[-1] < gains[0]
    # about 1/lambda px inside the boundary growth stops: the region stays inside Shat
    depth = np.sqrt(((np.argwhere(region) - 32) ** 2).sum(1)).max()
    assert 14 <= depth < 20


def test_seed_outside_the_prediction_does_not_grow():
    assert np.array_equal(grow_region(SEED, np.zeros(SHAPE, bool), 5.0), SEED)


def test_splitting_keeps_each_seed_in_its_own_part():
    # two touching disks form one predicted component; each seed sits in one
    fg = disk(SHAPE, 32, 20, 12) | disk(SHAPE, 32, 42, 12)
    inst = np.zeros(SHAPE, np.int32)
    inst[disk(SHAPE, 32, 18, 3)] = 1
    inst[disk(SHAPE, 32, 44, 3)] = 2
    parts = split_foreground(inst, fg)
    assert set(np.unique(parts)) == {0, 1, 2}
    assert np.all(parts[inst == 1] == 1) and np.all(parts[inst == 2] == 2)
    # the cut runs along the neck (x about 31) and separates the two parts
    cut = fg & (parts == 0)
    assert cut.any() and np.all(np.abs(np.argwhere(cut)[:, 1] - 31) <= 2)
    grown = grow_objects(inst, fg, 1e6)
    assert set(np.unique(grown)) == {0, 1, 2}
    for k in (1, 2):
        assert ndi.label(grown == k)[1] == 1             # one piece each
    assert np.all(grown[:, :29] != 2) and np.all(grown[:, 34:] != 1)
    # the grown objects never touch (4-connectivity): no merge
    assert not np.any((grown[:, :-1] == 1) & (grown[:, 1:] == 2))
    assert (grown > 0).sum() >= 0.95 * fg.sum()


def test_multi_object_growth_keeps_the_class():
    fg = disk(SHAPE, 20, 20, 10) | disk(SHAPE, 44, 44, 10)
    blobs = np.zeros(SHAPE, np.int32)
    blobs[disk(SHAPE, 20, 20, 3)] = 2
    blobs[disk(SHAPE, 44, 44, 3)] = 1
    inst, classes = seeds_from_classes(blobs)
    assert sorted(classes.values()) == [1, 2]
    grown = grow_objects(inst, fg, 1.0)
    for k, c in classes.items():
        assert np.all(blobs[grown == k] == 0) or set(np.unique(blobs[grown == k])) <= {0, c}
        assert (grown == k).sum() > (inst == k).sum()
    # a foreground component without a seed is left alone
    extra = fg | disk(SHAPE, 8, 56, 5)
    assert not np.any(grow_objects(inst, extra, 1e6)[disk(SHAPE, 8, 56, 5)])


def test_gap_keeps_touching_objects_apart():
    fg = disk(SHAPE, 32, 20, 12) | disk(SHAPE, 32, 42, 12)
    inst = np.zeros(SHAPE, np.int32)
    inst[disk(SHAPE, 32, 18, 3)] = 1
    inst[disk(SHAPE, 32, 44, 3)] = 2
    for gap in (0, 1, 2):
        grown = grow_objects(inst, fg, 1e6, gap=gap)
        d = ndi.distance_transform_edt(grown != 1)[grown == 2].min()
        assert d >= gap + 1
        assert np.all(grown[inst > 0] == inst[inst > 0])


def test_final_growth_splits_approximations_holding_two_blobs():
    fg = disk(SHAPE, 32, 20, 12) | disk(SHAPE, 32, 42, 12)
    seg = np.stack([~fg, fg]).astype(np.float32)
    approx = np.stack([~fg, fg]).astype(np.float32)          # the head joined the two objects
    blobs = disk(SHAPE, 32, 18, 3) | disk(SHAPE, 32, 44, 3)
    det = np.stack([~blobs, blobs]).astype(np.float32)
    semantic, instances = final_growth({FOREGROUND: seg, PARTIAL: approx, SEEDS: det}, 10.0)
    assert instances.max() == 2
    assert (instances > 0).sum() >= 0.98 * fg.sum()   # the cut line is given back
    assert instances[32, 18] != instances[32, 44]


def test_final_growth_from_probabilities():
    seg = np.stack([~SHAT, SHAT]).astype(np.float32)
    approx = np.stack([~SEED, SEED]).astype(np.float32)
    semantic, instances = final_growth({FOREGROUND: seg, PARTIAL: approx}, 1e6)
    assert instances.max() == 1
    assert np.array_equal(instances > 0, SHAT)
    assert np.array_equal(semantic, SHAT.astype(np.int32))
    _, small = final_growth({FOREGROUND: seg, PARTIAL: approx}, 0.0)
    assert np.array_equal(small > 0, SEED)


def test_final_growth_without_a_partial_head_grows_the_blobs():
    seg = np.stack([~SHAT, SHAT]).astype(np.float32)
    blobs = np.stack([~SEED, SEED]).astype(np.float32)
    _, instances = final_growth({FOREGROUND: seg, SEEDS: blobs}, 1e6)
    assert np.array_equal(instances > 0, SHAT)
