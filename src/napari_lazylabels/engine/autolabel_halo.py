"""A second reading for labels that look wrong: objects in a halo, cut apart at the bright lines between them.

In phase contrast, bacteria are dark and each one sits in a bright halo. The first reading
(:mod:`.autolabel_reading`) can take the halo for the objects: its threshold falls at the halo's edge
and the mask covers almost the whole image, or the local contrast reads the whole colony as one object
(:mod:`.autolabel_checks` warns about both). When it does, ``autolabel`` reads the image again
(:func:`halo_reading`):

* **The mask** is the objects' side of the histogram alone: the values beyond the background's mode
  (the histogram's highest bin) on the other side (the halo) are set to the mode, and the threshold
  method is chosen from what remains (:func:`.autolabel_stats.choose_threshold`). Holes are filled.
* **Touching objects** are cut apart where a bright-ridge filter (Sato, :data:`RIDGE_SIGMA`) answers
  above :data:`RIDGE_SHARE` of its values around the mask: the bright lines between
  touching dark rods. Pieces under :data:`PIECE_SHARE` of the median piece are dropped as fragments,
  and the kept pieces grow back over the mask.
* **Pieces of two or more objects** with no line between them (a dividing rod, two rods side by side)
  are cut apart by their size (:func:`cut_large`): a piece of at least :data:`CUT_SHARE` typical
  pieces' area (the median piece, fragments left out) is cut into round(area / typical) parts of equal
  area, across its length, or along it when it is wider than :data:`WIDE` typical widths.
* **One point per piece**, at the deepest pixel of the mask, which is the pieces without the one-pixel
  lines between two of them.

Only dark objects are read so (bacteria in phase contrast); a bright halo's own pieces would be
rings. The pieces' lines stay out of the mask, so that the mask cut between the points
(:func:`.autolabel.classical_instances`) keeps the pieces apart. ``autolabel`` takes this reading
only when it has at least :data:`MIN_PIECES` pieces and no warning of its own.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from .autolabel_stats import THRESHOLD_FUNCTIONS, choose_threshold
from .autolabel_tiling import one_per_piece
from .points import empty_points

#: The ridge filter's scale (px): the lines between touching rods are 1-3 px wide.
RIDGE_SIGMA = 1.0
#: A pixel is on a line between objects where the ridge filter exceeds this quantile of its values
#: around the mask.
RIDGE_SHARE = 0.8
#: Pieces smaller than this share of the median piece are fragments of the cut.
PIECE_SHARE = 0.25
#: A second reading needs at least this many pieces.
MIN_PIECES = 2
#: A piece of at least this many typical pieces' area holds several objects (:func:`cut_large`).
CUT_SHARE = 1.6
#: A piece wider than this many typical widths holds objects side by side: it is cut along its length.
WIDE = 1.5


def one_sided_threshold(values: np.ndarray) -> tuple[float, str]:
    """The threshold of ``values`` (objects high) on the objects' side of the mode, and its method."""
    from skimage import filters
    v = np.asarray(values, np.float64)
    counts, edges = np.histogram(v, 512)
    mode = 0.5 * (edges[counts.argmax()] + edges[counts.argmax() + 1])
    clipped = np.maximum(v, mode)
    method, _ = choose_threshold(clipped)
    return float(getattr(filters, THRESHOLD_FUNCTIONS[method])(clipped)), method


class HaloReading(NamedTuple):
    """What :func:`halo_reading` found."""

    pieces: np.ndarray        #: the pieces grown back over the mask (int32 map, 0 outside)
    points: np.ndarray        #: one per piece at its deepest pixel in the mask without the lines ((N, 3))
    threshold: float          #: in the channel's units
    method: str               #: the threshold method
    smoothed: np.ndarray      #: the channel as it was thresholded (float64, smoothed)


def halo_reading(channel: np.ndarray, smoothing: float = 1.0) -> HaloReading:
    """Dark objects cut apart at the bright lines between them: their pieces, one point per piece, the
    threshold and its method, and the smoothed channel (:class:`HaloReading`)."""
    from skimage.filters import sato
    from skimage.segmentation import watershed
    img = np.asarray(channel, np.float64)
    smooth = ndi.gaussian_filter(img, smoothing) if smoothing > 0 else img
    sign = -1.0
    t, method = one_sided_threshold(sign * smooth)
    mask = ndi.binary_fill_holes(sign * smooth > t)
    nothing = HaloReading(np.zeros(img.shape, np.int32), empty_points(), sign * t, method, smooth)
    if not mask.any():
        return nothing
    ridge = sato(img, sigmas=[RIDGE_SIGMA], black_ridges=False)
    near = ndi.binary_dilation(mask, iterations=3)
    pieces, n = ndi.label(mask & ~(ridge > np.quantile(ridge[near], RIDGE_SHARE)))
    if n == 0:
        return nothing
    areas = np.bincount(pieces.ravel())[1:]
    keep = np.flatnonzero(areas >= PIECE_SHARE * np.median(areas)) + 1
    seeds = np.where(np.isin(pieces, keep), pieces, 0)
    grown = cut_large(watershed(np.zeros(img.shape, np.float32), seeds, mask=mask).astype(np.int32))
    return HaloReading(grown, one_per_piece(without_lines(grown), grown), sign * t, method, smooth)


def cut_large(pieces: np.ndarray) -> np.ndarray:
    """The pieces (int32 map) with each piece of ``k`` >= 2 typical pieces' area (and at least
    :data:`CUT_SHARE` of it) cut into ``k`` parts of equal area: across its major axis (objects end to end),
    or across its minor axis when it is wider than :data:`WIDE` typical widths (objects side by side).
    The typical piece is the median one, pieces under :data:`PIECE_SHARE` of the median left out."""
    from skimage.measure import regionprops
    props = regionprops(pieces)
    if len(props) < MIN_PIECES:
        return pieces
    areas = np.array([r.area for r in props], np.float64)
    widths = np.array([r.axis_minor_length for r in props])
    typical = areas >= PIECE_SHARE * np.median(areas)
    area, width = float(np.median(areas[typical])), float(np.median(widths[typical]))
    out, label = pieces.copy(), int(pieces.max())
    for r in props:
        k = int(round(r.area / area))
        if r.area < CUT_SHARE * area or k < 2:
            continue
        o = r.orientation                        # the major axis' angle to the rows
        axis = (-np.sin(o), np.cos(o)) if r.axis_minor_length > WIDE * width else (np.cos(o), np.sin(o))
        along = (r.coords - r.coords.mean(0)) @ np.asarray(axis)
        part = np.searchsorted(np.quantile(along, np.arange(1, k) / k), along)
        for j in range(1, k):
            at = r.coords[part == j]
            label += 1
            out[at[:, 0], at[:, 1]] = label
    return out


def without_lines(pieces: np.ndarray) -> np.ndarray:
    """The pieces' mask (bool) without the pixels that touch another piece."""
    pieces = np.asarray(pieces)
    big = int(pieces.max()) + 1
    low = ndi.minimum_filter(np.where(pieces > 0, pieces, big), 3)
    high = ndi.maximum_filter(pieces, 3)
    return (pieces > 0) & ~((low < big) & (high != low))
