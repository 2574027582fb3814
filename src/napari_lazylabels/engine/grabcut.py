"""GrabCut drafts of strong masks from detection blobs (METHOD section 7).

For each blob (a connected region of one class value in the detection layer)
GrabCut runs on a crop around it, seeded by a mask:

* ``GC_FGD``: the blob itself;
* ``GC_PR_FGD``: the blob dilated by ``dilate`` px, plus a first guess of the
  object (``preseed``, below);
* ``GC_BGD``: a ring outside the search box, every other blob dilated by
  1 px (so neighbours are not swallowed) and user-painted masks of other
  objects (from ``existing``);
* ``GC_PR_BGD``: the rest of the box.

The search box is the blob's bounding box grown by ``margin`` px plus ``grow``
times the blob's larger side: a blob is drawn well inside its object, which can
be about three times as wide as the blob.

The image crop is smoothed a little (Gaussian, ``smooth`` px) and scaled to
8-bit RGB with percentiles of the whole image (1 and 99.8 %), grayscale
replicated to three channels and images with two or more than three channels
reduced to their mean. The draft keeps the connected component that contains
the blob, holes filled, and takes the blob's class.

Deviations from the bare METHOD form, measured on synthetic crowded scenes of
nuclei-like objects (256x256, 60 objects of intensity 500-1100 over 150, noise
sd 40, some touching, blobs covering the inner 20 % of each object's depth):

* ``preseed`` (default on): with only the dilated blob as "probably
  foreground", most of the object starts as "probably background", its colour
  dominates GrabCut's background model and the cut collapses onto the blob
  for small blobs. The first guess (pixels connected to the blob whose colour
  is nearer the blob's median than the background's, and nearer to this blob
  than to any other) lifts the mean IoU from 0.81 to 0.95, and on a noisy
  version (noise sd 120 on objects of 500-1100 over a background of 150)
  from 0.34 to 0.86.
* ``smooth`` = 0.7 px: with the guess, light smoothing lifts the noisy case
  to 0.90 and leaves the clean one as it was (0.95).
* Where GrabCut still collapses (a result smaller than ``COLLAPSE`` times the
  guess) or raises (no background samples, e.g. a blob filling its box), the
  guess is the draft.
* GrabCut's k-means starts from OpenCV's global RNG: it is seeded (0) before
  each call so the drafts are reproducible.

``preseed=False, smooth=0`` gives the bare METHOD form.

Overlaps: where two drafts claim the same pixels, the pixels go to the blob
a seeded watershed on the image gradient reaches first (inside the union of
the drafts, seeded by the blobs), provided that blob's draft claimed them;
otherwise to the earlier blob. Touching objects without a visible boundary are
thus split about half-way between their blobs, with one they are split along
it.

The drafts are written only where ``existing`` is 0: what the user painted is
never changed.
"""

from __future__ import annotations

from typing import Callable, Iterable

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as label_regions
from skimage.segmentation import watershed

from ..errors import AnnotationError
from .labels import blob_components, class_map, smallest_uint

_SQUARE = ndi.generate_binary_structure(2, 2)
_CROSS = ndi.generate_binary_structure(2, 1)

#: Percentiles that map to 0 and 255 in the 8-bit image.
PERCENTILES = (1.0, 99.8)

#: A GrabCut result smaller than this fraction of the first guess counts as
#: collapsed onto the blob, and the guess is kept instead.
COLLAPSE = 0.3


def _gray(image: np.ndarray) -> np.ndarray:
    """YX view of a YX or YXC image (mean over channels)."""
    return image if image.ndim == 2 else image.mean(axis=-1)


def _scaling(image: np.ndarray) -> tuple[float, float]:
    """Low and high intensities for the 8-bit scaling (from a subsample of large images)."""
    step = max(1, int(np.sqrt(image.shape[0] * image.shape[1] / 1_000_000)))
    sample = np.asarray(image[::step, ::step], dtype=np.float32)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, PERCENTILES)
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def _to_rgb8(crop: np.ndarray, lo: float, hi: float, smooth: float = 0.0) -> np.ndarray:
    """A YX or YXC crop as contiguous 8-bit RGB, Gaussian-smoothed in YX by ``smooth`` px."""
    crop = np.asarray(crop, dtype=np.float32)
    if crop.ndim == 3 and crop.shape[-1] != 3:
        crop = crop.mean(axis=-1)
    if smooth > 0:
        crop = ndi.gaussian_filter(np.nan_to_num(crop, nan=lo), (smooth, smooth) + (0,) * (crop.ndim - 2),
                                   mode="nearest")
    scaled = np.nan_to_num((crop - lo) * (255.0 / (hi - lo)), nan=0.0)
    out = np.clip(scaled, 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=-1)
    return np.ascontiguousarray(out)


