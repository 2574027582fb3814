"""The settings of the machine-made labels (:class:`AutolabelConfig`), checked once where they are made;
the command line's options are derived from its fields."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from ..errors import SettingsError
from .autolabel_stats import AUTO, POLARITIES
from .autolabel_tiling import OFF, ON, TILING
from .config import check_number

#: Threshold methods of the foreground mask.
OTSU, LI, TRIANGLE, FIXED = "otsu", "li", "triangle", "fixed"
THRESHOLDS = (AUTO, OTSU, LI, TRIANGLE, FIXED)
#: Units of the object size.
PIXELS, MICROMETERS = "px", "um"
SIZE_UNITS = (PIXELS, MICROMETERS)
#: Whether a large elongated part of the mask takes two points: when the objects are round (read from the
#: mask), always, or never.
SPLIT_PAIRS = (AUTO, ON, OFF)
#: The second reading of labels that look wrong (:mod:`.autolabel_halo`): taken when it looks right, or never.
SECOND_READING = (AUTO, OFF)


def _help(text: str, **more) -> dict:
    return {"help": text, **more}


@dataclass(frozen=True)
class AutolabelConfig:
    """Settings of the machine-made labels.

    Attributes:
        object_size: the typical object diameter, in ``size_unit``: sets the
            blob detector's scales (sigma = diameter / (2 sqrt 2), from 0.7x to
            1.4x of it) and the default ``min_area``; None: read from the image.
        size_unit: ``px`` or ``um`` (micrometres: needs the image's pixel size).
        detection_threshold: the smallest scale-normalised LoG response of a
            blob, on the channel scaled to 0..1 (its 1st and 99.8th
            percentiles); lower it to find dimmer objects.
        threshold: the mask's threshold method: ``auto`` (one of the next
            three, chosen from the histogram), ``otsu``, ``li``, ``triangle``
            or ``fixed`` (then ``threshold_value``).
        threshold_value: the fixed threshold, in the mask channel's intensity units.
        smoothing: sigma (px) of the Gaussian applied before thresholding; 0: none.
        min_area: mask components and holes smaller than this (px) are
            removed or filled; None: a quarter of the area of an object of
            ``object_size``.
        polarity: ``auto`` (read from the image), ``bright`` or ``dark``.
        dark_objects: the objects are darker than the background (H&E
            nuclei, some phase contrast): both the detector and the threshold
            work on the inverted channel (the same as polarity ``dark``).
        denoise: sigma (px) of a Gaussian applied to both channels first;
            None: a sixth of the object diameter on noisy images, none on
            others; 0: none.
        points_in_mask: drop the points that fall outside the mask.
        grow_mask: first grow the mask at each point outside it by a local threshold
            (:func:`.autolabel_mask.grown_to_points`: a dim object's piece), so
            only the points whose object cannot be found so are dropped.
        one_per_object: keep the most confident point of each object of the mask
            (:func:`.autolabel_mask.one_per_basin`: its parts between necks),
            so the texture inside a large object does not make it several.
        split_pairs: give a large elongated part of the mask (cut between the points) two points
            instead of one (:func:`.autolabel_mask.split_pairs`): touching round nuclei that the
            detector sees as one blob. ``auto``: only when the objects are round
            (:func:`.autolabel_mask.objects_round`: the parts mostly convex, the median part not
            elongated), since it splits irregular nuclei too (on H&E, always on, it cost 0.28
            AP50: docs/benchmarks.md); ``on``: always; ``off``: never.
        size_from_mask: when the object size is read from the image, correct it by
            the median diameter of the mask's objects
            (:func:`.autolabel_mask.mask_diameter`; within a factor
            :data:`SIZE_CORRECTION` of the blob read) and make the labels at that size.
        min_confidence: points and mask pieces of lower confidence are left
            out of the region trained on (0: none is).
        tiling: ``auto`` (read from the mask: :func:`.autolabel_tiling.tiles_image`),
            ``on`` or ``off``: whether the objects tile the image (an EM
            section's cells, the background a thin network of membranes), so
            that each piece of the mask is one object and takes one point
            (:func:`.autolabel_tiling.one_per_piece`) instead of the blobs.
        second_reading: ``auto``: labels that look wrong (:mod:`.autolabel_checks`)
            are made again as dark objects in bright halos, cut apart at the
            bright lines between them (:mod:`.autolabel_halo`), and the second
            reading is taken when it looks right (only when the threshold,
            polarity and size are all read from the image: it sets them anew);
            ``off``: never.
    """

    object_size: float | None = field(default=None, metadata=_help(
        "typical object diameter (in --size-unit): the blob detector's scale (default: read from the image)",
        metavar="D"))
    size_unit: str = field(default=PIXELS, metadata=_help(
        "unit of --object-size: px, or um (micrometres, with the image's pixel size)", choices=SIZE_UNITS,
        metavar="|".join(SIZE_UNITS)))
    detection_threshold: float = field(default=0.05, metadata=_help(
        "smallest blob response (LoG, on the channel scaled to 0..1); lower: dimmer objects found",
        metavar="T"))
    threshold: str = field(default=AUTO, metadata=_help(
        "threshold method of the foreground mask (auto: Otsu, Li or triangle, chosen from the histogram)",
        choices=THRESHOLDS, metavar="|".join(THRESHOLDS)))
    threshold_value: float | None = field(default=None, metadata=_help(
        "the threshold of --threshold fixed, in the mask channel's intensity units", metavar="V"))
    smoothing: float = field(default=1.0, metadata=_help(
        "Gaussian sigma (px) applied before thresholding (0: none)", metavar="S"))
    min_area: int | None = field(default=None, metadata=_help(
        "mask pieces and holes smaller than this (px) are removed (default: a quarter of an object's area)",
        metavar="PX"))
    polarity: str = field(default="auto", metadata=_help(
        "objects brighter or darker than the background (auto: read from the image)", choices=POLARITIES,
        metavar="|".join(POLARITIES)))
    dark_objects: bool = field(default=False, metadata=_help(
        "objects are darker than the background (H&E nuclei): the same as --polarity dark"))
    denoise: float | None = field(default=None, metadata=_help(
        "Gaussian sigma (px) applied first (default: a sixth of the object size on noisy images; 0: none)",
        metavar="S"))
    points_in_mask: bool = field(default=True, metadata=_help("drop the points that fall outside the mask"))
    grow_mask: bool = field(default=True, metadata=_help(
        "grow the mask at each point outside it by a local threshold (dim objects) before dropping any"))
    one_per_object: bool = field(default=True, metadata=_help(
        "keep one point (the most confident) per object of the mask: its parts between necks"))
    split_pairs: str = field(default=AUTO, metadata=_help(
        "give a large elongated part of the mask (cut between the points) two points: touching round nuclei "
        "seen as one blob (auto: when the objects are round, read from the mask; on; off)",
        choices=SPLIT_PAIRS, metavar="|".join(SPLIT_PAIRS)))
    size_from_mask: bool = field(default=True, metadata=_help(
        "correct the object size read from the image by the median size of the mask's objects"))
    min_confidence: float = field(default=0.5, metadata=_help(
        "points and mask pieces of lower confidence (0..1) are left out of the region trained on", metavar="C"))
    second_reading: str = field(default=AUTO, metadata=_help(
        "when the labels look wrong (a mask over almost the whole image, or a single point): read the image "
        "again as dark objects in bright halos (phase-contrast bacteria), cut apart at the bright lines "
        "between them (auto; only when threshold, polarity and size are all read from the image), or keep "
        "the first reading (off)", choices=SECOND_READING,
        metavar="|".join(SECOND_READING)))
    tiling: str = field(default="auto", metadata=_help(
        "objects that tile the image (EM cells between thin membranes): one point per piece of the mask instead "
        "of the blobs (auto: read from the mask)", choices=TILING, metavar="|".join(TILING)))

    def __post_init__(self):
        if self.object_size is not None:
            check_number("object size", self.object_size, low=0, low_open=True)
        if self.polarity not in POLARITIES:
            raise SettingsError(f"polarity must be one of {', '.join(POLARITIES)}, got {self.polarity!r}")
        if self.denoise is not None:
            check_number("denoise", self.denoise, low=0, high=100)
        check_number("min confidence", self.min_confidence, low=0, high=1)
        if self.second_reading not in SECOND_READING:
            raise SettingsError(f"second reading must be one of {', '.join(SECOND_READING)}, "
                                f"got {self.second_reading!r}")
        if self.split_pairs not in SPLIT_PAIRS:
            raise SettingsError(f"split pairs must be one of {', '.join(SPLIT_PAIRS)}, got {self.split_pairs!r}")
        if self.tiling not in TILING:
            raise SettingsError(f"tiling must be one of {', '.join(TILING)}, got {self.tiling!r}")
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
            if f.type in ("bool", bool) and not isinstance(getattr(self, f.name), bool):
                raise SettingsError(f"{f.name.replace('_', ' ')} must be true or false")

    @property
    def reads_everything(self) -> bool:
        """The threshold, the polarity and the size are all read from the image (none set by the user):
        what the second reading sets anew."""
        return self.threshold == AUTO and self.dark is None and self.object_size is None

    @property
    def dark(self) -> bool | None:
        """True: dark objects, False: bright ones, None: read from the image."""
        return True if self.dark_objects or self.polarity == "dark" else None if self.polarity == "auto" else False

    def diameter_px(self, micrometers_per_pixel: float | None = None) -> float | None:
        """The object diameter in pixels (None: to be read from the image).

        Raises:
            SettingsError: a size in micrometres for an image without a pixel size.
        """
        if self.object_size is None:
            return None
        if self.size_unit == PIXELS:
            return float(self.object_size)
        if micrometers_per_pixel is None or not micrometers_per_pixel > 0:
            raise SettingsError("an object size in micrometres needs the image's pixel size (the image has "
                                "none: give it, or the size in px)")
        return float(self.object_size) / float(micrometers_per_pixel)

    def area_px(self, diameter: float) -> int:
        """``min_area``, or a quarter of the area of an object of ``diameter`` px."""
        if self.min_area is not None:
            return int(self.min_area)
        return max(1, int(round(math.pi * diameter * diameter / 16.0)))
