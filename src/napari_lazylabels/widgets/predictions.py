"""Prediction layers: created once, then refreshed in place (one plane at a time for stacks).

For an image ``nuclei`` they are ``nuclei P(<task>)`` (the probability of
"not background" of each task's head, 0..1), ``nuclei semantic`` (class map)
and ``nuclei instances``. The full per-class probabilities of each predicted
plane are kept in the probability layer's ``metadata["lazylabels"]
["probabilities"]`` (plane -> (C, Y, X)), which the export writes out.

New layers go just above their image and never take the selection, so a user
painting while a model trains keeps painting in the same layer.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..tasks import SEGMENTATION
from .layers import (META, find_layer, prediction_layer_name, probability_layer_name, spatial_shape,
                     task_colours)

_PROB_COLORMAP = {"detection": "yellow", "separation": "magenta", "segmentation": "cyan"}


def _meta(image_name: str, role: str, **extra) -> dict:
    return {META: {"image": image_name, "role": role, **extra}}


def _place_above(viewer, layer, image_layer) -> None:
    layers = viewer.layers
    if image_layer in layers and layer in layers:
        src, dst = layers.index(layer), layers.index(image_layer) + 1
        if src != dst and src > dst:
            layers.move(src, dst)


def _write_plane(layer, plane: tuple[int, ...], values: np.ndarray, shape: tuple[int, ...]) -> None:
    if tuple(layer.data.shape) != shape or layer.data.dtype != values.dtype:
        data = np.zeros(shape, values.dtype)
    else:
        data = layer.data
    if plane:
        data[plane] = values
    else:
        data = values
    if data is layer.data:
        layer.refresh()
    else:
        layer.data = data


def probability_layer_kwargs(image_name: str, task: str) -> dict:
    """Constructor keyword arguments of a probability layer (the widgets and the reader share them)."""
    return {"name": probability_layer_name(image_name, task), "colormap": _PROB_COLORMAP.get(task, "gray"),
            "contrast_limits": (0.0, 1.0), "blending": "additive", "opacity": 0.6, "visible": False,
            "metadata": _meta(image_name, f"P({task})", task=task, probabilities={})}


def semantic_layer_kwargs(image_name: str, class_names: Sequence[str]) -> dict:
    return {"name": prediction_layer_name(image_name, "semantic"),
            "colormap": task_colours(SEGMENTATION, len(class_names)), "opacity": 0.5, "visible": False,
            "metadata": _meta(image_name, "semantic")}


def instances_layer_kwargs(image_name: str) -> dict:
    return {"name": prediction_layer_name(image_name, "instances"), "opacity": 0.8,
            "metadata": _meta(image_name, "instances")}


def foreground(probs: np.ndarray) -> np.ndarray:
    """Probability of "not background" (1 - class 0) of a (C, Y, X) array."""
    return (1.0 - np.asarray(probs, np.float32)[0]).astype(np.float32)


def _add_quietly(viewer, image_layer, make):
    """Add a layer just above its image without taking the user's selection."""
    active = viewer.layers.selection.active
    selected = set(viewer.layers.selection)
    layer = make()
    _place_above(viewer, layer, image_layer)
    viewer.layers.selection.clear()
    viewer.layers.selection.update(selected)
    viewer.layers.selection.active = active
    return layer


def show_prediction(viewer, image_layer, plane: tuple[int, ...], probabilities: Mapping[str, np.ndarray],
                    semantic: np.ndarray, instances: np.ndarray, class_names: Sequence[str],
                    max_new_layers: int | None = None) -> tuple[list, bool]:
    """Create or refresh the prediction layers of ``image_layer`` for one plane.

    Adding a layer costs the GUI thread far more than refreshing one, so at
    most ``max_new_layers`` missing layers are added per call (instances
    first, then semantic, then the probabilities); call again with the same
    prediction to add the rest. Returns the layers shown and whether all are.
    """
    shape = spatial_shape(image_layer)
    common = {"scale": image_layer.scale, "translate": image_layer.translate}
    name = image_layer.name
    sem_dtype = np.uint8 if semantic.max(initial=0) < 255 else np.uint16
    parts = [("instances", "labels", instances.astype(np.int32), None,
              lambda: viewer.add_labels(np.zeros(shape, np.int32), **instances_layer_kwargs(name), **common)),
             ("semantic", "labels", semantic.astype(sem_dtype), None,
              lambda: viewer.add_labels(np.zeros(shape, np.uint8), **semantic_layer_kwargs(name, class_names),
                                        **common))]
    for task, probs in probabilities.items():
        probs = np.asarray(probs, np.float32)
        parts.append((f"P({task})", "image", foreground(probs), probs,
                      lambda task=task: viewer.add_image(np.zeros(shape, np.float32),
                                                         **probability_layer_kwargs(name, task), **common)))
    budget = len(parts) if max_new_layers is None else max_new_layers
    out, complete = [], True
    for role, kind, values, full, make in parts:
        layer = find_layer(viewer, name, role, kind)
        if layer is None:
            if budget <= 0:
                complete = False
                continue
            budget -= 1
            layer = _add_quietly(viewer, image_layer, make)
            if role == "instances":
                layer.contour = 1
        if full is not None:
            layer.metadata.setdefault(META, {}).setdefault("probabilities", {})[tuple(plane)] = full
        _write_plane(layer, plane, values, shape)
        out.append(layer)
    return out, complete


def stored_probabilities(viewer, image_name: str, plane: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Task -> full (C, Y, X) probabilities of one plane, from the prediction layers."""
    out = {}
    for layer in viewer.layers:
        entry = (layer.metadata or {}).get(META) or {}
        if entry.get("image") == image_name and str(entry.get("role", "")).startswith("P("):
            probs = (entry.get("probabilities") or {}).get(tuple(plane))
            if probs is not None:
                out[entry.get("task") or entry["role"][2:-1]] = probs
    return out
