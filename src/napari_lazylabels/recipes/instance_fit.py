"""The end of a training run: the model's instance settings fitted to the images with exact masks or,
in a run without exact masks, to the points (clicked or machine-made).

The fits themselves are :mod:`napari_lazylabels.engine.instance_fitting` and
:mod:`~napari_lazylabels.engine.instance_fitting_points`; this finds their examples among the training
images (those with exact masks and the interfaces painted on them, or those with points) and predicts
them with the trained model.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..engine.annotations import LazyAnnotations
from ..engine.autolabel_mask import cut_between_points, objects_round
from ..engine.instance_fitting import FittedInstances, fit_to_exact_masks
from ..engine.instance_fitting_points import fit_to_points
from ..engine.pipeline import segment
from ..engine.regimes import registry
from ..engine.tasks import BOUNDARIES, FOREGROUND
from ..engine.trained_model import LazyLabelsModel

__all__ = ["FittedInstances", "fit_on_exact_masks", "exact_mask_examples", "point_examples", "labels_read_round",
           "fit_on_labels"]


def exact_mask_examples(items: Sequence[LazyAnnotations]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """``(image, exact mask, interfaces or None)`` of every image annotated with exact masks."""
    regime = registry.regime_with_role(FOREGROUND)
    if regime is None or not regime.inputs:
        return []
    key = regime.inputs[0].key
    found = registry.input_with_role(BOUNDARIES)
    interfaces_key = None if found is None else found.key
    return [(it.image, it.labels[key], it.labels.get(interfaces_key) if interfaces_key else None)
            for it in items if it.is_annotated(key)]


def fit_on_exact_masks(model: LazyLabelsModel, items: Sequence[LazyAnnotations],
                       device: str | torch.device = "cpu") -> FittedInstances | None:
    """The instance settings of ``model`` fitted to the exact masks among ``items`` (None: no exact
    masks, or too few objects in them)."""
    examples = exact_mask_examples(items)
    if not examples:
        return None
    return fit_to_exact_masks(lambda image: segment(model, image, device=str(device)).probabilities, examples,
                              model.tasks, model.postprocess)


def point_examples(items: Sequence[LazyAnnotations]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(image, points)`` of every image with points (the input that machine-made points also fill)."""
    pair = registry.machine_label_inputs()
    if pair is None:
        return []
    key = pair[0].key
    return [(it.image, it.labels[key]) for it in items if it.is_annotated(key)]


def labels_read_round(items: Sequence[LazyAnnotations]) -> bool:
    """Whether the objects of the images with points and a foreground mask read round: the mask cut
    between the points (:func:`~..engine.autolabel_mask.cut_between_points`) reads round
    (:func:`~..engine.autolabel_mask.objects_round`) on more than half of those images. False without
    such an image."""
    pair = registry.machine_label_inputs()
    if pair is None:
        return False
    pts_key, mask_key = (i.key for i in pair)
    reads = [objects_round(cut_between_points(it.labels[pts_key], np.asarray(it.labels[mask_key]) > 0))
             for it in items if it.is_annotated(pts_key) and it.is_annotated(mask_key)]
    return bool(reads) and 2 * sum(reads) > len(reads)


def fit_on_labels(model: LazyLabelsModel, items: Sequence[LazyAnnotations],
                  device: str | torch.device = "cpu") -> FittedInstances | None:
    """The instance settings of ``model`` fitted to the exact masks among ``items`` or, when they hold
    too few traced objects (or none), to the points among them (None: neither); with the seed join off
    where the points and mask read round (:func:`labels_read_round`)."""
    fitted = fit_on_exact_masks(model, items, device)
    if fitted is not None:
        return fitted
    examples = point_examples(items)
    if not examples:
        return None
    return fit_to_points(lambda image: segment(model, image, device=str(device)).probabilities, examples,
                         model.tasks, model.postprocess, labels_read_round(items))
