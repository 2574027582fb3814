"""Machine-made points and foreground masks (LACSS's premise: labels the machine makes from the image).

* **Points**: Laplacian-of-Gaussian blob detection (``skimage.feature.blob_log``)
  on one channel (e.g. a nuclear stain), at the scale of the objects: the
  object size is a diameter in pixels, or in micrometres with the image's
  pixel size, or (the default) read from the image (:mod:`.autolabel_reading`:
  the scale and sign of the strongest normalised LoG response, corrected by
  the median size of the mask's objects). One point per
  blob, class 1. A point outside the mask first grows the mask there by a
  local threshold (a dim object, :mod:`.autolabel_mask`); the points still
  outside it are dropped. Each object of the mask (its parts between necks)
  keeps one point, its most confident; when the objects are round (read from
  the mask), a large elongated part of the mask cut between the points takes
  two (a touching pair seen as one blob). When the objects tile the image (an
  EM section's cells between thin membranes, :mod:`.autolabel_tiling`), each
  piece of the mask is one object and takes one point instead, at its deepest
  pixel.
* **Polarity**: bright or dark objects, read from the image by default (the
  sign of that response), or given.
* **Denoising**: on a noisy image (the noise estimate above
  ``autolabel_stats.NOISY``) both channels are smoothed first.
* **Foreground mask**: a threshold of one channel (e.g. a cell-body or
  membrane stain) by Otsu, Li or triangle chosen from the histogram (the
  default, ``auto``), or the user's choice, or a fixed value in the channel's
  own intensity units, after a Gaussian smoothing, with objects and holes
  smaller than ``min_area`` removed.
* **Confidence**: per point, its blob response over the median response of
  the points (capped at 1); per mask piece, its contrast to the threshold over
  the median foreground's (capped at 1), halved when no point lies in it.
  Points and pieces under ``min_confidence`` are *doubtful*:
  :meth:`MachineLabels.trusted` is the region to train on without them (a
  region of interest, so the loss weighs them 0).

Both are drafts for a person to review (the napari panel writes them into
the Points and mask layers, never over what was painted) or training labels
as they are (``lazylabels autolabel``). :func:`classical_instances` is the
classical pipeline they come from: the mask cut between the points by a
seeded watershed of its distance transform, the baseline a network trained on
these labels must beat.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from ..errors import AnnotationError, SettingsError
from .autolabel_checks import concerns as _concerns
from .autolabel_config import (AUTO, FIXED, LI, MICROMETERS, OTSU, PIXELS, SIZE_UNITS, THRESHOLDS,  # noqa: F401
                               TRIANGLE, AutolabelConfig)
from .autolabel_halo import MIN_PIECES as HALO_MIN_PIECES, halo_reading, without_lines
from .autolabel_mask import (cut_between_points, disc_diameter, grown_to_points, objects_round, one_per_basin,
                             region_confidence, split_pairs, without_small)
from .autolabel_reading import SIZE_CORRECTION, ImageReading, read_image, sized_by_mask  # noqa: F401
from .autolabel_scale import scaled, texture_of
from .autolabel_stats import THRESHOLD_FUNCTIONS, choose_threshold
from .autolabel_tiling import OFF, ON, decide as tiling_applies, one_per_piece
from .points import empty_points, point_disks, point_pixels

def channel_of(image: np.ndarray, channel: int | None) -> np.ndarray:
    """One channel of a YX or YXC image as float64 (``None``: the mean of the channels).

    Raises:
        SettingsError: a channel the image does not have.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        if channel not in (None, 0):
            raise SettingsError(f"channel {channel} asked for, but the image has 1 channel (0)")
        return image.astype(np.float64)
    n = image.shape[-1]
    if channel is None:
        return image.astype(np.float64).mean(axis=-1)
    if not (isinstance(channel, int) and 0 <= channel < n):
        raise SettingsError(f"channel {channel!r} asked for, but the image has {n} channels (0..{n - 1})")
    return image[..., channel].astype(np.float64)


def _denoised(channel: np.ndarray, reading: ImageReading) -> np.ndarray:
    img = np.asarray(channel, np.float64)
    return ndi.gaussian_filter(img, reading.denoise) if reading.denoise > 0 else img


def _detected(channel: np.ndarray, reading: ImageReading) -> np.ndarray:
    """What the objects show in, 0..1 and bright: the (denoised) intensity, inverted for dark objects, or
    its local contrast (:func:`.autolabel_scale.texture_of`) for objects told apart by their texture."""
    img = _denoised(channel, reading)
    return texture_of(img) if reading.texture else scaled(img, reading.dark)