def _disk(radius: int) -> np.ndarray:
    r = max(int(radius), 0)
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def _out_dtype(existing: np.ndarray | None, max_class: int) -> np.dtype:
    need = smallest_uint(max_class)
    if existing is None:
        return need
    dt = existing.dtype
    if dt.kind in "iu" and np.iinfo(dt).max >= max_class:
        return dt
    return np.promote_types(dt, need) if dt.kind in "iu" else need


def _draft_one(rgb: np.ndarray, own: np.ndarray, others: np.ndarray, box: tuple[slice, slice],
               dilate: int, iterations: int, fill_holes: bool, preseed: bool = False,
               image_bg: np.ndarray | None = None) -> np.ndarray:
    """GrabCut in one crop. ``own``: the blob; ``others``: definite background; box: the search box."""
    mask = np.full(own.shape, cv2.GC_BGD, np.uint8)
    mask[box] = cv2.GC_PR_BGD
    grown = ndi.binary_dilation(own, _disk(dilate)) if dilate > 0 else own.copy()
    guess = grown | _preseed(rgb, own, others, box, image_bg) if preseed else grown
    guess &= ~others
    guess |= own
    mask[guess] = cv2.GC_PR_FGD
    mask[others & ~own] = cv2.GC_BGD
    mask[own] = cv2.GC_FGD
    has_bg = np.any((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD))
    result = guess
    if has_bg and iterations > 0:
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        try:
            cv2.setRNGSeed(0)  # GrabCut's k-means start is random: make the drafts reproducible
            cv2.grabCut(rgb, mask, None, bgd, fgd, int(iterations), cv2.GC_INIT_WITH_MASK)
            result = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        except cv2.error:  # e.g. too few samples for a colour model
            pass
        if preseed and result.sum() < COLLAPSE * guess.sum():
            result = guess  # GrabCut collapsed onto the blob (weak contrast, noise): keep the guess
    return _keep_blob_component(result | own, own, fill_holes)


def _preseed(rgb: np.ndarray, own: np.ndarray, others: np.ndarray, box: tuple[slice, slice],
             image_bg: np.ndarray | None = None) -> np.ndarray:
    """A first guess of the object for GrabCut's colour models.

    Box pixels connected to the blob whose colour is nearer the blob's median
    than each background colour, and nearer to this blob than to any other.
    Background colours: the median outside the box (which may be mostly
    neighbouring objects in a crowded field) and ``image_bg``, the median of
    the whole image away from the blobs; one within the blob's own colour
    spread is ignored.
    """
    inbox = np.zeros(own.shape, bool)
    inbox[box] = True
    bg = ~inbox & ~others
    d_own = None
    if bg.sum() < 10:  # the box fills the crop (image edges): use the pixels far from the blob
        d_own = ndi.distance_transform_edt(~own)
        bg = ~others & (d_own > 0.5 * d_own.max())
    col = rgb.astype(np.float32)
    own_col = col[own]
    fg_ref = np.median(own_col, axis=0)
    spread = max(8.0, 2.0 * float(np.sqrt(((own_col - fg_ref) ** 2).sum(1).mean())))
    refs = [np.median(col[bg], axis=0)] if bg.sum() >= 10 else []
    if image_bg is not None:
        refs.append(np.asarray(image_bg, np.float32))
    refs = [r for r in refs if np.sqrt(((r - fg_ref) ** 2).sum()) > spread]
    if not refs:
        return np.zeros(own.shape, bool)
    d_fg = ((col - fg_ref) ** 2).sum(-1)
    similar = inbox.copy()
    for r in refs:
        similar &= d_fg < ((col - r) ** 2).sum(-1)
    if others.any():
        d_own = ndi.distance_transform_edt(~own) if d_own is None else d_own
        similar &= d_own <= ndi.distance_transform_edt(~others)
    similar |= own
    comps, _ = ndi.label(similar, structure=_CROSS)
    ids = np.unique(comps[own])
    return np.isin(comps, ids[ids > 0]) & ~others


