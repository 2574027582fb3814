"""What the machine-made labels read from the image itself: noise, object scale and polarity, and the
threshold method of the mask.

* **Noise**: Immerkaer's estimate of the Gaussian noise (the median absolute response to a mask that
  cancels smooth intensity) of the
  channel scaled to 0..1 (its 1st and 99.8th percentiles). Above :data:`NOISY` the image is smoothed
  before anything else, by a Gaussian of a sixth of the object diameter (at least 1 px).
* **Scale and polarity**: the scale-normalised Laplacian of Gaussian, ``-sigma^2 LoG`` for bright
  objects and ``+sigma^2 LoG`` for dark ones, over geometric sigmas from 1.5 px to a tenth of the
  image's short side. Per sigma and sign, the response of the objects is the 99th percentile of the
  response over the image (objects that cover at least 1 % of it); the strongest
  (sigma, sign) gives the objects' scale (diameter ``2 sqrt(2) sigma``, the size of a disc whose centre
  responds most at that sigma) and whether they are brighter or darker than the background. Compact
  objects answer a blob filter more strongly than thin lines (membranes) or halos do.
* **Threshold method** of the mask, from the histogram of the (smoothed, polarity-corrected) channel:
  Otsu when it is clearly bimodal (Otsu's between-class variance is at least :data:`BIMODAL` of the
  total variance); triangle when one side (the background) dominates with a long tail of objects
  (skewness above :data:`SKEWED`: few, bright objects on a flat background); Li (minimum cross
  entropy) otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

#: Noise (sigma on the 0..1 scaled channel) above which the image is denoised first.
NOISY = 0.04
#: Otsu's between-class variance / total variance from which the histogram counts as bimodal.
BIMODAL = 0.75
#: Skewness above which triangle is chosen (a dominant background with a tail of objects).
SKEWED = 1.5
BRIGHT, DARK, AUTO = "bright", "dark", "auto"
POLARITIES = (AUTO, BRIGHT, DARK)


def scaled(channel: np.ndarray, dark: bool = False) -> np.ndarray:
    """The channel scaled to 0..1 by its 1st and 99.8th percentiles (inverted for dark objects)."""
    lo, hi = np.percentile(channel, [1.0, 99.8])
    out = (np.asarray(channel, np.float64) - lo) / (hi - lo if hi > lo else 1.0)
    return 1.0 - out if dark else out


def noise_level(channel: np.ndarray) -> float:
    """The Gaussian noise sigma of the channel scaled to 0..1 (Immerkaer's estimate: the mean absolute
    response to a mask that cancels smooth intensity, robust to edges)."""
    img = scaled(channel)
    if min(img.shape) < 8:
        return 0.0
    mask = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
    response = np.abs(ndi.convolve(img, mask, mode="reflect"))[1:-1, 1:-1]
    return float(np.median(response) / (0.6745 * 6.0))     # |N| = 6; median |X| = 0.6745 sigma


def _sigmas(shape: tuple[int, ...]) -> np.ndarray:
    top = max(2.0, min(shape[:2]) / 10.0)
    n = max(2, int(math.ceil(math.log(top / 1.5) / math.log(1.25))) + 1)
    return np.geomspace(1.5, top, n)


def _response_level(response: np.ndarray) -> float:
    """How strongly one scale answers: the 99th percentile of its response (objects covering at least
    1 % of the image, not single bright pixels)."""
    return float(np.percentile(response, 99.0))


@dataclass(frozen=True)
class ScaleEstimate:
    """The objects' scale and polarity as read from the image."""

    diameter: float               # px
    dark: bool
    response: float               # the winning normalised LoG response (0..1 scale)

    def describe(self) -> str:
        return f"objects {'darker' if self.dark else 'brighter'} than the background, about {self.diameter:.0f} px"


def estimate_scale(channel: np.ndarray, polarity: str = AUTO, *, max_side: int = 512) -> ScaleEstimate:
    """The (sigma, sign) of the strongest normalised LoG response (see the module doc).

    Large images are read at a reduced size (short side ``max_side``), the diameter given back in the
    image's own pixels.
    """
    img = scaled(channel)
    factor = min(1.0, max_side / float(min(img.shape)))
    if factor < 1.0:
        img = ndi.zoom(img, factor, order=1)
    signs = {BRIGHT: (1.0,), DARK: (-1.0,), AUTO: (1.0, -1.0)}[polarity]
    best = (-1.0, 1.5, 1.0)
    for s in _sigmas(img.shape):
        log = s * s * ndi.gaussian_laplace(img, s)
        for sign in signs:
            r = _response_level(-sign * log)
            if r > best[0]:
                best = (r, s, sign)
    r, s, sign = best
    return ScaleEstimate(diameter=2.0 * math.sqrt(2.0) * s / factor, dark=sign < 0, response=max(r, 0.0))


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