def _blobs(channel: np.ndarray, config: AutolabelConfig, reading: ImageReading) -> tuple[np.ndarray, np.ndarray]:
    """LoG blobs at the objects' scale: (N, 3) y, x, class 1, and each one's confidence (its response
    over the median response, capped at 1)."""
    from skimage.feature import blob_log
    sigma = reading.diameter / (2.0 * math.sqrt(2.0))
    img = _detected(channel, reading)
    blobs = blob_log(img, min_sigma=max(0.5, 0.7 * sigma), max_sigma=max(0.5, 1.4 * sigma), num_sigma=5,
                     threshold=float(config.detection_threshold), overlap=0.5, exclude_border=False)
    if not len(blobs):
        return empty_points(), np.zeros(0)
    pix = np.floor(blobs[:, :2] + 0.5).astype(int)
    response = np.array([-s * s * ndi.gaussian_laplace(img, s)[y, x] for s in np.unique(blobs[:, 2])
                         for y, x in pix[blobs[:, 2] == s]])
    order = np.concatenate([np.nonzero(blobs[:, 2] == s)[0] for s in np.unique(blobs[:, 2])])
    strength = np.empty(len(blobs))
    strength[order] = response
    keep = _spaced(blobs[:, :2], strength, reading.diameter / 2.0)
    blobs, strength = blobs[keep], strength[keep]
    median = float(np.median(strength))
    confidence = np.clip(strength / median, 0.0, 1.0) if median > 0 else np.ones(len(blobs))
    return np.column_stack([blobs[:, 0], blobs[:, 1], np.ones(len(blobs))]).astype(np.float64), confidence


def _spaced(yx: np.ndarray, strength: np.ndarray, distance: float) -> np.ndarray:
    """The indices of the blobs kept when no two may be closer than ``distance`` (the stronger first):
    one point per object, not one per speck of its texture."""
    from scipy.spatial import cKDTree
    order = np.argsort(-strength, kind="stable")
    tree, taken = cKDTree(yx), np.zeros(len(yx), bool)
    kept = []
    for i in order:
        if not taken[i]:
            kept.append(i)
            taken[tree.query_ball_point(yx[i], distance)] = True
    return np.sort(np.asarray(kept, int))


def machine_points(channel: np.ndarray, config: AutolabelConfig,
                   micrometers_per_pixel: float | None = None) -> np.ndarray:
    """Laplacian-of-Gaussian blobs of a 2D channel at the objects' scale (as :func:`autolabel` reads it):
    (N, 3) float64 of y, x, class 1."""
    return _blobs(channel, config, _read_and_masked(channel, channel, config, micrometers_per_pixel)[0])[0]


def threshold_of(channel: np.ndarray, config: AutolabelConfig, dark: bool = False) -> tuple[float, str, str]:
    """The threshold of the (smoothed) channel in its own intensity units, the method used and why
    (``auto``: chosen from the histogram of the channel, inverted for dark objects)."""
    if config.threshold == FIXED:
        return float(config.threshold_value), FIXED, "given"
    sign = -1.0 if dark else 1.0
    values = sign * np.asarray(channel, np.float64)
    if float(values.max()) <= float(values.min()):
        return float(sign * values.max()), config.threshold, "a flat image"
    method, why = choose_threshold(values) if config.threshold == AUTO else (config.threshold, "chosen")
    from skimage import filters
    return sign * float(getattr(filters, THRESHOLD_FUNCTIONS[method])(values)), method, why


def machine_mask(channel: np.ndarray, config: AutolabelConfig,
                 micrometers_per_pixel: float | None = None) -> np.ndarray:
    """The foreground mask of a 2D channel (uint8, 1 on objects): smoothing, threshold, small pieces
    and holes removed."""
    return _read_and_masked(channel, channel, config, micrometers_per_pixel)[1][0]


def _read_and_masked(pts_img: np.ndarray, mask_img: np.ndarray, config: AutolabelConfig,
                     micrometers_per_pixel: float | None = None, foreground: np.ndarray | None = None,
                     source: str | None = None) -> tuple[ImageReading, tuple]:
    """The reading of the points channel, its size corrected by the mask's objects (:func:`sized_by_mask`),
    and the mask at that size (:func:`_foreground`'s five) or the given ``foreground``."""
    reading = read_image(pts_img, config, micrometers_per_pixel)
    if foreground is not None:
        mask = (np.asarray(foreground) > 0).astype(np.uint8)
        if mask.shape != pts_img.shape:
            raise AnnotationError(f"the given foreground has shape {mask.shape}, the image {pts_img.shape}",
                                  source=source)
        return sized_by_mask(reading, mask, config), (mask, 0.5, "given", "", mask.astype(np.float64))
    made = _foreground(mask_img, config, reading)
    sized = sized_by_mask(reading, made[0], config)
    return (reading, made) if sized is reading else (sized, _foreground(mask_img, config, sized))


