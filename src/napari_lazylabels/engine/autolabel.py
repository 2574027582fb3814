"""Machine-made points and foreground masks (LACSS's premise: labels the machine makes from the image).

* **Points**: Laplacian-of-Gaussian blob detection (``skimage.feature.blob_log``)
  on one channel (e.g. a nuclear stain), at the scale of the objects: the
  object size is a diameter in pixels, or in micrometres with the image's
  pixel size. One point per blob, class 1.
* **Foreground mask**: a threshold of one channel (e.g. a cell-body or
  membrane stain) by a method of the user's choice (Otsu, Li, triangle, or a
  fixed value in the channel's own intensity units), after a Gaussian
  smoothing, with objects and holes smaller than ``min_area`` removed.

Both are drafts for a person to review (the napari panel writes them into
the Points and mask layers, never over what was painted) or training labels
as they are (``lazylabels autolabel``). :func:`classical_instances` is the
classical pipeline they come from: the mask cut between the points by a
seeded watershed of its distance transform, the baseline a network trained on
these labels must beat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
from scipy import ndimage as ndi

from ..errors import AnnotationError, SettingsError
from .config import check_number
from .points import empty_points, point_disks, seeded_partition

#: Threshold methods of the foreground mask.
OTSU, LI, TRIANGLE, FIXED = "otsu", "li", "triangle", "fixed"
THRESHOLDS = (OTSU, LI, TRIANGLE, FIXED)
#: Units of the object size.
PIXELS, MICROMETERS = "px", "um"
SIZE_UNITS = (PIXELS, MICROMETERS)

_THRESHOLD_FUNCTIONS = {OTSU: "threshold_otsu", LI: "threshold_li", TRIANGLE: "threshold_triangle"}


def _help(text: str, **more) -> dict:
    return {"help": text, **more}


@dataclass(frozen=True)
class AutolabelConfig:
    """Settings of the machine-made labels.

    Attributes:
        object_size: the typical object diameter, in ``size_unit``: sets the
            blob detector's scales (sigma = diameter / (2 sqrt 2), from 0.7x to
            1.4x of it) and the default ``min_area``.
        size_unit: ``px`` or ``um`` (micrometres: needs the image's pixel size).
        detection_threshold: the smallest scale-normalised LoG response of a
            blob, on the channel scaled to 0..1 (its 1st and 99.8th
            percentiles); lower it to find dimmer objects.
        threshold: the mask's threshold method: ``otsu``, ``li``,
            ``triangle`` or ``fixed`` (then ``threshold_value``).
        threshold_value: the fixed threshold, in the mask channel's intensity units.
        smoothing: sigma (px) of the Gaussian applied before thresholding; 0: none.
        min_area: mask components and holes smaller than this (px) are
            removed or filled; None: a quarter of the area of an object of
            ``object_size``.
        dark_objects: the objects are darker than the background (H&E
            nuclei, some phase contrast): both the detector and the threshold
            work on the inverted channel.
        points_in_mask: drop the points that fall outside the mask.
    """

    object_size: float = field(default=12.0, metadata=_help(
        "typical object diameter (in --size-unit): the blob detector's scale", metavar="D"))
    size_unit: str = field(default=PIXELS, metadata=_help(
        "unit of --object-size: px, or um (micrometres, with the image's pixel size)", choices=SIZE_UNITS,
        metavar="|".join(SIZE_UNITS)))
    detection_threshold: float = field(default=0.05, metadata=_help(
        "smallest blob response (LoG, on the channel scaled to 0..1); lower: dimmer objects found",
        metavar="T"))
    threshold: str = field(default=OTSU, metadata=_help(
        "threshold method of the foreground mask", choices=THRESHOLDS, metavar="|".join(THRESHOLDS)))
    threshold_value: float | None = field(default=None, metadata=_help(
        "the threshold of --threshold fixed, in the mask channel's intensity units", metavar="V"))
    smoothing: float = field(default=1.0, metadata=_help(
        "Gaussian sigma (px) applied before thresholding (0: none)", metavar="S"))
    min_area: int | None = field(default=None, metadata=_help(
        "mask pieces and holes smaller than this (px) are removed (default: a quarter of an object's area)",
        metavar="PX"))
    dark_objects: bool = field(default=False, metadata=_help(
        "objects are darker than the background (H&E nuclei): detect and threshold the inverted channel"))
    points_in_mask: bool = field(default=True, metadata=_help("drop the points that fall outside the mask"))

    def __post_init__(self):
        check_number("object size", self.object_size, low=0, low_open=True)
        if self.size_unit not in SIZE_UNITS:
            raise SettingsError(f"size unit must be one of {', '.join(SIZE_UNITS)}, got {self.size_unit!r}")
        if self.threshold not in THRESHOLDS:
            raise SettingsError(f"threshold must be one of {', '.join(THRESHOLDS)}, got {self.threshold!r}")
        check_number("detection threshold", self.detection_threshold, low=0, low_open=True)
        check_number("smoothing", self.smoothing, low=0, high=100)
        if self.threshold == FIXED and self.threshold_value is None:
            raise SettingsError("threshold 'fixed' needs a threshold value (--threshold-value)")
        if self.threshold_value is not None:
            check_number("threshold value", self.threshold_value)
        if self.min_area is not None:
            check_number("min area", self.min_area, low=0, integer=True)
        for f in fields(self):
            if f.name in ("dark_objects", "points_in_mask") and not isinstance(getattr(self, f.name), bool):
                raise SettingsError(f"{f.name.replace('_', ' ')} must be true or false")

    def diameter_px(self, micrometers_per_pixel: float | None = None) -> float:
        """The object diameter in pixels.

        Raises:
            SettingsError: a size in micrometres for an image without a pixel size.
        """
        if self.size_unit == PIXELS:
            return float(self.object_size)
        if micrometers_per_pixel is None or not micrometers_per_pixel > 0:
            raise SettingsError("an object size in micrometres needs the image's pixel size (the image has "
                                "none: give it, or the size in px)")
        return float(self.object_size) / float(micrometers_per_pixel)

    def area_px(self, micrometers_per_pixel: float | None = None) -> int:
        if self.min_area is not None:
            return int(self.min_area)
        d = self.diameter_px(micrometers_per_pixel)
        return max(1, int(round(math.pi * d * d / 16.0)))


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


def _scaled(channel: np.ndarray, dark: bool) -> np.ndarray:
    lo, hi = np.percentile(channel, [1.0, 99.8])
    out = (channel - lo) / (hi - lo if hi > lo else 1.0)
    return 1.0 - out if dark else out


def machine_points(channel: np.ndarray, config: AutolabelConfig,
                   micrometers_per_pixel: float | None = None) -> np.ndarray:
    """Laplacian-of-Gaussian blobs of a 2D channel at the objects' scale: (N, 3) float64 of y, x, class 1."""
    from skimage.feature import blob_log
    sigma = config.diameter_px(micrometers_per_pixel) / (2.0 * math.sqrt(2.0))
    img = _scaled(np.asarray(channel, np.float64), config.dark_objects)
    blobs = blob_log(img, min_sigma=max(0.5, 0.7 * sigma), max_sigma=max(0.5, 1.4 * sigma), num_sigma=5,
                     threshold=float(config.detection_threshold), overlap=0.5, exclude_border=False)
    if not len(blobs):
        return empty_points()
    return np.column_stack([blobs[:, 0], blobs[:, 1], np.ones(len(blobs))]).astype(np.float64)


def threshold_of(channel: np.ndarray, config: AutolabelConfig) -> float:
    """The threshold of the (smoothed) channel, in its own intensity units."""
    if config.threshold == FIXED:
        return float(config.threshold_value)
    values = np.asarray(channel, np.float64)
    if float(values.max()) <= float(values.min()):
        return float(values.max())
    from skimage import filters
    return float(getattr(filters, _THRESHOLD_FUNCTIONS[config.threshold])(values))


def machine_mask(channel: np.ndarray, config: AutolabelConfig,
                 micrometers_per_pixel: float | None = None) -> np.ndarray:
    """The foreground mask of a 2D channel (uint8, 1 on objects): smoothing, threshold, small pieces
    and holes removed."""
    return _foreground(channel, config, micrometers_per_pixel)[0]


def _foreground(channel: np.ndarray, config: AutolabelConfig,
                micrometers_per_pixel: float | None) -> tuple[np.ndarray, float]:
    img = np.asarray(channel, np.float64)
    if config.smoothing > 0:
        img = ndi.gaussian_filter(img, config.smoothing)
    t = threshold_of(img, config)
    mask = img < t if config.dark_objects else img > t
    area = config.area_px(micrometers_per_pixel)
    if area > 1:
        mask = _without_small(mask, area)
        mask = ~_without_small(~mask, area)      # holes: small pieces of the background
    return mask.astype(np.uint8), t


def _without_small(mask: np.ndarray, area: int) -> np.ndarray:
    """``mask`` without its 8-connected pieces of fewer than ``area`` pixels."""
    lab, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return mask
    keep = np.bincount(lab.ravel()) >= area
    keep[0] = False
    return keep[lab]


@dataclass
class MachineLabels:
    """What :func:`autolabel` made: the points, the mask, and the threshold used."""

    points: np.ndarray
    foreground: np.ndarray
    threshold: float

    def describe(self) -> str:
        cover = 100.0 * float(np.count_nonzero(self.foreground)) / max(self.foreground.size, 1)
        return f"{len(self.points)} points, foreground {cover:.1f} % of the image (threshold {self.threshold:.4g})"


def autolabel(image: np.ndarray, config: AutolabelConfig | None = None, *, points_channel: int | None = None,
              mask_channel: int | None = None, micrometers_per_pixel: float | None = None,
              source: str | None = None) -> MachineLabels:
    """Points from one channel, the foreground mask from another (the same by default).

    Raises:
        SettingsError: a channel the image lacks; a size in micrometres without a pixel size.
        AnnotationError: no foreground at all, or not a single blob (one line, naming ``source``).
    """
    config = config or AutolabelConfig()
    pts_img = channel_of(image, points_channel)
    mask, t = _foreground(channel_of(image, mask_channel), config, micrometers_per_pixel)
    if not mask.any():
        raise AnnotationError(f"the {config.threshold} threshold ({t:.4g}) leaves no foreground: try another "
                              f"threshold method or value, or --dark-objects", source=source)
    points = machine_points(pts_img, config, micrometers_per_pixel)
    if config.points_in_mask and len(points):
        pix = np.floor(points[:, :2] + 0.5).astype(int)
        points = points[mask[pix[:, 0], pix[:, 1]] > 0]
    if not len(points):
        raise AnnotationError(f"no blob of diameter {config.diameter_px(micrometers_per_pixel):.3g} px found"
                              f"{' inside the mask' if config.points_in_mask else ''}: lower "
                              f"--detection-threshold or check --object-size", source=source)
    return MachineLabels(points, mask, t)


def classical_instances(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The classical pipeline the machine labels come from: the mask cut between the points by a
    seeded watershed of its distance transform; mask components without a point are objects of their
    own (int32 instance map)."""
    from skimage.segmentation import relabel_sequential
    fg = np.asarray(mask) > 0
    seeds = point_disks(points, fg.shape, 1.0, within=fg)
    out = seeded_partition(fg, seeds)
    rest = fg & (out == 0)
    if rest.any():
        extra, _ = ndi.label(rest)
        out[rest] = extra[rest] + out.max()
    return relabel_sequential(out)[0].astype(np.int32)
