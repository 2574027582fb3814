"""Robust per-image intensity normalisation and channel layout."""

from __future__ import annotations

import numpy as np

from .config import NormalizationConfig


def to_chw(image: np.ndarray) -> np.ndarray:
    """YX -> 1YX, YXC -> CYX (float32)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    else:
        image = np.moveaxis(image, -1, 0)
    return image.astype(np.float32, copy=False)


def normalize(image: np.ndarray, config: NormalizationConfig = NormalizationConfig()) -> np.ndarray:
    """Map each channel's low..high percentiles to 0..1 (values outside are kept).

    Takes YX or YXC, returns CYX float32. A constant channel becomes zeros.
    """
    chw = to_chw(image)
    out = np.empty_like(chw)
    for c in range(chw.shape[0]):
        lo, hi = np.percentile(chw[c], [config.low, config.high])
        scale = hi - lo if hi > lo else 1.0
        out[c] = (chw[c] - lo) / scale
    return out