def _foreground(channel: np.ndarray, config: AutolabelConfig,
                reading: ImageReading) -> tuple[np.ndarray, float, str, str, np.ndarray]:
    """The mask, its threshold, method and why, and the smoothed channel it was cut from (bright objects
    in it unless ``reading.dark`` and not ``reading.texture``)."""
    if reading.texture:       # local contrast, smoothed over a quarter of the object's radius
        img = ndi.gaussian_filter(texture_of(_denoised(channel, reading)), max(config.smoothing, reading.diameter / 8))
        dark = False
    else:
        img = _denoised(channel, reading)
        img = ndi.gaussian_filter(img, config.smoothing) if config.smoothing > 0 else img
        dark = reading.dark
    t, method, why = threshold_of(img, config, dark)
    mask = img < t if dark else img > t
    area = config.area_px(reading.diameter)
    if area > 1:
        mask = without_small(mask, area)
        mask = ~without_small(~mask, area)      # holes: small pieces of the background
    if reading.texture:       # a textured object's smooth inside is a hole in its contrast
        mask = ndi.binary_fill_holes(mask)
    return mask.astype(np.uint8), t, method, why, img


@dataclass
class MachineLabels:
    """What :func:`autolabel` made: the points, the mask, and how (threshold, method, the image
    reading), with a confidence per point and per mask piece (``pieces``: the pieces' map)."""

    points: np.ndarray
    foreground: np.ndarray
    threshold: float
    method: str = OTSU
    why: str = ""
    reading: ImageReading | None = None
    point_confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pieces: np.ndarray | None = None
    piece_confidence: np.ndarray = field(default_factory=lambda: np.ones(1))
    min_confidence: float = 0.5

    def trusted(self) -> np.ndarray:
        """The region to train on (bool): everywhere but the doubtful mask pieces (grown by 2 px) and a
        disk of the object radius around each doubtful point."""
        doubt = np.zeros(self.foreground.shape, bool)
        if self.pieces is not None:
            doubt |= (self.piece_confidence < self.min_confidence)[self.pieces] & (self.pieces > 0)
            doubt = ndi.binary_dilation(doubt, iterations=2) if doubt.any() else doubt
        weak = self.points[self.point_confidence < self.min_confidence] if len(self.point_confidence) \
            else empty_points()
        if len(weak) and self.reading is not None:
            doubt |= point_disks(weak, doubt.shape, max(1, int(round(self.reading.diameter / 2)))) > 0
        return ~doubt

    def doubtful(self) -> tuple[int, int]:
        """How many points and mask pieces are doubtful."""
        return (int(np.sum(self.point_confidence < self.min_confidence)),
                int(np.sum(self.piece_confidence[1:] < self.min_confidence)))

    def concerns(self) -> list[str]:
        """What looks wrong with these labels, one plain sentence each (:mod:`.autolabel_checks`): a mask
        over almost the whole image, or a single point for the object size read."""
        return _concerns(self.foreground, len(self.points), None if self.reading is None else self.reading.diameter)

    def describe(self) -> str:
        cover = 100.0 * float(np.count_nonzero(self.foreground)) / max(self.foreground.size, 1)
        pts, pieces = self.doubtful()
        how = "given" if self.method == "given" else \
            f"{self.method} threshold {self.threshold:.4g}{', ' + self.why if self.why else ''}"
        n = len(self.points)
        text = f"{n} point{'' if n == 1 else 's'}, foreground {cover:.1f} % of the image ({how})"
        if self.reading is not None:
            text += f"; {self.reading.describe()}"
        return text + (f"; doubtful (left out of training): {pts} points, {pieces} mask pieces"
                       if pts or pieces else "")


def autolabel(image: np.ndarray, config: AutolabelConfig | None = None, *, points_channel: int | None = None,
              mask_channel: int | None = None, micrometers_per_pixel: float | None = None,
              source: str | None = None, foreground: np.ndarray | None = None) -> MachineLabels:
    """Points from one channel, the foreground mask from another (the same by default), or the mask
    ``foreground`` as given (e.g. a model's foreground: method ``given``, each piece confident).

    Raises:
        SettingsError: a channel the image lacks; a size in micrometres without a pixel size.
        AnnotationError: no foreground at all, or not a single blob (one line, naming ``source``).
    """
    config = config or AutolabelConfig()
    pts_img = channel_of(image, points_channel)
    mask_img = pts_img if mask_channel == points_channel else channel_of(image, mask_channel)
    reading, (mask, t, method, why, smoothed) = _read_and_masked(pts_img, mask_img, config, micrometers_per_pixel,
                                                                 foreground, source)
    if not mask.any():
        raise AnnotationError(f"the {method} threshold ({t:.4g}) leaves no foreground: try another "
                              f"threshold method or value, or --polarity", source=source)
    grown = None
    if tiling_applies(config.tiling, mask, reading.diameter):
        reading = dataclasses.replace(reading, tiled=True)
        points = one_per_piece(mask)
        confidence = np.ones(len(points))
    else:
        points, confidence, mask, grown, split = _points_in(pts_img, config, reading, mask, smoothed,
                                                            foreground is None)
        reading = dataclasses.replace(reading, pairs_split=split, pairs_set=split and config.split_pairs == ON)
    if not len(points):
        raise AnnotationError(f"no blob of diameter {reading.diameter:.3g} px found"
                              f"{' inside the mask' if config.points_in_mask else ''}: lower "
                              f"--detection-threshold or check --object-size", source=source)
    pieces, piece_conf = region_confidence(mask, smoothed, t, points, grown, confidence)
    if foreground is not None:
        piece_conf = np.ones_like(piece_conf)
    labels = MachineLabels(points, mask, t, method, why, reading, confidence, pieces, piece_conf,
                           float(config.min_confidence))
    if _may_read_again(config) and foreground is None and labels.concerns():
        again = _read_again(pts_img, config, reading)
        if again is not None and not again.concerns():
            return again
    return labels


