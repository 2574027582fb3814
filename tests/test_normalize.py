"""Percentiles of the normalisation: NumPy's, and the same again from block histograms (out of core)."""

import numpy as np
import pytest

from napari_lazylabels.engine.config import NormalizationConfig
from napari_lazylabels.engine.normalize import (channel_ranges, key_histogram, normalize, order_statistics,
                                                percentiles, ranges_from_histograms, to_chw)


def _samples():
    rng = np.random.default_rng(0)
    yield rng.integers(0, 65535, 4001).astype(np.uint16)
    yield rng.normal(0, 1e3, 777).astype(np.float32)
    yield rng.integers(0, 3, 1500).astype(np.uint8)           # many ties
    yield (rng.random(999) * 1e-30 - 5e-31).astype(np.float32)  # tiny values of both signs
    yield np.full(10, 7, np.int32)                              # constant
    yield np.array([5.0], np.float64)                           # one pixel


@pytest.mark.parametrize("qs", [(1, 99.8), (0, 100), (0.5, 97.3)])
def test_percentiles_are_numpys(qs):
    for values in _samples():
        x = values.astype(np.float32)
        expected = np.percentile(x, qs)
        got = percentiles(x, qs)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), (values.dtype, qs)


def test_block_histograms_give_the_same_ranges():
    """Split into uneven blocks, the values' two-pass histograms give the in-memory ranges exactly."""
    config = NormalizationConfig(low=1, high=99.8)
    for values in _samples():
        image = np.resize(values, (2, values.size)).astype(np.float32)
        image[1] = -image[1] * 3                                # a second channel, other values
        blocks = np.array_split(np.arange(values.size), 5)

        def histogram(c, top):
            return sum(key_histogram(image[c, b], top) for b in blocks if len(b))

        got = ranges_from_histograms(histogram, values.size, 2, config)
        expected = channel_ranges(image[:, None, :], config)
        for g, e in zip(got, expected):
            assert np.array_equal(g, e)


def test_order_statistics_of_every_rank():
    x = np.random.default_rng(1).normal(size=300).astype(np.float32)
    stats = order_statistics(lambda top: key_histogram(x, top), x.size, range(x.size))
    assert np.array_equal(np.array([stats[i] for i in range(x.size)]), np.sort(x))


def test_normalize_maps_percentiles_to_unit_range():
    image = np.random.default_rng(2).integers(0, 4000, (40, 30)).astype(np.uint16)
    out = normalize(image)
    lo, hi = np.percentile(to_chw(image)[0], [1, 99.8])
    np.testing.assert_array_equal(out[0], ((image.astype(np.float32) - lo) / (hi - lo)).astype(np.float32))
    assert normalize(np.zeros((9, 9))).max() == 0


def test_the_sample_image_and_random_percentiles_are_numpys():
    """The in-memory path gives np.percentile's values exactly (so the demo's figures do not move)."""
    import tifffile
    from importlib.resources import files
    hela = tifffile.imread(files("napari_lazylabels") / "data" / "hela_t00_crop_image.tif")
    chw = to_chw(hela)
    for c in range(chw.shape[0]):
        assert np.array_equal(channel_ranges(chw)[c], np.percentile(chw[c], [1, 99.8]))
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.lognormal(0, 2, int(rng.integers(1, 5000))).astype(np.float32)
        qs = np.sort(rng.uniform(0, 100, 2))
        assert np.array_equal(percentiles(x, qs), np.percentile(x, qs))
