"""Optional augmentations of training patches (off by default): stain jitter of H&E-like RGB images,
Gaussian blur and smooth elastic deformation. :class:`~napari_lazylabels.engine.training.sampling.PatchSampler`
applies them as :class:`~napari_lazylabels.engine.config.AugmentConfig` asks; each draws random numbers
only when it is on, so runs that leave them off are the same as before they existed.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Optical densities of haematoxylin, eosin and DAB in RGB (Ruifrok & Johnston 2001; as scikit-image's
#: ``rgb_from_hed``), and the inverse: stain concentrations from optical densities.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], np.float64)
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)

_EPS = 1e-6


def stain_jitter(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """HED colour augmentation (Tellez et al. 2018) of a normalised RGB patch (3, Y, X).

    The patch (clipped to 0..1) is turned into optical densities, unmixed into haematoxylin, eosin
    and DAB concentrations, each concentration scaled by a factor from U(1 - sigma, 1 + sigma) and
    shifted by U(-sigma, sigma), and mixed back; what the clipping cut off is added back unchanged.
    Patches without 3 channels are returned as they are.
    """
    if image.shape[0] != 3 or sigma <= 0:
        return image
    clipped = np.clip(image, _EPS, 1.0)
    od = -np.log(clipped).reshape(3, -1)                        # (3, N), RGB optical densities
    hed = HED_FROM_RGB.T @ od                                   # stains x pixels
    scale = rng.uniform(1 - sigma, 1 + sigma, (3, 1))
    shift = rng.uniform(-sigma, sigma, (3, 1))
    hed = hed * scale + shift
    rgb = np.exp(-(RGB_FROM_HED.T @ hed)).reshape(image.shape)
    return (image + (rgb - clipped)).astype(np.float32)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of every channel of a (C, Y, X) patch."""
    return np.stack([cv2.GaussianBlur(c, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) for c in image])


def elastic_field(size: int, alpha: float, grid: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random displacement of a ``size`` x ``size`` patch: ``grid`` x ``grid`` control
    displacements drawn from N(0, alpha) px, interpolated (bicubic). Returns the map_x, map_y of
    :func:`cv2.remap`."""
    coarse = rng.normal(0.0, alpha, (2, grid, grid)).astype(np.float32)
    dx, dy = (cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in coarse)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return xx + dx, yy + dy


def remap(arr: np.ndarray, maps: tuple[np.ndarray, np.ndarray], nearest: bool) -> np.ndarray:
    """``arr`` (YX or CYX) sampled at ``maps`` (reflected at the edges): linearly, or nearest for labels."""
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    if arr.ndim == 3:
        return np.stack([remap(a, maps, nearest) for a in arr])
    dtype = arr.dtype
    src = arr.astype(np.float32) if dtype not in (np.float32, np.uint8, np.uint16, np.int16) else arr
    out = cv2.remap(src, maps[0], maps[1], interp, borderMode=cv2.BORDER_REFLECT)
    return out.astype(dtype, copy=False)