def _may_read_again(config: AutolabelConfig) -> bool:
    """The second reading is on, and it overrides nothing the user set: the threshold, polarity and size
    are all read from the image."""
    return config.second_reading == AUTO and config.reads_everything


def _read_again(channel: np.ndarray, config: AutolabelConfig, first: ImageReading) -> MachineLabels | None:
    """The labels of the second reading (:mod:`.autolabel_halo`: dark objects in bright halos, cut apart
    at the lines between them, one point per piece), or None when it finds fewer than two pieces."""
    found = halo_reading(channel, config.smoothing)
    if len(found.points) < HALO_MIN_PIECES:
        return None
    mask = without_lines(found.pieces).astype(np.uint8)
    reading = dataclasses.replace(first, diameter=disc_diameter(found.pieces), dark=True, texture=False,
                                  denoise=0.0, from_mask=False, tiled=False, halo=True)
    confidence = np.ones(len(found.points))
    pieces, piece_conf = region_confidence(mask, found.smoothed, found.threshold, found.points, None, confidence)
    return MachineLabels(found.points, mask, found.threshold, found.method, "the objects' side of the histogram",
                         reading, confidence, pieces, piece_conf, float(config.min_confidence))


def _points_in(pts_img: np.ndarray, config: AutolabelConfig, reading: ImageReading, mask: np.ndarray,
               smoothed: np.ndarray, may_grow: bool
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """The blobs (:func:`_blobs`) kept inside the mask, grown first to the points outside it when
    ``may_grow`` (:func:`.autolabel_mask.grown_to_points`), one per object of the mask, two for a pair
    (:func:`_pairs_split`): the points, their confidence, the mask, what was grown of it (None: nothing tried)
    and whether the pairs were split."""
    points, confidence = _blobs(pts_img, config, reading)
    grown = None
    if config.points_in_mask and len(points):
        if config.grow_mask and may_grow:
            before = mask > 0
            mask, keep = grown_to_points(before, smoothed, reading.dark and not reading.texture, points,
                                         reading.diameter, config.area_px(reading.diameter),
                                         confidence >= config.min_confidence)
            grown, mask = mask & ~before, mask.astype(np.uint8)
        else:
            pix = point_pixels(points)
            keep = mask[pix[:, 0], pix[:, 1]] > 0
        points, confidence = points[keep], confidence[keep]
    if config.one_per_object and len(points):
        keep = one_per_basin(points, confidence, mask)
        points, confidence = points[keep], confidence[keep]
    points, confidence, split = _pairs_split(config, points, confidence, mask)
    return points, confidence, mask, grown, split


def _pairs_split(config: AutolabelConfig, points: np.ndarray, confidence: np.ndarray, mask: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, bool]:
    """The points and their confidence with each large elongated part of the mask given two points
    (:func:`.autolabel_mask.split_pairs`) when ``config.split_pairs`` is on, or auto and the objects are
    round (:func:`.autolabel_mask.objects_round`; both read the one cut of the mask between the points),
    and whether they were split."""
    if not len(points) or config.split_pairs == OFF:
        return points, confidence, False
    cut = cut_between_points(points, mask)
    if config.split_pairs == AUTO and not objects_round(cut):
        return points, confidence, False
    return (*split_pairs(points, confidence, mask, cut=cut), True)


def classical_instances(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The classical pipeline the machine labels come from: the mask cut between the points by a
    seeded watershed of its distance transform; mask components without a point are objects of their
    own (int32 instance map)."""
    from skimage.segmentation import relabel_sequential
    fg = np.asarray(mask) > 0
    out = cut_between_points(points, fg)
    rest = fg & (out == 0)
    if rest.any():
        extra, _ = ndi.label(rest)
        out[rest] = extra[rest] + out.max()
    return relabel_sequential(out)[0].astype(np.int32)
