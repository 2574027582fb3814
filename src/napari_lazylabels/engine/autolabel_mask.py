"""The machine-made foreground mask's pieces: small ones removed, dim objects' pieces grown from their
points, a confidence for each piece, one point kept per object of the mask (:func:`one_per_basin`), and the
objects' diameter read from the mask (:func:`mask_diameter`).

A single threshold of a whole image misses the dim objects of an image whose
objects differ in brightness (a noisy multiplexed image, a stain taken up
unevenly): their blobs are found, but they lie outside the mask. Rather than
drop those points, :func:`grown_to_points` adds each one's object to the mask
by a *local* threshold: half-way between the background around the point (a
low percentile of a window of two object diameters) and the point's own
value, cut to a disk a little larger than an object around the point (so it
cannot run into a touching neighbour's), kept when it has an object's size.
A point whose piece cannot be found so (no contrast, or a piece far larger
than an object) is left outside the mask and dropped as before.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from .points import point_disks, point_pixels, seeded_partition

_EIGHT = np.ones((3, 3), bool)
#: The background level around a point: this percentile of the window.
BACKGROUND_PERCENTILE = 20
#: A point grows a piece only if it stands above its background by this share of the contrast between the
#: mask and the rest of the image (a noise maximum in a flat region does not).
MIN_CONTRAST = 0.25
#: A grown piece is cut to a disk of this many object radii around its point.
REACH = 1.25
#: A grown piece must be at least this share of the area of an object of the diameter read (a speck is no
#: dim object).
MIN_AREA_FACTOR = 0.4
#: A grown piece must end inside its disk: at most this share of the disk's rim is in it (a piece that
#: fills the disk is a textured region, not a dim object).
MAX_RIM_SHARE = 0.25
#: A grown piece may be at most this many times the area of an object of the diameter read.
MAX_AREA_FACTOR = 2.5


def without_small(mask: np.ndarray, area: int) -> np.ndarray:
    """``mask`` without its 8-connected pieces of fewer than ``area`` pixels."""
    lab, n = ndi.label(mask, structure=_EIGHT)
    if n == 0:
        return mask
    keep = np.bincount(lab.ravel()) >= area
    keep[0] = False
    return keep[lab]


def grown_to_points(mask: np.ndarray, smoothed: np.ndarray, dark: bool, points: np.ndarray, diameter: float,
                    min_area: int, confident: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mask with a piece grown at each point that lies outside it (see the module doc), and which
    points now lie inside it (bool per point).

    Args:
        mask: the thresholded foreground (bool or 0/1).
        smoothed: the channel the mask was cut from (its own intensity units).
        dark: the objects are darker than the background.
        points: (N, 3) y, x, class.
        diameter: the objects' diameter (px).
        min_area: the smallest piece kept (px).
        confident: which points may grow a piece (bool per point; default: all). A doubtful blob
            outside the mask is more often a speck of the background than a dim object.
    """
    found = np.asarray(mask) > 0
    out = found.copy()
    img = -np.asarray(smoothed, np.float64) if dark else np.asarray(smoothed, np.float64)
    contrast = float(np.median(img[found]) - np.median(img[~found])) if found.any() and not found.all() else 0.0
    h, w = out.shape
    pix = point_pixels(points)
    r = max(2, int(math.ceil(diameter)))
    area = math.pi * diameter * diameter / 4.0                # of one object
    smallest, largest = max(min_area, MIN_AREA_FACTOR * area), MAX_AREA_FACTOR * area
    reach = REACH * diameter / 2.0
    may = np.ones(len(pix), bool) if confident is None else np.asarray(confident, bool)
    for (y, x), grow in zip(pix, may):
        if not grow or not (0 <= y < h and 0 <= x < w) or out[y, x]:
            continue
        y0, y1, x0, x1 = max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1)
        window = img[y0:y1, x0:x1]
        background, peak = float(np.percentile(window, BACKGROUND_PERCENTILE)), float(img[y, x])
        if not peak - background > MIN_CONTRAST * contrast:
            continue
        yy, xx = np.ogrid[y0 - y:y1 - y, x0 - x:x1 - x]
        d2 = yy * yy + xx * xx
        near, rim = d2 <= reach * reach, (d2 <= reach * reach) & (d2 > (reach - 1.5) ** 2)
        pieces, _ = ndi.label((window > 0.5 * (background + peak)) & near, structure=_EIGHT)
        piece = pieces == pieces[y - y0, x - x0]
        bounded = np.count_nonzero(piece & rim) <= MAX_RIM_SHARE * max(1, np.count_nonzero(rim)) and \
            not np.any(ndi.binary_dilation(piece, _EIGHT) & found[y0:y1, x0:x1])
        if bounded and smallest <= int(np.count_nonzero(piece)) <= largest:
            out[y0:y1, x0:x1] |= ndi.binary_fill_holes(piece)
    inside = out[np.clip(pix[:, 0], 0, h - 1), np.clip(pix[:, 1], 0, w - 1)] if len(pix) else np.zeros(0, bool)
    return out, inside


