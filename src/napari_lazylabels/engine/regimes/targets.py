"""From what the user painted to what a run trains on.

:func:`check_inputs` validates the painted layers of each image against the
regimes' inputs (shape, type, allowed values); :func:`training_items` asks the
run's regimes for their tasks' targets (regimes that are not opt-in first,
then the opt-in ones, which may derive theirs from the others').
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from ...errors import AnnotationError
from ..annotations import (ROI, ROI_MAX, PaintedImage, PaintedSet, TrainingItem, check_image, check_labels,
                           check_same_channels)
from ..points import check_points
from ..tasks import TaskSpec
from . import registry
from .base import ConfiguredRegime
from .words import input_words


def check_painted(item: PaintedImage, n_classes: int) -> PaintedImage:
    """One painted image checked against the regimes' inputs: a new :class:`PaintedImage` (labels as
    int32, not copied when they are int32 already; masks as 0/1; points as ``(N, 3)`` float64 arrays of
    y, x, class; the ROI as bool: any value > 0 is inside). Errors name ``item.sources`` where the item
    says where an input came from (a file), otherwise the image.

    Raises:
        AnnotationError: an image the network cannot use, labels for an unknown input, labels of the
            wrong shape, type or values, points outside the image or of an unknown class.
    """
    inputs = {i.key: i for i in registry.label_inputs()}
    image = check_image(item.image, item.source_of("image"))
    labels: dict[str, np.ndarray | None] = {}
    for key, lab in item.labels.items():
        spec = inputs.get(key)
        source = item.source_of(key)
        if spec is None:
            raise AnnotationError(f"labels for unknown input {key!r} (inputs: {', '.join(inputs)})", source=source)
        if lab is None:
            labels[key] = None
        elif spec.is_points:
            labels[key] = check_points(lab, image.shape[:2], n_classes, source, what=input_words(key))
        else:
            checked = check_labels(lab, image.shape[:2], spec.accepted_max(n_classes), source,
                                   what=input_words(key))
            if spec.binary:      # any value > 0 is 1: in place, unless the array is the caller's
                checked = np.minimum(checked, 1, out=None if checked is lab else checked)
            labels[key] = checked
    roi = None
    if item.roi is not None:
        roi = check_labels(item.roi, image.shape[:2], ROI_MAX, item.source_of(ROI), what="region of interest") > 0
    return PaintedImage(image=image, labels=labels, roi=roi, name=item.name, annotated=dict(item.annotated),
                        pixel_size=item.pixel_size, sources=dict(item.sources))


def painted_set(checked: Sequence[PaintedImage], n_classes: int) -> PaintedSet:
    """The set of images each checked by :func:`check_painted`: refuses an empty set, images of different
    channels and a set with nothing painted.

    Raises:
        AnnotationError: no images, different channels, nothing painted anywhere.
    """
    if len(checked) == 0:
        raise AnnotationError("no images were given")
    check_same_channels([it.image for it in checked], [it.source_of("image") for it in checked])
    if not any(it.is_annotated(k) for it in checked for k in it.labels):
        raise AnnotationError("no image is annotated for any task: paint some lazy labels first")
    return PaintedSet(tuple(checked), int(n_classes))


def check_inputs(items: Sequence[PaintedImage], n_classes: int) -> PaintedSet:
    """The one boundary from painted images to training data: each image checked
    (:func:`check_painted`), then the set (:func:`painted_set`). A :class:`PaintedSet` of ``n_classes``
    classes is returned as it is: it was checked already.

    Raises:
        AnnotationError: see :func:`check_painted` and :func:`painted_set`.
    """
    if isinstance(items, PaintedSet) and items.n_classes == int(n_classes):
        return items
    return painted_set([check_painted(it, n_classes) for it in items], n_classes)


def present_inputs(items: Sequence[PaintedImage]) -> set[str]:
    """Input keys that some image is annotated for (a manifest column with a painted label file, a
    painted napari layer): the regimes of a run are chosen from them."""
    return {k for it in items for k in it.labels if it.is_annotated(k)}


def training_items(items: PaintedSet, run_regimes: Sequence[ConfiguredRegime],
                   tasks: Sequence[TaskSpec]) -> list[TrainingItem]:
    """Each painted image's training targets, keyed by task name, from the run's regimes (regimes
    that are not opt-in first, then the opt-in ones, which may derive theirs from the others')."""
    out = []
    for item in items:
        done: dict[str, tuple[np.ndarray | None, bool]] = {}
        for r in sorted(run_regimes, key=lambda r: r.regime.opt_in):
            done.update(r.targets(item, dict(done), tasks))
        out.append(TrainingItem(image=item.image, targets={t.name: done.get(t.name, (None, False))[0] for t in tasks},
                                annotated={t.name: bool(done.get(t.name, (None, False))[1]) for t in tasks},
                                roi=item.roi, name=item.name))
    if not any(t.self_supervised for t in tasks) and not any(it.is_annotated(t.name) for it in out for t in tasks):
        raise AnnotationError("no image is annotated for any task of this run: paint some lazy labels first")
    return out


def roles_of_trained(tasks: Sequence[TaskSpec], items: Sequence[TrainingItem]) -> list[TaskSpec]:
    """The tasks, where a task that no training item is annotated for gives up its post-processing
    role to a task of the same role that some item is annotated for (e.g. the exact masks' head,
    when no mask was painted, to the fg/bg scribbles' head); otherwise the first task of each role
    keeps it (:func:`~..tasks.heads_by_role`)."""
    trained = {t.name for t in tasks if any(it.is_annotated(t.name) for it in items)}
    out = []
    for t in tasks:
        if t.role is not None and t.name not in trained and any(
                o.role == t.role and o.name in trained for o in tasks if o is not t):
            t = replace(t, role=None)
        out.append(t)
    return out
