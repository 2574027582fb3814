"""What the machine-made labels of one image are made with, read from it (unless given): the objects'
diameter, polarity and channel (:mod:`.autolabel_scale`, on a noisy image smoothed by
:data:`SCALE_PREFILTER` first), the noise and the denoising it calls for; then the diameter corrected by
the objects of the image's mask (:func:`sized_by_mask`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import numpy as np
from scipy import ndimage as ndi

from .autolabel_config import AutolabelConfig
from .autolabel_mask import mask_diameter
from .autolabel_scale import ScaleEstimate, estimate_scale
from .autolabel_stats import NOISY, noise_level


@dataclass(frozen=True)
class ImageReading:
    """What the labels of one image are made with: the object diameter (px), the polarity, and the
    smoothing applied first (0: none), with the noise and the scale estimate they came from."""

    diameter: float
    dark: bool
    denoise: float
    noise: float
    estimate: ScaleEstimate | None = None
    texture: bool = False         # the objects show in the local contrast (phase contrast), not the intensity
    from_mask: bool = False       # the diameter is the mask's objects' (the blob read corrected)
    tiled: bool = False           # the objects tile the image: one point per piece of the mask
    halo: bool = False            # read again: dark objects in bright halos, cut at the lines between them
    pairs_split: bool = False     # round objects: a large elongated part of the mask took two points
    pairs_set: bool = False       # ... because the user set it (split pairs on), not read from the objects

    def describe(self) -> str:
        how = "given" if self.estimate is None else \
            f"read from the mask's objects; {self.estimate.diameter:.0f} px by blob response" if self.from_mask \
            else "read from the image"
        kind = "told apart by their texture" if self.texture else \
            f"{'darker' if self.dark else 'brighter'} than the background"
        text = f"objects {kind}, {self.diameter:.0f} px ({how})"
        text += f"; noisy (noise {self.noise:.3f}), denoised by {self.denoise:.1f} px" if self.denoise else ""
        text += "; objects tile the image: one point per piece of the mask" if self.tiled else ""
        why = "touching pairs split as set" if self.pairs_set else "round objects"
        text += f"; {why}: a large elongated part of the mask takes two points" if self.pairs_split else ""
        return text + ("; read again as dark objects in bright halos (the first reading looked wrong), cut "
                       "apart at the bright lines between them: one point per piece" if self.halo else "")


#: A noisy image is smoothed by this sigma (px) for the scale read alone (2 px made the membranes of a noisy
#: EM section read as dark objects of 60 px).
SCALE_PREFILTER = 1.0
#: The mask's objects may correct the blob read's diameter by at most this factor either way.
SIZE_CORRECTION = 2.0


def read_image(channel: np.ndarray, config: AutolabelConfig,
               micrometers_per_pixel: float | None = None) -> ImageReading:
    """The object diameter, polarity and denoising of a channel: given by ``config``, or read from it
    (:mod:`.autolabel_stats`)."""
    img = np.asarray(channel, np.float64)
    noise = noise_level(img)
    noisy = noise > NOISY
    d, dark = config.diameter_px(micrometers_per_pixel), config.dark
    estimate, texture = None, False
    if d is None or dark is None:
        pre = ndi.gaussian_filter(img, SCALE_PREFILTER) if noisy and config.denoise is None else \
            ndi.gaussian_filter(img, config.denoise) if config.denoise else img
        polarity = "auto" if dark is None else ("dark" if dark else "bright")
        estimate = estimate_scale(pre, polarity)
        d = estimate.diameter if d is None else d
        texture = estimate.texture and dark is None
        dark = estimate.dark if dark is None else dark
        estimate = estimate if config.object_size is None else None
    return ImageReading(float(d), bool(dark), _denoise_sigma(config, d, noisy), noise, estimate, bool(texture))


def _denoise_sigma(config: AutolabelConfig, diameter: float, noisy: bool) -> float:
    return float(config.denoise if config.denoise is not None else (max(1.0, diameter / 6.0) if noisy else 0.0))


def sized_by_mask(reading: ImageReading, mask: np.ndarray, config: AutolabelConfig) -> ImageReading:
    """The reading with the diameter of the mask's objects (:func:`.autolabel_mask.mask_diameter`), kept
    within a factor :data:`SIZE_CORRECTION` of the blob read; the same reading when the size was given,
    the mask has too few objects, or ``config.size_from_mask`` is off.

    The blob read answers to the strongest 1 % of the image: the largest objects, a pair of touching
    ones, or the texture inside a large cell (the organelles of an EM section read it at half a cell).
    The mask's objects (its parts between necks) are counted one by one."""
    if not config.size_from_mask or reading.estimate is None:
        return reading
    d = mask_diameter(mask)
    if d is None:
        return reading
    d = float(np.clip(d, reading.diameter / SIZE_CORRECTION, reading.diameter * SIZE_CORRECTION))
    return dataclasses.replace(reading, diameter=d, from_mask=True,
                               denoise=_denoise_sigma(config, d, reading.noise > NOISY))