def region_confidence(mask: np.ndarray, smoothed: np.ndarray, threshold: float, points: np.ndarray,
                      grown: np.ndarray | None = None, point_confidence: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The mask's 8-connected pieces (int32 map) and each one's confidence (index 0: background): its
    median contrast to the threshold over the whole foreground's, capped at 1, halved without a point.
    A piece made mostly of ``grown`` pixels (grown from a point by :func:`grown_to_points`) has the
    largest confidence of its points (``point_confidence``) instead: its contrast is to a local level."""
    pieces, n = ndi.label(np.asarray(mask) > 0, structure=_EIGHT)
    if n == 0:
        return pieces.astype(np.int32), np.ones(1)
    contrast = np.abs(np.asarray(smoothed, np.float64) - threshold)
    overall = float(np.median(contrast[pieces > 0])) or 1.0
    each = np.asarray(ndi.median(contrast, pieces, index=np.arange(1, n + 1)), np.float64)
    conf = np.clip(each / overall, 0.0, 1.0)
    pix = point_pixels(points)
    under = pieces[pix[:, 0], pix[:, 1]] if len(pix) else np.zeros(0, int)
    with_point = np.zeros(n + 1, bool)
    with_point[under] = True
    conf = np.where(with_point[1:], conf, conf / 2.0)
    if grown is not None and np.any(grown):
        share = ndi.mean(np.asarray(grown, np.float64), pieces, index=np.arange(1, n + 1))
        best = np.zeros(n + 1)
        pc = np.ones(len(pix)) if point_confidence is None else np.clip(np.asarray(point_confidence, float), 0, 1)
        np.maximum.at(best, under, pc)
        conf = np.where(np.asarray(share) > 0.5, best[1:], conf)
    return pieces.astype(np.int32), np.concatenate([[1.0], conf])


#: Two parts of the mask are two objects when the neck between them is this many pixels narrower than the
#: smaller part's middle (an h-maximum of the mask's smoothed distance transform).
NECK_DEPTH = 1.0


#: The mask's objects give the diameter only when it has at least this many of them.
MIN_OBJECTS = 5


def mask_objects(mask: np.ndarray, depth: float = NECK_DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """The objects of a mask: the basins (int32 map, 0 outside) of its distance transform (smoothed by
    1 px) grown from its ``depth``-maxima, so parts joined by a neck count as two; and that transform."""
    from skimage.morphology import h_maxima
    fg = np.asarray(mask) > 0
    dist = ndi.gaussian_filter(ndi.distance_transform_edt(fg), 1.0)
    markers, _ = ndi.label(h_maxima(dist, depth) & fg, structure=_EIGHT)
    return seeded_partition(fg, markers, -dist), dist


def disc_diameter(labels: np.ndarray, min_objects: int = 1) -> float | None:
    """The median diameter (px) of the objects of a label map, each a disc of its area, or None when it
    has fewer than ``min_objects``."""
    areas = np.bincount(np.asarray(labels).ravel())[1:]
    areas = areas[areas > 0]
    return float(np.median(2.0 * np.sqrt(areas / np.pi))) if len(areas) >= max(1, min_objects) else None


def mask_diameter(mask: np.ndarray, depth: float = NECK_DEPTH, min_objects: int = MIN_OBJECTS) -> float | None:
    """The median diameter (px) of the mask's objects (:func:`mask_objects`; each a disc of its area), or
    None when it has fewer than ``min_objects``."""
    if not np.any(mask):
        return None
    return disc_diameter(mask_objects(mask, depth)[0], min_objects)


def one_per_basin(points: np.ndarray, strength: np.ndarray, mask: np.ndarray,
                  depth: float = NECK_DEPTH) -> np.ndarray:
    """The indices of the points kept when each object of the mask keeps one, its strongest.

    The objects are those of :func:`mask_objects`: parts joined by a neck count as two. Blob detection
    answers to the texture inside a large object (the organelles of a cell in EM, the chromatin of a
    nucleus) with several points; one object then trains as several. Points outside the mask are all
    kept.
    """
    fg = np.asarray(mask) > 0
    if not len(points) or not fg.any():
        return np.arange(len(points))
    basins, _ = mask_objects(fg, depth)
    pix = point_pixels(points)
    basin = basins[pix[:, 0], pix[:, 1]]
    order = np.lexsort((-np.asarray(strength, np.float64), basin))      # by basin, the strongest first
    sorted_basin = basin[order]
    first = np.ones(len(order), bool)
    first[1:] = sorted_basin[1:] != sorted_basin[:-1]
    return np.sort(order[first | (sorted_basin == 0)])


#: :func:`objects_round`: a part of the mask is convex when its solidity (area over its convex hull's) is
#: at least this ...
CONVEX_SOLIDITY = 0.9
#: ... the objects are round when at least this share of the parts is convex ...
CONVEX_SHARE = 0.75
#: ... and the median part at most this many times as long as it is wide.
ROUND_ELONGATION = 1.6


def objects_round(cut: np.ndarray, min_objects: int = MIN_OBJECTS) -> bool:
    """Whether the objects of a mask cut between its points (``cut``: :func:`cut_between_points`) are
    round: three in four parts convex and the median part not elongated (constants above). Round nuclei
    (fluorescent stains) are; irregular or elongated ones (H&E, cells in phase contrast, bacteria) are
    not. False with fewer than ``min_objects`` parts."""
    from skimage.measure import regionprops
    parts = regionprops(cut)
    if len(parts) < max(1, min_objects):
        return False
    solidity = np.array([p.solidity for p in parts])
    elongation = np.array([p.axis_major_length / max(p.axis_minor_length, 1.0) for p in parts])
    return bool(np.mean(solidity >= CONVEX_SOLIDITY) >= CONVEX_SHARE and np.median(elongation) <= ROUND_ELONGATION)


def cut_between_points(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mask cut between the points (the point-seeded partition of the classical pipeline): a seeded
    watershed of its distance transform from a 1 px disk at each point; a pixel's value is its point's
    number (1..N in the points' order), 0 outside the mask and in pieces without a point."""
    fg = np.asarray(mask) > 0
    return seeded_partition(fg, point_disks(points, fg.shape, 1.0, within=fg))


#: :func:`split_pairs`: a part of the mask is split when its area is at least this many median parts' ...
PAIR_AREA = 1.6
#: ... and its major axis at least this many times its minor axis.
PAIR_ELONGATION = 1.5


def _two_means(coords: np.ndarray, centre: np.ndarray, orientation: float) -> np.ndarray | None:
    """The two centres of a 2-means split of the pixel coordinates, started across the major axis, or None
    when one side comes out empty."""
    side = (coords - centre) @ np.array([np.cos(orientation), np.sin(orientation)]) > 0
    for _ in range(10):
        if side.all() or not side.any():
            return None
        a, b = coords[~side].mean(0), coords[side].mean(0)
        side = np.sum((coords - b) ** 2, 1) < np.sum((coords - a) ** 2, 1)
    if side.all() or not side.any():
        return None
    return np.array([coords[~side].mean(0), coords[side].mean(0)])


def split_pairs(points: np.ndarray, confidence: np.ndarray, mask: np.ndarray, area: float = PAIR_AREA,
                elongation: float = PAIR_ELONGATION, cut: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two points, not one, for each large elongated part of the mask: the touching pairs that the blob
    detector sees as one blob.

    The mask is cut between the points (the point-seeded partition, as the classical pipeline cuts it).
    A part of at least ``area`` times the median part's area whose major axis is at least ``elongation``
    times its minor axis loses its point, and takes two instead, at the two centres of a 2-means split of
    its pixels (each moved to the part's pixel nearest to it), with the lost point's class and confidence.
    Returns the points and their confidence (the kept ones first, in their order). ``cut``: the mask
    already cut between these points (:func:`cut_between_points`), when the caller has it.
    """
    from skimage.measure import regionprops
    fg = np.asarray(mask) > 0
    points = np.asarray(points, np.float64).reshape(-1, 3)
    confidence = np.asarray(confidence, np.float64)
    if not len(points) or not fg.any():
        return points, confidence
    parts = cut_between_points(points, fg) if cut is None else cut
    areas = np.bincount(parts.ravel(), minlength=len(points) + 1)[1:]
    if not np.any(areas > 0):
        return points, confidence
    median = float(np.median(areas[areas > 0]))
    lost, new, new_confidence = [], [], []
    for part in regionprops(parts):
        if part.area < area * median or part.axis_minor_length <= 0 \
                or part.axis_major_length < elongation * part.axis_minor_length:
            continue
        coords = part.coords.astype(np.float64)
        centres = _two_means(coords, np.asarray(part.centroid), part.orientation)
        if centres is None:
            continue
        k = part.label - 1
        lost.append(k)
        for c in centres:
            y, x = coords[int(np.argmin(np.sum((coords - c) ** 2, 1)))]
            new.append((y, x, points[k, 2]))
            new_confidence.append(confidence[k])
    if not lost:
        return points, confidence
    keep = np.setdiff1d(np.arange(len(points)), lost)
    return (np.concatenate([points[keep], np.asarray(new, np.float64)]),
            np.concatenate([confidence[keep], np.asarray(new_confidence, np.float64)]))
