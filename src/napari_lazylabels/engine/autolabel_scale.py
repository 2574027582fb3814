"""The objects' scale, polarity and visibility read from the image: blobs, not ridges.

The image is read as three candidate channels:

* ``bright``: the intensity (objects brighter than the background);
* ``dark``: the inverted intensity (objects darker: H&E nuclei);
* ``texture``: the local contrast, the gradient magnitude at 1 px (objects that differ from the
  background by their texture and outline rather than their brightness: cells in phase contrast,
  whose inside is as grey as the background and whose outline is a bright halo).

For each channel and each of geometric sigmas from 1.5 px to a tenth of the short side, the
scale-normalised Hessian at the pixels of the strongest response (the top 1 %) says two things: how
strongly the image answers at that scale (the 99th percentile of ``-sigma^2 LoG``) and whether what
answers is a blob or a ridge (the median ratio of the smaller to the larger Hessian eigenvalue, 0 on a
line such as a membrane or a halo, 1 on a disc). The score of a scale is the response times
``min(1, 2 x ratio)``: thin lines and rings around cells score near 0 at their own width.

The scale kept is a local maximum of the score over the sigmas (the first and last sigma are the
range's ends, not maxima: a slope of illumination answers there; a channel without an inside
maximum offers its strongest end, as on an image too small for its objects' scale to be inside);
among the maxima that reach :data:`NEAR_BEST` of the best, the smallest (a cluster of objects
answers at a larger scale too). The texture channel is used only where the intensity's best score
is under :data:`TEXTURE_GAIN` of the texture's: an intensity blob is the simpler label. The
diameter is ``2 sqrt(2) sigma``, the size of a disc whose centre answers most at that sigma.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

#: A local maximum of the score counts as a candidate scale from this fraction of the best on.
NEAR_BEST = 0.95
#: The texture channel is chosen when the intensity's best score is under this fraction of its own.
TEXTURE_GAIN = 0.5
BRIGHT, DARK, TEXTURE = "bright", "dark", "texture"


def scaled(channel: np.ndarray, dark: bool = False) -> np.ndarray:
    """The channel scaled to 0..1 by its 1st and 99.8th percentiles (inverted for dark objects)."""
    lo, hi = np.percentile(channel, [1.0, 99.8])
    out = (np.asarray(channel, np.float64) - lo) / (hi - lo if hi > lo else 1.0)
    return 1.0 - out if dark else out


def texture_of(channel: np.ndarray) -> np.ndarray:
    """The local contrast of a channel: its gradient magnitude at 1 px, scaled to 0..1."""
    return scaled(ndi.gaussian_gradient_magnitude(scaled(channel), 1.0))


def sigmas(shape: tuple[int, ...]) -> np.ndarray:
    top = max(2.0, min(shape[:2]) / 10.0)
    n = max(2, int(math.ceil(math.log(top / 1.5) / math.log(1.25))) + 1)
    return np.geomspace(1.5, top, n)


def blob_score(image: np.ndarray, sigma: float) -> tuple[float, float]:
    """How strongly ``image`` answers a bright blob filter at ``sigma``: the 99th percentile of
    ``-sigma^2 LoG``, and the median blob ratio (smaller over larger Hessian eigenvalue, clipped at 0)
    of the pixels at or above it."""
    from skimage.feature import hessian_matrix, hessian_matrix_eigvals
    # the Gaussian-smoothed image's finite-difference Hessian (skimage's default): less answer to
    # pixel noise than exact Gaussian derivatives at the smallest sigmas
    high, low = hessian_matrix_eigvals(hessian_matrix(image, sigma, mode="reflect", order="rc",
                                                                  use_gaussian_derivatives=False))
    big, small = -low * sigma * sigma, -high * sigma * sigma          # big >= small; both > 0 on a bright blob
    response = big + small
    level = float(np.percentile(response, 99.0))
    top = response >= level
    ratio = float(np.median(np.clip(small[top], 0.0, None) / np.maximum(big[top], 1e-12)))
    return level, ratio


@dataclass(frozen=True)
class ScaleEstimate:
    """The objects' scale and polarity as read from the image, and in which channel they show."""

    diameter: float               # px
    dark: bool
    response: float               # the winning score (0..1 scale)
    texture: bool = False         # the objects show in the local contrast, not the intensity

    def describe(self) -> str:
        kind = "by their texture" if self.texture else "darker" if self.dark else "brighter"
        return f"objects {kind}{'' if self.texture else ' than the background'}, about {self.diameter:.0f} px"


def _best_scale(scores: list[float]) -> list[int]:
    """The indices of the interior local maxima of a score curve."""
    return [j for j in range(1, len(scores) - 1) if scores[j] >= scores[j - 1] and scores[j] >= scores[j + 1]]


def estimate_scale(channel: np.ndarray, polarity: str = "auto", *, max_side: int = 512) -> ScaleEstimate:
    """The scale, polarity and channel of the objects (see the module doc; ``polarity`` bright or dark:
    that intensity channel alone).

    Large images are read at a reduced size (short side ``max_side``), the diameter given back in the
    image's own pixels.
    """
    img = scaled(channel)
    factor = min(1.0, max_side / float(min(img.shape)))
    if factor < 1.0:
        img = ndi.zoom(img, factor, order=1)
    channels = {BRIGHT: img, DARK: 1.0 - img}
    if polarity in (BRIGHT, DARK):
        channels = {polarity: channels[polarity]}
    else:
        channels[TEXTURE] = texture_of(img)
    sig = sigmas(img.shape)
    found: dict[str, list[tuple[float, float]]] = {}
    for name, image in channels.items():
        scores = []
        for s in sig:
            level, ratio = blob_score(image, s)
            scores.append(level * min(1.0, 2.0 * ratio))
        found[name] = [(scores[j], float(sig[j])) for j in _best_scale(scores)] or \
            [(max(scores), float(sig[int(np.argmax(scores))]))]     # no maximum inside the range: its strongest end

    def pick(names) -> tuple[float, float, str]:
        cands = [(score, s, name) for name in names for score, s in found[name]]
        top = max(c[0] for c in cands)
        return min((c for c in cands if c[0] >= NEAR_BEST * top), key=lambda c: c[1])

    best = pick([n for n in channels if n != TEXTURE])
    if TEXTURE in channels:
        tex = pick([TEXTURE])
        if best[0] < TEXTURE_GAIN * tex[0]:
            best = tex
    score, s, name = best
    return ScaleEstimate(diameter=2.0 * math.sqrt(2.0) * s / factor, dark=name == DARK, response=max(score, 0.0),
                         texture=name == TEXTURE)