def _image_background(image: np.ndarray, blob_any: np.ndarray, lo: float, hi: float) -> np.ndarray | None:
    """Median 8-bit colour of the image away from the blobs (subsampled), or None."""
    step = max(1, int(np.sqrt(blob_any.size / 250_000)))
    away = ~ndi.binary_dilation(blob_any[::step, ::step], _SQUARE, iterations=2)
    if away.sum() < 10:
        return None
    return np.median(_to_rgb8(image[::step, ::step], lo, hi)[away].astype(np.float32), axis=0)


def _keep_blob_component(mask: np.ndarray, own: np.ndarray, fill_holes: bool) -> np.ndarray:
    """The connected component(s) of ``mask`` holding the blob, holes filled."""
    comps, n = ndi.label(mask, structure=_SQUARE)
    if n > 1:
        ids = np.unique(comps[own & mask])
        mask = np.isin(comps, ids[ids > 0])
    if fill_holes:
        mask = ndi.binary_fill_holes(mask)
    return mask


def grabcut_drafts(image: np.ndarray, blobs: np.ndarray, existing: np.ndarray | None = None, *,
                   margin: int = 10, dilate: int = 3, iterations: int = 3,
                   only: Iterable[int] | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   grow: float = 1.0, smooth: float = 0.7, preseed: bool = True,
                   fill_holes: bool = True) -> np.ndarray:
    """Draft strong masks (a class map) from detection blobs with GrabCut.

    Args:
        image: YX or YXC image (any numeric dtype).
        blobs: YX detection layer; each connected region of one class value
            (see :func:`blob_components`) is one object.
        existing: the strong-mask layer so far (YX class map) or None. Its
            non-zero pixels are kept as they are; drafts go only where it is 0.
            Blobs at least half covered by it are skipped (already painted).
        margin: px added on every side of the blob's bounding box (on top of
            ``grow``) to make the search box.
        dilate: radius in px of the "probably foreground" ring around the blob.
        iterations: GrabCut iterations (0: no GrabCut, the first guess is the draft).
        only: component ids (of :func:`blob_components`) to draft; the other
            blobs still act as background. None: all blobs.
        progress: called as ``progress(done, total)`` after each blob drafted
            (once as ``progress(0, 0)`` when there is none to draft).
        grow: the box is also grown by this times the blob's larger side.
        smooth: Gaussian sigma (px) applied to each crop before GrabCut.
        preseed: add a colour-based first guess of the object to
            "probably foreground" (see the module doc); False with
            ``smooth=0`` is the bare METHOD form.
        fill_holes: fill holes of each draft.

    Returns:
        A class map of the blobs' YX shape: ``existing`` where it is non-zero,
        the drafts' classes elsewhere, 0 where nothing was drafted. Its dtype is
        ``existing``'s (promoted if a class does not fit), else uint8 / uint16.
    """
    image = np.asarray(image)
    blobs = np.asarray(blobs)
    if blobs.ndim != 2:
        raise AnnotationError(f"detection blobs have shape {blobs.shape}; expected a 2D (Y, X) layer",
                              source="GrabCut")
    if image.ndim not in (2, 3) or image.shape[:2] != blobs.shape:
        raise AnnotationError(f"image of shape {image.shape} does not match blobs of shape {blobs.shape}",
                              source="image")
    if existing is not None:
        existing = np.asarray(existing)
        if existing.shape != blobs.shape:
            raise AnnotationError(f"strong masks of shape {existing.shape} do not match blobs of shape "
                                  f"{blobs.shape}", source="existing")
    if blobs.dtype.kind not in "iub":
        raise AnnotationError(f"detection blobs have dtype {blobs.dtype}; expected integers", source="GrabCut")
    if blobs.size and blobs.min() < 0:
        raise AnnotationError("detection blobs hold negative values", source="GrabCut")

    comps, classes = blob_components(blobs)
    max_class = max(classes.values(), default=0)
    if existing is not None and existing.size:
        max_class = max(max_class, int(existing.max()))
    dtype = _out_dtype(existing, max_class)
    painted = existing > 0 if existing is not None else np.zeros(blobs.shape, bool)

    ids = sorted(classes) if only is None else sorted({int(i) for i in only} & set(classes))
    boxes = ndi.find_objects(comps)
    todo = []
    for i in ids:
        own = comps[boxes[i - 1]] == i
        if painted[boxes[i - 1]][own].mean() < 0.5:
            todo.append(i)

    owner = np.zeros(blobs.shape, np.int32)  # blob id of the draft owning each pixel
    contested = np.zeros(blobs.shape, bool)
    drafts: dict[int, tuple[tuple[slice, slice], np.ndarray]] = {}
    if todo:
        lo, hi = _scaling(image)
        # Other objects' definite background: blobs dilated 1 px, and painted masks.
        blob_any = comps > 0
        h, w = blobs.shape
        image_bg = _image_background(image, blob_any, lo, hi) if preseed else None
        painted_comps = label_regions(painted, connectivity=2) if painted.any() else None
        for n_done, i in enumerate(todo, 1):
            sy, sx = boxes[i - 1]
            extra = margin + int(round(grow * max(sy.stop - sy.start, sx.stop - sx.start)))
            ring = max(3, margin // 2)
            by0, by1 = max(sy.start - extra, 0), min(sy.stop + extra, h)
            bx0, bx1 = max(sx.start - extra, 0), min(sx.stop + extra, w)
            cy0, cy1 = max(by0 - ring, 0), min(by1 + ring, h)
            cx0, cx1 = max(bx0 - ring, 0), min(bx1 + ring, w)
            crop = (slice(cy0, cy1), slice(cx0, cx1))
            box = (slice(by0 - cy0, by1 - cy0), slice(bx0 - cx0, bx1 - cx0))
            own = comps[crop] == i
            others = ndi.binary_dilation(blob_any[crop] & ~own, _SQUARE)
            if painted_comps is not None:
                pc = painted_comps[crop]
                touching = np.unique(pc[own])
                others |= (pc > 0) & ~np.isin(pc, touching[touching > 0])
            draft = _draft_one(_to_rgb8(image[crop], lo, hi, smooth), own, others, box,
                               dilate, iterations, fill_holes, preseed, image_bg)
            drafts[i] = (crop, draft)
            o = owner[crop]
            contested[crop] |= draft & (o > 0)
            o[draft & (o == 0)] = i
            if progress is not None:
                progress(n_done, len(todo))
    elif progress is not None:
        progress(0, 0)

    if contested.any():
        _split_contested(image, comps, owner, contested, drafts)

    out = class_map(owner, classes, dtype)
    if existing is not None:
        out[painted] = existing[painted]
    return out


def _split_contested(image: np.ndarray, comps: np.ndarray, owner: np.ndarray, contested: np.ndarray,
                     drafts: dict[int, tuple[tuple[slice, slice], np.ndarray]]) -> None:
    """Give pixels claimed by several drafts to the claimant a gradient watershed reaches first."""
    crops = [c for c, _ in drafts.values()]
    sl = (slice(min(c[0].start for c in crops), max(c[0].stop for c in crops)),
          slice(min(c[1].start for c in crops), max(c[1].stop for c in crops)))
    gray = np.asarray(_gray(np.asarray(image[sl], dtype=np.float32)))
    gray = np.nan_to_num(gray)
    elevation = np.hypot(ndi.sobel(gray, 0), ndi.sobel(gray, 1))
    union = owner[sl] > 0
    markers = np.where(np.isin(comps[sl], list(drafts)), comps[sl], 0) * union
    basins = watershed(elevation, markers=markers, mask=union)
    oy, ox = sl[0].start, sl[1].start
    for i, (crop, draft) in drafts.items():
        local = (slice(crop[0].start - oy, crop[0].stop - oy), slice(crop[1].start - ox, crop[1].stop - ox))
        take = draft & contested[crop] & (basins[local] == i)
        owner[crop][take] = i
    # Each draft keeps only the part connected to its blob.
    for i, (crop, draft) in drafts.items():
        o = owner[crop]
        mine = o == i
        if mine.any():
            kept = _keep_blob_component(mine, comps[crop] == i, fill_holes=False)
            o[mine & ~kept] = 0
