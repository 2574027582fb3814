""""Annotate here next": the k boxes, across every image, where one more label would help most.

Each image gets the model's uncertainty (:mod:`.uncertainty`); every box of
``box`` x ``box`` pixels on a grid of half a box is scored by

    score = mean uncertainty + mean heads disagreement + 0.5 * far

where ``far`` is the distance from the box's centre to the nearest painted
pixel of the image (any label), in box sizes, capped at 1 (1 on an image with
no label at all). The boxes are ranked by score over every image, and the
best ones that do not overlap a better one are kept. Each says why
(:attr:`SuggestedBox.reason`): the largest of its three terms, "uncertain",
"heads disagree" or "far from any label".

    boxes = suggest(model, items, k=5, box=128)       # items: LazyAnnotations (image and its labels)

Large images are searched coarse to fine, so that a 2048 px image takes
seconds on a CPU, not a minute: an image of more than ``coarse_above``
pixels (default 1024 x 1024) is first looked at once (one pass, no flip)
subsampled f times (every f-th row and column; f = 2 for 2048 px; a block
mean would smooth away the noise the network is unsure of); every box is scored on
that map (the boxes and the painted pixels shrunk too), and the ``REFINE_PER_BOX * k`` best that do not overlap
are scored again at full resolution with every pass, on a crop of each box
with the network's receptive-field margin around it and the whole image's
normalisation (so the same numbers as a whole-image pass, up to float
rounding). Only those are ranked. What this gives up: a box the shrunk look
misses is never refined (the network sees the objects at 1/f of their size
there, so its uncertainty is rougher); the "far from any label" term is exact
either way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage

from ..errors import SettingsError
from .annotations import LazyAnnotations, channels_of
from .trained_model import LazyLabelsModel
from .inference import default_margin
from .normalize import channel_ranges, to_chw
from .uncertainty import Uncertainty, assess

DEFAULT_K = 5
DEFAULT_BOX = 128
FAR_WEIGHT = 0.5
REASONS = ("uncertain", "heads disagree", "far from any label")
#: Images of more pixels than this are searched coarse to fine (see the module docstring).
COARSE_ABOVE = 1024 * 1024
#: On such an image, the boxes scored again at full resolution, per box asked for.
REFINE_PER_BOX = 2


@dataclass(frozen=True)
class SuggestedBox:
    """One place to annotate next: image ``image`` (its index ``index`` in the set), rows ``y`` to
    ``y + height``, columns ``x`` to ``x + width``; ranked (1 = best) by ``score``, with ``reason``."""

    rank: int
    image: str
    index: int
    y: int
    x: int
    height: int
    width: int
    score: float
    reason: str
    uncertainty: float
    heads_disagreement: float
    far: float

    def to_row(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


#: The CSV columns of ``lazylabels suggest``.
COLUMNS = tuple(SuggestedBox.__dataclass_fields__)


def check_request(model: LazyLabelsModel, items: Sequence[LazyAnnotations], k: int, box: int) -> None:
    """Refuse, before any work, k <= 0, a box under 8 px or larger than an image, and images whose
    channels are not the model's (one line each).

    Raises:
        SettingsError.
    """
    if k <= 0:
        raise SettingsError(f"the number of boxes must be at least 1, got {k}")
    if box < 8:
        raise SettingsError(f"the box size must be at least 8 px, got {box}")
    if not items:
        raise SettingsError("no image to suggest boxes on")
    want = model.network_config.in_channels
    for it in items:
        if channels_of(it.image) != want:
            raise SettingsError(f"{it.name}: the model expects {want} channel(s), the image has "
                                f"{channels_of(it.image)}")
        if box > min(it.shape):
            raise SettingsError(f"{it.name}: a box of {box} px is larger than the image "
                                f"({it.shape[0]} x {it.shape[1]} px)")


def painted(item: LazyAnnotations) -> np.ndarray:
    """Where anything is painted on the image (any label input, non-zero)."""
    out = np.zeros(item.shape, bool)
    for lab in item.labels.values():
        if lab is not None and np.shape(lab) == item.shape:
            out |= np.asarray(lab) != 0
    return out


def _starts(length: int, box: int) -> np.ndarray:
    step = max(1, box // 2)
    starts = list(range(0, length - box + 1, step))
    if starts[-1] != length - box:
        starts.append(length - box)
    return np.asarray(starts)


def _box_means(values: np.ndarray, ys: np.ndarray, xs: np.ndarray, box: int) -> np.ndarray:
    """The mean of ``values`` in every box starting at (ys[i], xs[j]): (len(ys), len(xs)), by an integral image."""
    s = np.pad(np.cumsum(np.cumsum(values.astype(np.float64), 0), 1), ((1, 0), (1, 0)))
    y0, x0 = ys[:, None], xs[None, :]
    return (s[y0 + box, x0 + box] - s[y0, x0 + box] - s[y0 + box, x0] + s[y0, x0]) / (box * box)


def candidates(item: LazyAnnotations, index: int, maps: Uncertainty, box: int, shrink: int = 1) -> list[tuple]:
    """(score, terms, index, name, y, x) of every box of one image; with ``shrink`` > 1 ``maps`` are of
    the image subsampled that many times, and the terms are approximate (the boxes and the painted
    pixels shrunk as well)."""
    ys, xs = _starts(item.shape[0], box), _starts(item.shape[1], box)
    small = max(1, box // shrink)
    sy = np.minimum(ys // shrink, maps.uncertainty.shape[0] - small)
    sx = np.minimum(xs // shrink, maps.uncertainty.shape[1] - small)
    unc = _box_means(maps.uncertainty, sy, sx, small)
    heads = _box_means(maps.heads_disagreement, sy, sx, small)
    labelled = painted(item)
    if shrink > 1:          # a painted pixel anywhere in a block paints the block
        h, w = maps.uncertainty.shape
        labelled = np.pad(labelled, ((0, h * shrink - labelled.shape[0]), (0, w * shrink - labelled.shape[1])))
        labelled = labelled[:h * shrink, :w * shrink].reshape(h, shrink, w, shrink).any(axis=(1, 3))
    if labelled.any():
        dist = ndimage.distance_transform_edt(~labelled) * shrink
        cy = np.minimum((ys + box // 2) // shrink, labelled.shape[0] - 1)
        cx = np.minimum((xs + box // 2) // shrink, labelled.shape[1] - 1)
        far = np.minimum(1.0, dist[cy[:, None], cx[None, :]] / box)
    else:
        far = np.ones_like(unc)
    out = []
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            terms = (float(unc[i, j]), float(heads[i, j]), float(far[i, j]))
            score = terms[0] + terms[1] + FAR_WEIGHT * terms[2]
            out.append((score, terms, index, item.name, int(y), int(x)))
    return out


def far_at(labelled: np.ndarray, y: int, x: int, box: int) -> float:
    """The ``far`` term of the box centred on (y, x): the distance to the nearest painted pixel in box
    sizes, capped at 1 (only painted pixels within a box of the centre can be nearer)."""
    y0, x0 = max(0, y - box), max(0, x - box)
    py, px = np.nonzero(labelled[y0:y + box + 1, x0:x + box + 1])
    if not len(py):
        return 1.0
    return min(1.0, float(np.sqrt(((py + y0 - y) ** 2 + (px + x0 - x) ** 2).min())) / box)


def _overlaps(a: tuple, b: tuple, box: int) -> bool:
    return a[2] == b[2] and abs(a[4] - b[4]) < box and abs(a[5] - b[5]) < box


def _best(all_candidates: list[tuple], k: int, box: int) -> list[tuple]:
    """The ``k`` best candidates that overlap no better one, best first."""
    chosen: list[tuple] = []
    for c in sorted(all_candidates, key=lambda c: (-c[0], c[2], c[4], c[5])):
        if not any(_overlaps(c, d, box) for d in chosen):
            chosen.append(c)
            if len(chosen) == k:
                break
    return chosen


def _shrunk(image: np.ndarray, f: int) -> np.ndarray:
    """Every ``f``-th row and column of a YX or YXC image (a remainder left out): subsampled, not
    averaged, so that texture and noise keep their contrast (a block mean smooths away what the
    network is unsure of: measured on noise, ``tests/test_suggest.py``)."""
    h, w = image.shape[0] // f * f, image.shape[1] // f * f
    return np.ascontiguousarray(image[:h:f, :w:f])


def coarse_to_fine(model: LazyLabelsModel, item: LazyAnnotations, index: int, box: int, n: int, *,
                   shrink: int, passes: int = 2, device: str | torch.device = "cpu") -> list[tuple]:
    """The candidates of one image as :func:`candidates` gives them, but only the ``n`` best that do not
    overlap after a look at the image shrunk ``shrink`` times, each scored again at full resolution
    (see the module docstring)."""
    ranges = channel_ranges(to_chw(item.image), model.normalization)
    rough = assess(model, _shrunk(item.image, shrink), passes=1, device=device, instances=False, ranges=ranges)
    margin, grid = default_margin(model.network), model.network.config.size_multiple
    height, width = item.shape
    labelled = painted(item)
    out = []
    for _, _, _, name, y, x in _best(candidates(item, index, rough, box, shrink), n, box):
        y0, x0 = max(0, (y - margin) // grid * grid), max(0, (x - margin) // grid * grid)
        crop = item.image[y0:min(height, y + box + margin), x0:min(width, x + box + margin)]
        fine = assess(model, crop, passes=passes, device=device, instances=False, ranges=ranges)
        inside = np.s_[y - y0:y - y0 + box, x - x0:x - x0 + box]
        terms = (float(fine.uncertainty[inside].mean()), float(fine.heads_disagreement[inside].mean()),
                 far_at(labelled, y + box // 2, x + box // 2, box))
        out.append((terms[0] + terms[1] + FAR_WEIGHT * terms[2], terms, index, name, y, x))
    return out


def rank(all_candidates: list[tuple], k: int, box: int) -> list[SuggestedBox]:
    """The ``k`` best boxes that overlap no better one, ranked."""
    out = []
    for r, (score, terms, index, name, y, x) in enumerate(_best(all_candidates, k, box), 1):
        weighted = (terms[0], terms[1], FAR_WEIGHT * terms[2])
        out.append(SuggestedBox(r, name, index, y, x, box, box, score, REASONS[int(np.argmax(weighted))], *terms))
    return out


def suggest(model: LazyLabelsModel, items: Sequence[LazyAnnotations], k: int = DEFAULT_K, box: int = DEFAULT_BOX,
            *, device: str | torch.device = "cpu", passes: int = 2,
            progress: Callable[[int, int], None] | None = None,
            coarse_above: int | None = COARSE_ABOVE) -> list[SuggestedBox]:
    """The ``k`` boxes of ``box`` px where labels would help ``model`` most, over every image of ``items``
    (see the module docstring); ``progress(done, total)`` after each image. Images of more than
    ``coarse_above`` pixels are searched coarse to fine (``None``: never).

    Raises:
        SettingsError: bad ``k``, ``box`` or channels (:func:`check_request`), before any work.
    """
    check_request(model, items, k, box)
    found: list[tuple] = []
    for i, it in enumerate(items):
        pixels = it.shape[0] * it.shape[1]
        shrink = math.ceil(math.sqrt(pixels / coarse_above)) if coarse_above and pixels > coarse_above else 1
        if shrink > 1:
            found += coarse_to_fine(model, it, i, box, REFINE_PER_BOX * k, shrink=shrink, passes=passes,
                                    device=device)
        else:
            found += candidates(it, i, assess(model, it.image, passes=passes, device=device, instances=False),
                                box)
        if progress is not None:
            progress(i + 1, len(items))
    return rank(found, k, box)
