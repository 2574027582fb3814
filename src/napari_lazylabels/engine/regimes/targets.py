"""From what the user painted to what a run trains on.

:func:`check_inputs` validates the painted layers of each image against the
regimes' inputs (shape, type, allowed values); :func:`training_items` asks the
run's regimes for their tasks' targets (regimes that are not opt-in first,
then the opt-in ones, which may derive theirs from the others').
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from ...errors import AnnotationError
from ..annotations import LazyAnnotations, check_image, check_labels
from ..points import check_points
from ..tasks import TaskSpec
from . import registry
from .base import Regime
from .words import input_words


def check_inputs(items: Sequence[LazyAnnotations], n_classes: int) -> list[LazyAnnotations]:
    """Validated copies of ``items`` (labels keyed by input key, as int32; points inputs as (N, 3)
    float64 arrays of y, x, class; ROI as bool).

    Raises:
        AnnotationError: no images, an image the network cannot use, labels
            for an unknown input, labels of the wrong shape, type or values,
            points outside the image or of an unknown class.
    """
    if len(items) == 0:
        raise AnnotationError("no images were given")
    inputs = {i.key: i for i in registry.label_inputs()}
    out = []
    for item in items:
        image = check_image(item.image, item.name)
        labels: dict[str, np.ndarray | None] = {}
        for key, lab in item.labels.items():
            spec = inputs.get(key)
            if spec is None:
                raise AnnotationError(f"labels for unknown input {key!r} (inputs: {', '.join(inputs)})",
                                      source=item.name)
            if lab is None:
                labels[key] = None
            elif spec.is_points:
                labels[key] = check_points(lab, image.shape[:2], n_classes, item.name, what=input_words(key))
            else:
                labels[key] = check_labels(lab, image.shape[:2], spec.accepted_max(n_classes), item.name,
                                           what=input_words(key))
                if spec.binary:
                    labels[key] = (labels[key] > 0).astype(np.int32)
        roi = None
        if item.roi is not None:
            roi = check_labels(item.roi, image.shape[:2], 1, item.name, what="region of interest") > 0
        out.append(LazyAnnotations(image=image, labels=labels, roi=roi, name=item.name,
                                   annotated=dict(item.annotated), pixel_size=item.pixel_size))
    return out


def present_inputs(items: Sequence[LazyAnnotations]) -> set[str]:
    """Input keys that some image is annotated for (a manifest column with a painted label file, a
    painted napari layer): the regimes of a run are chosen from them."""
    return {k for it in items for k in it.labels if it.is_annotated(k)}


def training_items(items: Sequence[LazyAnnotations], run_regimes: Sequence[Regime],
                   tasks: Sequence[TaskSpec], options: Mapping[str, Any] | None = None) -> list[LazyAnnotations]:
    """The items with their labels replaced by the run's targets (keyed by task name); ``options``:
    regime name -> its options in the run (missing: its defaults)."""
    options = options or {}
    out = []
    for item in items:
        done: dict[str, tuple[np.ndarray | None, bool]] = {}
        for r in sorted(run_regimes, key=lambda r: r.opt_in):
            done.update(r.targets(item, dict(done), tasks, options.get(r.name)))
        out.append(LazyAnnotations(image=item.image, labels={t.name: done.get(t.name, (None, False))[0]
                                                              for t in tasks},
                                   roi=item.roi, name=item.name,
                                   annotated={t.name: bool(done.get(t.name, (None, False))[1]) for t in tasks}))
    return out


def roles_of_trained(tasks: Sequence[TaskSpec], items: Sequence[LazyAnnotations]) -> list[TaskSpec]:
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


def check_annotated(items: Sequence[LazyAnnotations]) -> list[LazyAnnotations]:
    """Refuse a set in which no image is annotated for any input; return it as a list.

    Raises:
        AnnotationError: nothing painted anywhere.
    """
    items = list(items)
    if not any(it.is_annotated(k) for it in items for k in it.labels):
        raise AnnotationError("no image is annotated for any task: paint some lazy labels first")
    return items
