"""Lazy annotations: what was painted on an image, and what a run trains on.

Two kinds of item, two key spaces:

* :class:`PaintedImage`: what the user painted, keyed by the regimes'
  input keys (:mod:`.regimes`; METHOD section 1 says which values each
  holds). An image is annotated for an input when its labels are present
  and non-empty, unless marked explicitly with ``annotated``. The painted
  images of a run are checked once, into a :class:`PaintedSet`.
* :class:`TrainingItem`: the targets the run's regimes made from a painted
  image, keyed by task name; the trainer trusts them.

Both carry an optional region of interest that marks where any loss may be taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..errors import AnnotationError
from .labels import integer_labels
from .tasks import TaskSpec

#: Images smaller than this (in Y or X) are refused.
MIN_IMAGE_SIZE = 8

#: The region of interest's key in :attr:`PaintedImage.sources`, and the largest value it may hold
#: (any non-negative integer: non-zero is inside).
ROI = "roi"
ROI_MAX = int(np.iinfo(np.int64).max)

#: Length units of a pixel size (the NGFF/UDUNITS names), in micrometres.
UNITS_IN_MICROMETERS = {"angstrom": 1e-4, "nanometer": 1e-3, "micrometer": 1.0, "millimeter": 1e3,
                        "centimeter": 1e4, "meter": 1e6, "inch": 25400.0}


@dataclass(frozen=True)
class PixelSize:
    """The physical size of one pixel along Y and X, in ``unit`` (an NGFF space unit)."""

    y: float
    x: float
    unit: str = "micrometer"

    def __post_init__(self):
        if self.unit not in UNITS_IN_MICROMETERS:
            raise AnnotationError(f"unknown pixel size unit {self.unit!r} "
                                  f"(one of {', '.join(UNITS_IN_MICROMETERS)})")
        for axis in ("y", "x"):
            value = getattr(self, axis)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise AnnotationError(f"pixel size {axis} must be a finite number > 0, got {value!r}")

    def micrometers(self) -> tuple[float, float]:
        """(y, x) in micrometres."""
        f = UNITS_IN_MICROMETERS[self.unit]
        return self.y * f, self.x * f

    def ratio_to(self, other: "PixelSize") -> float:
        """How many of ``other``'s pixels one of these spans (mean of Y and X): the factor that
        resizes an image of this pixel size to ``other``'s."""
        (ay, ax), (by, bx) = self.micrometers(), other.micrometers()
        return math.sqrt((ay / by) * (ax / bx))

    def to_dict(self) -> dict:
        return {"y": float(self.y), "x": float(self.x), "unit": self.unit}

    @classmethod
    def from_dict(cls, d: Mapping) -> "PixelSize":
        return cls(float(d["y"]), float(d["x"]), str(d.get("unit", "micrometer")))

    def __str__(self) -> str:
        size = f"{self.y:g}" if self.y == self.x else f"{self.y:g} x {self.x:g}"
        return f"{size} {self.unit}"


def common_pixel_size(sizes: Iterable["PixelSize | None"]) -> "PixelSize | None":
    """The pixel size all of ``sizes`` share (within 1 %), or None when one is unknown or they differ."""
    sizes = list(sizes)
    if not sizes or any(s is None for s in sizes):
        return None
    first = sizes[0]
    if all(abs(s.ratio_to(first) - 1) <= 0.01 for s in sizes):
        return first
    return None


@dataclass
class PaintedImage:
    """One 2D image (YX, or YXC with a trailing channel axis) and what the user painted on it.

    ``labels`` maps a regime's input key (:class:`~.regimes.base.LabelInput`:
    blobs, interfaces, masks, fg/bg strokes, points, foreground mask) to a YX
    integer array (an ``(N, 3)`` array for points), or ``None`` where the
    image was not painted for it. ``pixel_size``: the physical pixel size,
    when the file said it. ``sources``: where the image (``"image"``), an
    input (its key) or the ROI (``"roi"``) came from, e.g. a file, named in
    error messages (default: the image's name). Checked once, into a
    :class:`PaintedSet` (:func:`~.regimes.targets.check_inputs`).
    """

    image: np.ndarray
    labels: dict[str, np.ndarray | None] = field(default_factory=dict)
    roi: np.ndarray | None = None
    name: str = "image"
    annotated: dict[str, bool] = field(default_factory=dict)
    pixel_size: PixelSize | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def source_of(self, key: str) -> str:
        """Where the image or one of its inputs came from (for error messages)."""
        return self.sources.get(key, self.name)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.image.shape[:2])

    def label(self, key: str) -> np.ndarray | None:
        return self.labels.get(key)

    def is_annotated(self, key: str) -> bool:
        if key in self.annotated:
            return bool(self.annotated[key]) and self.labels.get(key) is not None
        lab = self.labels.get(key)
        return lab is not None and bool(np.any(lab))

    def annotated_inputs(self) -> list[str]:
        """The input keys this image is annotated for."""
        return [k for k in self.labels if self.is_annotated(k)]


