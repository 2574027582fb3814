"""Lazy annotations of one image, and their validation.

``labels`` are keyed by the inputs of the regimes (what the user painted:
:mod:`.regimes`) or, once a run has turned them into training targets, by
task name; the regimes say which values each holds (METHOD section 1). An
optional region of interest marks where any loss may be taken. An image is
annotated for a key when its labels are present and non-empty, unless marked
explicitly with ``annotated``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..errors import AnnotationError
from .labels import integer_labels
from .tasks import TaskSpec

#: Images smaller than this (in Y or X) are refused.
MIN_IMAGE_SIZE = 8


@dataclass
class LazyAnnotations:
    """One 2D image (YX, or YXC with a trailing channel axis) and its lazy labels.

    ``labels`` maps an input key (or a task name) to a YX integer array, or
    ``None`` where the image was not annotated for it.
    """

    image: np.ndarray
    labels: dict[str, np.ndarray | None] = field(default_factory=dict)
    roi: np.ndarray | None = None
    name: str = "image"
    annotated: dict[str, bool] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.image.shape[:2])

    def label(self, task: str) -> np.ndarray | None:
        return self.labels.get(task)

    def is_annotated(self, task: str) -> bool:
        if task in self.annotated:
            return bool(self.annotated[task]) and self.labels.get(task) is not None
        lab = self.labels.get(task)
        return lab is not None and bool(np.any(lab))

    def annotated_tasks(self, tasks: Iterable[TaskSpec]) -> list[str]:
        return [t.name for t in tasks if self.is_annotated(t.name)]


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
    return labels.astype(np.int32)


def validate(item: LazyAnnotations, tasks: Sequence[TaskSpec]) -> LazyAnnotations:
    """Check one image and its labels; return a cleaned copy (labels as int32)."""
    image = check_image(item.image, item.name)
    clean: dict[str, np.ndarray | None] = {}
    names = {t.name for t in tasks}
    for key in item.labels:
        if key not in names:
            raise AnnotationError(f"labels for unknown task {key!r} (tasks: {sorted(names)})",
                                  source=item.name)
    for t in tasks:
        lab = item.labels.get(t.name)
        clean[t.name] = None if lab is None else check_labels(
            lab, image.shape[:2], t.max_label, item.name, what=f"{t.name} labels")
    roi = None
    if item.roi is not None:
        roi = check_labels(item.roi, image.shape[:2], 1, item.name, what="region of interest") > 0
    return LazyAnnotations(image=image, labels=clean, roi=roi, name=item.name,
                           annotated=dict(item.annotated))


def validate_set(items: Sequence[LazyAnnotations], tasks: Sequence[TaskSpec]) -> list[LazyAnnotations]:
    """Validate every image; refuse a set with no annotation for any task (unless a task is
    self-supervised: it trains on every image, labelled or not)."""
    if len(items) == 0:
        raise AnnotationError("no images were given")
    clean = [validate(it, tasks) for it in items]
    channels = {it.image.shape[2] if it.image.ndim == 3 else 1 for it in clean}
    if len(channels) > 1:
        raise AnnotationError(f"images have different numbers of channels: {sorted(channels)}")
    if not any(t.self_supervised for t in tasks) and not any(it.is_annotated(t.name) for it in clean
                                                             for t in tasks):
        raise AnnotationError("no image is annotated for any task: paint some lazy labels first")
    return clean


def annotation_summary(items: Sequence[LazyAnnotations], tasks: Sequence[TaskSpec]) -> dict[str, int]:
    """Number of images annotated for each task."""
    return {t.name: sum(it.is_annotated(t.name) for it in items) for t in tasks}
