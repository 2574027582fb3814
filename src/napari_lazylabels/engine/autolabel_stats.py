"""What the machine-made labels read from the image itself: noise, object scale and polarity, and the
threshold method of the mask.

* **Noise**: Immerkaer's estimate of the Gaussian noise (the median absolute response to a mask that
  cancels smooth intensity) of the
  channel scaled to 0..1 (its 1st and 99.8th percentiles). Above :data:`NOISY` the image is smoothed
  before anything else, by a Gaussian of a sixth of the object diameter (at least 1 px).
* **Scale, polarity and channel**: :mod:`.autolabel_scale` (blobs in the intensity, its inverse or
  the local contrast, ridges such as membranes and halos rejected).
* **Threshold method** of the mask, from the histogram of the (smoothed, polarity-corrected) channel:
  Otsu when it is clearly bimodal (Otsu's between-class variance is at least :data:`BIMODAL` of the
  total variance); triangle when one side (the background) dominates with a long tail of objects
  (skewness above :data:`SKEWED`: few, bright objects on a flat background); Li (minimum cross
  entropy) otherwise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .autolabel_scale import ScaleEstimate, estimate_scale, scaled  # noqa: F401  (their home before)

#: Noise (sigma on the 0..1 scaled channel) above which the image is denoised first.
NOISY = 0.04
#: Otsu's between-class variance / total variance from which the histogram counts as bimodal.
BIMODAL = 0.75
#: Skewness above which triangle is chosen (a dominant background with a tail of objects).
SKEWED = 1.5
BRIGHT, DARK, AUTO = "bright", "dark", "auto"
#: The scikit-image function of each threshold method :func:`choose_threshold` chooses from.
THRESHOLD_FUNCTIONS = {"otsu": "threshold_otsu", "li": "threshold_li", "triangle": "threshold_triangle"}
POLARITIES = (AUTO, BRIGHT, DARK)


def noise_level(channel: np.ndarray) -> float:
    """The Gaussian noise sigma of the channel scaled to 0..1 (Immerkaer's estimate: the mean absolute
    response to a mask that cancels smooth intensity, robust to edges)."""
    img = scaled(channel)
    if min(img.shape) < 8:
        return 0.0
    mask = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
    response = np.abs(ndi.convolve(img, mask, mode="reflect"))[1:-1, 1:-1]
    return float(np.median(response) / (0.6745 * 6.0))     # |N| = 6; median |X| = 0.6745 sigma


def choose_threshold(values: np.ndarray) -> tuple[str, str]:
    """The threshold method for a (polarity-corrected, smoothed) channel, and why (see the module doc)."""
    from skimage.filters import threshold_otsu
    v = np.asarray(values, np.float64).ravel()
    if v.size > 200_000:
        v = v[:: v.size // 200_000]
    var = float(v.var())
    if not var > 0:
        return "otsu", "a flat image"
    t = threshold_otsu(v)
    lo, hi = v[v <= t], v[v > t]
    w0, w1 = lo.size / v.size, hi.size / v.size
    between = w0 * w1 * (float(hi.mean()) - float(lo.mean())) ** 2 if lo.size and hi.size else 0.0
    bimodality = between / var
    skew = float(np.mean((v - v.mean()) ** 3) / var ** 1.5)
    why = f"bimodality {bimodality:.2f}, skewness {skew:.2f}"
    if bimodality >= BIMODAL:
        return "otsu", why
    if skew > SKEWED:
        return "triangle", why
    return "li", why
