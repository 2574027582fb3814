"""Prediction layers: created once, then refreshed in place (one plane at a time for stacks).

For an image ``nuclei`` they are ``nuclei P(<task>)`` (the probability of
"not background" of each task's head, 0..1), ``nuclei semantic`` (class map)
and ``nuclei instances``, and for a head whose classes are mixtures of
components (ImPartial) ``nuclei components(<task>)``, the most likely
component of each pixel (hidden at first). The full per-class probabilities of each predicted
plane are kept in the probability layer's ``metadata["lazylabels"]
["probabilities"]`` (plane -> (C, Y, X)), which the export writes out.

New layers go just above their image and never take the selection, so a user
painting while a model trains keeps painting in the same layer.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
from napari.layers import Image, Labels

from ...engine.labels import smallest_label_dtype
from ..layers import (META, component_map, components_layer_kwargs, components_role, find_layer, foreground,
                      instances_layer_kwargs, probability_layer_kwargs, semantic_layer_kwargs, spatial_placement,
                      spatial_shape)

def _initial(shape: tuple[int, ...], plane: tuple[int, ...], values: np.ndarray) -> np.ndarray:
    """A new layer's data: the values for a 2D image, zeros but for one plane for a stack."""
    if not plane:
        return values.copy()
    data = np.zeros(shape, values.dtype)
    data[plane] = values
    return data


def _write_plane(layer, plane: tuple[int, ...], values: np.ndarray, shape: tuple[int, ...]) -> None:
    """Refresh a layer in place (cheaper than replacing its data) when shape and type still fit."""
    data = layer.data
    if isinstance(data, np.ndarray) and data.shape == shape and data.dtype == values.dtype:
        data[plane if plane else ...] = values
        layer.refresh()
    else:
        layer.data = _initial(shape, plane, values)


def _add_quietly(viewer, image_layer, layer):
    """Insert a new layer just above its image without taking the user's selection.

    Changing the selection rebuilds napari's layer controls, which costs the
    GUI thread about as much as the insertion itself, so the layer list is
    asked not to activate the new layer. That switch is private to napari (a
    plugin sees a warning): where it is missing, the selection is restored
    after the insertion instead.
    """
    layers = viewer.layers
    index = layers.index(image_layer) + 1 if image_layer in layers else len(layers)
    selection = layers.selection
    active, selected = selection.active, set(selection)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            old = layers._activate_on_insert
            layers._activate_on_insert = False
        except AttributeError:
            old = None
        try:
            layers.insert(index, layer)
        finally:
            if old is not None:
                layers._activate_on_insert = old
    if set(selection) != selected or selection.active is not active:
        selection.clear()
        selection.update(selected)
        selection.active = active
    return layer


def show_prediction(viewer, image_layer, plane: tuple[int, ...], probabilities: Mapping[str, np.ndarray],
                    semantic: np.ndarray, instances: np.ndarray, class_names: Sequence[str],
                    max_new_layers: int | None = None, written: set | None = None,
                    placeholder: bool = False, components: Mapping[str, np.ndarray] | None = None
                    ) -> tuple[list, bool]:
    """Create or refresh the prediction layers of ``image_layer`` for one plane.

    ``components``: task -> per-component probabilities (C * M, Y, X) of the
    tasks whose classes are mixtures: their component maps.

    Adding a layer costs the GUI thread far more than refreshing one, so at
    most ``max_new_layers`` missing layers are added per call (instances
    first, then semantic, then the probabilities); call again with the same
    prediction and the same ``written`` set (roles already shown, updated
    here) to add the rest. Returns the layers shown and whether all are.
    ``placeholder=True`` adds the missing layers empty and stores nothing.
    """
    shape = spatial_shape(image_layer)
    common = spatial_placement(image_layer)
    name = image_layer.name
    sem_dtype = smallest_label_dtype(semantic)
    parts = [("instances", "labels", instances.astype(np.int32), None,
              lambda data: Labels(data, **instances_layer_kwargs(name), **common)),
             ("semantic", "labels", semantic.astype(sem_dtype), None,
              lambda data: Labels(data, **semantic_layer_kwargs(name, class_names), **common))]
    for task, probs in probabilities.items():
        probs = np.asarray(probs, np.float32)
        parts.append((f"P({task})", "image", foreground(probs), probs,
                      lambda data, task=task: Image(data, **probability_layer_kwargs(name, task), **common)))
    for task, comps in (components or {}).items():
        n_cls = int(np.asarray(probabilities[task]).shape[0]) if task in probabilities else 1
        n_comp = max(1, int(np.asarray(comps).shape[0]) // max(n_cls, 1))
        parts.append((components_role(task), "labels", component_map(comps), None,
                      lambda data, task=task, k=n_cls, m=n_comp:
                      Labels(data, **components_layer_kwargs(name, task, k, m), **common)))
    budget = len(parts) if max_new_layers is None else max_new_layers
    written = set() if written is None else written
    out, complete = [], True
    for role, kind, values, full, make in parts:
        layer = find_layer(viewer, name, role, kind)
        if layer is not None and role in written:
            out.append(layer)
            continue
        if layer is None:
            if budget <= 0:
                complete = False
                continue
            budget -= 1
            data = np.zeros(shape, values.dtype) if placeholder else _initial(shape, plane, values)
            layer = _add_quietly(viewer, image_layer, make(data))
            if role == "instances":
                layer.contour = 1
        else:
            _write_plane(layer, plane, values, shape)
        if full is not None and not placeholder:
            layer.metadata.setdefault(META, {}).setdefault("probabilities", {})[tuple(plane)] = full
        written.add(role)
        out.append(layer)
    return out, complete


def ensure_prediction_layers(viewer, image_layer, tasks: Sequence[str], class_names: Sequence[str],
                             max_new_layers: int = 1, components: Mapping[str, tuple[int, int]] | None = None
                             ) -> tuple[list, bool]:
    """Add missing prediction layers, empty, at most ``max_new_layers`` per call (existing ones untouched).

    ``components``: task -> (classes, components per class) of the tasks whose classes are mixtures.
    Returns the layers added by this call and whether all prediction layers now exist.
    """
    yx = spatial_shape(image_layer)[-2:]
    components = components or {}
    existing = {role for role in ("instances", "semantic", *(f"P({t})" for t in tasks),
                                  *(components_role(t) for t in components))
                if find_layer(viewer, image_layer.name, role) is not None}
    zeros = {t: np.zeros((components.get(t, (2, 1))[0], *yx), np.float32) for t in tasks}
    comps = {t: np.zeros((k * m, *yx), np.float32) for t, (k, m) in components.items()}
    before = set(map(id, viewer.layers))
    _, complete = show_prediction(viewer, image_layer, (), zeros, np.zeros(yx, np.uint8),
                                  np.zeros(yx, np.int32), class_names, max_new_layers=max_new_layers,
                                  written=existing, placeholder=True, components=comps)
    return [layer for layer in viewer.layers if id(layer) not in before], complete


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
