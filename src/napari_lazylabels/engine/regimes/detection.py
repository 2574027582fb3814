"""Detection: a quick blob well inside each object (Ke et al. 2020; METHOD section 1, task 1).

The cheapest lazy label: one brush stroke inside every object, valued by the
object's class (1..K). It trains the head whose blobs seed the instances.
"""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np
from scipy import ndimage
from skimage.segmentation import relabel_sequential

from ..groundtruth import check_instances, object_classes
from ..labels import blob_components, smallest_uint
from ..tasks import PLAIN, SEEDS
from .base import LabelInput, Regime, count_text

#: Blob pixels are at least this deep inside their object (Euclidean distance
#: to the nearest pixel outside it, edge pixels being at depth 1), so a blob
#: never touches its object's boundary unless the object is too thin for it.
MIN_BLOB_DEPTH = 2.0

_EIGHT = np.ones((3, 3), dtype=bool)

#: Okabe-Ito warm colours, one per class.
WARM = ((230, 159, 0), (213, 94, 0), (240, 228, 66), (204, 121, 167), (255, 80, 80))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], grid: int = 4) -> np.ndarray:
    """A smooth random field of roughly unit amplitude on ``shape``."""
    coarse = rng.standard_normal((grid, grid)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _blob(mask: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """One connected blob deep inside ``mask`` (whose border rows/cols must be 0)."""
    depth = ndimage.distance_transform_edt(mask)
    r = float(depth.max())
    if r < MIN_BLOB_DEPTH:
        # too thin for a blob that keeps off the boundary: its deepest pixel,
        # the one nearest the centroid
        ys, xs = np.nonzero(depth == r)
        cy, cx = np.argwhere(mask).mean(axis=0)
        i = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
        out = np.zeros_like(mask)
        out[ys[i], xs[i]] = True
        return out
    # the blob reaches a fraction ``fraction`` of the way from the object's
    # deepest point to its boundary: keep pixels deeper than (1 - fraction) * r,
    # with a smooth random wobble, never shallower than MIN_BLOB_DEPTH and
    # always including everything within 1 px of the maximal depth
    lo, hi = MIN_BLOB_DEPTH, max(MIN_BLOB_DEPTH, r - 1.0)
    thr = (1.0 - fraction) * r + 0.15 * r * fraction * _smooth_noise(rng, mask.shape)
    thr = np.clip(thr, lo, hi)
    blob = depth >= thr
    lab, _ = ndimage.label(blob, structure=_EIGHT)
    deepest = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return lab == lab[deepest]


def detection_blobs(instances: np.ndarray, classes: Mapping[int, int] | None = None, *,
                    rng: np.random.Generator | int | None = None,
                    blob_fraction: tuple[float, float] = (0.3, 0.6)) -> np.ndarray:
    """One blob per object, deep inside it, valued by the object's class.

    Each blob is the set of the object's pixels deeper than ``(1 - f)`` times
    the object's inradius (``f`` drawn uniformly from ``blob_fraction``, with a
    smooth random wobble), so its "radius" is about ``f`` times the object's.
    Blob pixels are at least :data:`MIN_BLOB_DEPTH` px deep (they never touch
    the object's boundary or the image edge); an object too thin for that gets
    its single deepest pixel.
    """
    inst = check_instances(instances)
    rng = np.random.default_rng(rng)
    seq, _, inverse = relabel_sequential(inst)
    n = int(seq.max())
    ids = np.asarray(inverse[1:n + 1]) if n else np.zeros(0, dtype=np.int64)
    values = object_classes(ids, classes)
    out = np.zeros(inst.shape, dtype=smallest_uint(int(values.max()) if n else 1))
    h, w = inst.shape
    for idx, sl in enumerate(ndimage.find_objects(seq), start=1):
        if sl is None:
            continue
        # one pixel of context on each side, padded with 0 at the image edge
        y0, y1 = max(sl[0].start - 1, 0), min(sl[0].stop + 1, h)
        x0, x1 = max(sl[1].start - 1, 0), min(sl[1].stop + 1, w)
        mask = np.pad(seq[y0:y1, x0:x1] == idx, 1)
        f = float(rng.uniform(*blob_fraction))
        blob = _blob(mask, rng, f)[1:-1, 1:-1]
        out[y0:y1, x0:x1][blob] = values[idx - 1]
    return out


class Detection(Regime):
    name = "detection"
    title = "inner blobs (detection)"
    description = "a quick blob well inside each object, valued by class (1..K)"
    inputs = (LabelInput(
        key="detection", title="Blobs", suffix="blobs",
        values="class id (1..K) in a blob well inside each object",
        tooltip="Detection: a quick blob well inside each object, painted with the object's class (1..K).",
        palette=WARM, brush_size=6, opacity=0.9, shortcut="Alt-1", required=True, summary=count_text,
        claims_objects=True),)
    features = PLAIN
    role = SEEDS
    colour = (230, 159, 0)
    probability_colormap = "yellow"

    def simulate(self, instances, classes=None, rng=None, *, blob_fraction: tuple[float, float] = (0.3, 0.6)):
        return {"detection": detection_blobs(instances, classes, rng=rng, blob_fraction=blob_fraction)}

    def cost(self, labels, instances=None):
        blobs = labels.get("detection")
        n = 0 if blobs is None else int(blob_components(np.asarray(blobs))[0].max(initial=0))
        px = 0 if blobs is None else int(np.count_nonzero(blobs))
        return {"painted_pixels": px, "strokes": n, "blob_pixels": px, "blobs": n}


REGIME = Detection()
