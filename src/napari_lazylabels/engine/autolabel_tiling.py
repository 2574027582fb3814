"""Objects that tile the image: the mask's pieces are the objects.

In an EM section (or a packed epithelium) the cells fill the image and the
background is a thin network of membranes between them. Blob detection then
answers to the texture inside each cell (organelles, vesicles) with several
points per cell, and the seeded watershed cuts one cell into several. The
mask, though, already separates the cells: each 4-connected piece of it is one
cell. :func:`tiles_image` tells such an image from the others by the mask
alone (the background is everywhere close to it, and it covers most of the
image); :func:`one_per_piece` then puts one point in each piece, at its
deepest pixel (the maximum of its distance transform).

Measured on the machine masks of the developers' sets (docs/method.md, "Objects
that tile the image"): the median distance of a background pixel to the
mask is 0.13-0.21 of the object diameter on EM sections and at least 0.28 on
every other set (H&E 0.28-0.35, the MIBI-like mode 0.32-1.04, HeLa 0.76-1.24,
phase contrast 0.30-1.28); the mask covers 0.56-0.63 of an EM section and at
most 0.45 of the others' images (but 0.98 of an E. coli frame whose
threshold failed: no tiling there, one piece is no set of objects). On all
the frames of those sets the gap alone overlaps (H&E down to 0.18): the
cover keeps H&E out (0.26-0.43, EM 0.51-0.63), with a narrow margin.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .autolabel_stats import AUTO
from .points import empty_points

#: Auto-detected (:data:`.autolabel_stats.AUTO`), on, off: whether the mask's pieces are taken as the objects.
ON, OFF = "on", "off"
TILING = (AUTO, ON, OFF)
#: The objects tile the image when the median distance of a background pixel to the mask is under this share
#: of the object diameter (the background is a thin network between them) ...
TILING_GAP = 0.24
#: ... and the mask covers between these shares of the image.
TILING_COVER = (0.45, 0.9)
#: At least this many pieces (as many as the mask's objects need to give the diameter): a few large pieces are
#: a tissue, not its cells (scikit-image's immunohistochemistry sample: 3 pieces covering 59 %).
MIN_PIECES = 5


def background_gap(mask: np.ndarray) -> float:
    """The median distance (px) of a background pixel to the mask (0 without background, inf without mask)."""
    fg = np.asarray(mask) > 0
    if fg.all():
        return 0.0
    if not fg.any():
        return float("inf")
    return float(np.median(ndi.distance_transform_edt(~fg)[~fg]))


def tiles_image(mask: np.ndarray, diameter: float) -> bool:
    """Whether the mask's objects tile the image (see the module doc): a thin background, most of the
    image covered, and at least :data:`MIN_PIECES` pieces."""
    fg = np.asarray(mask) > 0
    cover = float(fg.mean()) if fg.size else 0.0
    if not TILING_COVER[0] <= cover <= TILING_COVER[1]:
        return False
    if background_gap(fg) >= TILING_GAP * float(diameter):
        return False
    return ndi.label(fg)[1] >= MIN_PIECES


def decide(setting: str, mask: np.ndarray, diameter: float) -> bool:
    """The tiling setting applied: ``on``, ``off``, or ``auto`` (:func:`tiles_image`)."""
    return setting == ON or (setting == AUTO and tiles_image(mask, diameter))


def one_per_piece(mask: np.ndarray, pieces: np.ndarray | None = None) -> np.ndarray:
    """One point per piece of the mask, at its deepest pixel in the mask (the first in raster order among
    equals): (N, 3) float64 of y, x, class 1. The pieces are the mask's 4-connected ones, or the labels of
    ``pieces`` inside the mask (a label with no pixel there has no point)."""
    fg = np.asarray(mask) > 0
    if pieces is None:
        pieces, n = ndi.label(fg)
        ids = np.arange(1, n + 1)
    else:
        pieces = np.where(fg, pieces, 0)
        ids = np.unique(pieces[pieces > 0])
    if not len(ids):
        return empty_points()
    dist = ndi.distance_transform_edt(fg)
    deepest = ndi.maximum_position(dist, pieces, index=ids)
    yx = np.asarray(deepest, np.float64).reshape(-1, 2)
    return np.column_stack([yx, np.ones(len(ids))])