#: The earlier name of :class:`PaintedImage` (scripts and notebooks still use it).
LazyAnnotations = PaintedImage


@dataclass(frozen=True)
class PaintedSet(Sequence[PaintedImage]):
    """Painted images that passed the checks of the regimes' inputs for ``n_classes`` classes: the one
    boundary between what was painted (napari layers, a manifest, a project) and training.

    Made only by :func:`~.regimes.targets.check_inputs` (labels as int32, masks as 0/1, points as
    ``(N, 3)`` float64, the ROI as bool, every image with the same channels and something painted);
    every later stage trusts it: nothing is checked or copied again. A list of images.
    """

    images: tuple[PaintedImage, ...]
    n_classes: int

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]

    def __iter__(self):
        return iter(self.images)


@dataclass
class TrainingItem:
    """One image as a run trains on it: the targets of each task (made by the run's regimes from a
    :class:`PaintedImage`, :func:`~.regimes.targets.training_items`), trusted by the trainer.

    ``targets``: task name -> YX integer targets, or None; ``annotated``: task name -> whether the
    image trains that task; ``roi``: where any loss may be taken (None: everywhere).
    """

    image: np.ndarray
    targets: dict[str, np.ndarray | None]
    annotated: dict[str, bool]
    roi: np.ndarray | None = None
    name: str = "image"

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.image.shape[:2])

    def label(self, task: str) -> np.ndarray | None:
        return self.targets.get(task)

    def is_annotated(self, task: str) -> bool:
        return bool(self.annotated.get(task)) and self.targets.get(task) is not None


def check_image(image: np.ndarray, source: str) -> np.ndarray:
    """Refuse images the network cannot use; return it as a YX or YXC array."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] > 4 and image.shape[0] <= 4:
        raise AnnotationError(
            f"image has shape {image.shape}; put the channel axis last (YXC)", source=source)
    if image.ndim not in (2, 3):
        raise AnnotationError(
            f"image must be 2D (YX) or 2D with a trailing channel axis (YXC), got shape {image.shape}",
            source=source)
    if min(image.shape[:2]) < MIN_IMAGE_SIZE:
        raise AnnotationError(
            f"image is {image.shape[0]}x{image.shape[1]} px; at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} is needed",
            source=source)
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise AnnotationError(f"image has non-numeric type {image.dtype}", source=source)
    if np.issubdtype(image.dtype, np.complexfloating):
        raise AnnotationError(f"image has complex values ({image.dtype}); save its magnitude (np.abs) "
                              f"or its real part as a real-valued image", source=source)
    if np.issubdtype(image.dtype, np.floating) and not np.all(np.isfinite(image)):
        raise AnnotationError("image contains NaN or infinite pixels", source=source)
    return image


def check_labels(labels: np.ndarray, shape: Sequence[int], max_label: int, source: str,
                 what: str = "labels") -> np.ndarray:
    """Refuse label arrays of the wrong shape, type or values; return them as int32."""
    labels = np.asarray(labels)
    if labels.shape != tuple(shape):
        raise AnnotationError(
            f"{what} have shape {labels.shape} but the image is {tuple(shape)}", source=source)
    labels = integer_labels(labels, what, source=source, whole_floats=True)
    if labels.size and labels.max() > max_label:
        raise AnnotationError(
            f"{what} contain value {int(labels.max())} but at most {max_label} is allowed "
            f"(class ids, not instance ids)", source=source)
    return labels.astype(np.int32, copy=False)


def channels_of(image: np.ndarray) -> int:
    """Channels of a YX (1) or YXC image."""
    return image.shape[2] if image.ndim == 3 else 1


def check_same_channels(images: Sequence[np.ndarray], sources: Sequence[str]) -> None:
    """Refuse images with different numbers of channels, naming the first that differs and the first image."""
    if not images:
        return
    first = channels_of(images[0])
    for image, source in zip(images, sources):
        n = channels_of(image)
        if n != first:
            raise AnnotationError(f"image has {n} channel(s) but {sources[0]} has {first}: every image of "
                                  f"a training set needs the same channels", source=source)


def annotation_summary(items: Sequence[TrainingItem], tasks: Sequence[TaskSpec]) -> dict[str, int]:
    """Number of images annotated for each task."""
    return {t.name: sum(it.is_annotated(t.name) for it in items) for t in tasks}
