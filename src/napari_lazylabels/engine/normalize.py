"""Robust per-image intensity normalisation and channel layout.

The percentiles are those of NumPy's default (``linear``) method, computed
from the order statistics of the channel's float32 values
(:func:`percentiles`). :func:`order_statistics` finds the same order
statistics without holding the image, from histograms of blocks (two passes of
65536 bins over the values' bit patterns), so an image read block by block
(:mod:`.blockwise`) is normalised exactly as one held in memory.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from .config import NormalizationConfig

#: Histogram bins of one radix pass (16 of the 32 bits of a float32).
_BINS = 1 << 16


def to_chw(image: np.ndarray) -> np.ndarray:
    """YX -> 1YX, YXC -> CYX (float32)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    else:
        image = np.moveaxis(image, -1, 0)
    return image.astype(np.float32, copy=False)


def percentile_ranks(n: int, qs: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The order statistics (0-based ranks, below and above) and interpolation weights of NumPy's
    ``linear`` percentiles ``qs`` (in %) of ``n`` values."""
    q = np.true_divide(np.asarray(qs, dtype=np.float64), 100)
    virtual = (n - 1) * q
    below = np.floor(virtual)
    above = below + 1
    last = virtual >= n - 1
    below[last] = above[last] = n - 1
    return below.astype(np.int64), above.astype(np.int64), virtual - below


def interpolate(low: np.ndarray, high: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """NumPy's linear interpolation between two float32 order statistics (float64 result)."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    diff = high - low
    out = np.add(low, diff * gamma)
    np.subtract(high, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def percentiles(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """``np.percentile(values, qs)`` of float32 values (float64), from their order statistics."""
    flat = np.asarray(values, np.float32).ravel()
    below, above, gamma = percentile_ranks(flat.size, qs)
    ranks = np.unique(np.concatenate([below, above]))
    part = np.partition(flat, ranks)
    return interpolate(part[below], part[above], gamma)


def normalize_with(chw: np.ndarray, ranges: Sequence[Sequence[float]]) -> np.ndarray:
    """Map each channel's (low, high) to 0..1 (values outside are kept): CYX float32 in and out.

    A channel whose high is not above its low is only shifted.
    """
    out = np.empty(chw.shape, np.float32)
    for c, (lo, hi) in enumerate(ranges):
        scale = hi - lo if hi > lo else 1.0
        out[c] = (chw[c] - lo) / scale
    return out


def channel_ranges(chw: np.ndarray, config: NormalizationConfig = NormalizationConfig()) -> list[np.ndarray]:
    """Each channel's (low, high) percentiles (float64) of a CYX float32 image."""
    return [percentiles(chw[c], [config.low, config.high]) for c in range(chw.shape[0])]


def normalize(image: np.ndarray, config: NormalizationConfig = NormalizationConfig()) -> np.ndarray:
    """Map each channel's low..high percentiles to 0..1 (values outside are kept).

    Takes YX or YXC, returns CYX float32. A constant channel becomes zeros.
    """
    chw = to_chw(image)
    return normalize_with(chw, channel_ranges(chw, config))


# -- out of core ------------------------------------------------------------------------------

def sort_keys(values: np.ndarray) -> np.ndarray:
    """uint32 keys of float32 values that sort as the values do (finite values)."""
    bits = np.ascontiguousarray(values, np.float32).view(np.uint32)
    negative = (bits >> 31).astype(bool)
    return np.where(negative, ~bits, bits | np.uint32(0x80000000))


def _from_key(key: int) -> np.float32:
    bits = np.uint32(key)
    bits = bits & np.uint32(0x7FFFFFFF) if bits >> 31 else ~bits
    return np.array([bits], np.uint32).view(np.float32)[0]


def key_histogram(values: np.ndarray, top: int | None = None) -> np.ndarray:
    """Histogram (65536 bins) of the high 16 bits of the values' keys, or, with ``top``, of the low
    16 bits of those whose high bits are ``top``."""
    keys = sort_keys(values).ravel()
    if top is None:
        return np.bincount(keys >> 16, minlength=_BINS).astype(np.int64)
    keys = keys[(keys >> 16) == top]
    return np.bincount(keys & 0xFFFF, minlength=_BINS).astype(np.int64)


def rank_bins(hist: np.ndarray, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bin of each rank, and the rank within that bin."""
    cum = np.cumsum(hist)
    bins = np.searchsorted(cum, ranks, side="right")
    return bins, ranks - (cum[bins] - hist[bins])


def order_statistics(histogram: Callable[[int | None], np.ndarray], n: int, ranks: Iterable[int]) -> dict[int, np.float32]:
    """The float32 values of the given 0-based ``ranks`` among ``n`` values seen only through
    ``histogram(top)`` (the sum over blocks of :func:`key_histogram`)."""
    ranks = np.unique(np.asarray(list(ranks), np.int64))
    if len(ranks) and (ranks[0] < 0 or ranks[-1] >= n):
        raise ValueError(f"ranks {ranks.tolist()} outside 0..{n - 1}")
    tops, within = rank_bins(histogram(None), ranks)
    out: dict[int, np.float32] = {}
    for top in np.unique(tops):
        sel = tops == top
        lows, _ = rank_bins(histogram(int(top)), within[sel])
        for rank, low in zip(ranks[sel], lows):
            out[int(rank)] = _from_key((int(top) << 16) | int(low))
    return out


def ranges_from_histograms(histogram: Callable[[int, int | None], np.ndarray], n: int, channels: int,
                           config: NormalizationConfig = NormalizationConfig()) -> list[np.ndarray]:
    """:func:`channel_ranges` of an image seen through ``histogram(channel, top)`` (see
    :func:`order_statistics`) of its ``n`` pixels per channel: the same values, exactly."""
    below, above, gamma = percentile_ranks(n, [config.low, config.high])
    out = []
    for c in range(channels):
        stats = order_statistics(lambda top, c=c: histogram(c, top), n, np.concatenate([below, above]))
        out.append(interpolate([stats[int(r)] for r in below], [stats[int(r)] for r in above], gamma))
    return out
