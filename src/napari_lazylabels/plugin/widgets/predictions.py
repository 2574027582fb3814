"""Prediction layers: created once, then refreshed in place (one plane at a time for stacks).

For an image ``nuclei`` two layers are shown: ``objects · nuclei`` (the objects
or nuclei found) and ``P(object) · nuclei`` (the probability of "not background"
of the main head, :func:`~..layer_names.main_task`, 0..1). Every predicted
plane's outputs are kept in the objects layer's metadata
(:data:`~..layers.STORED`: the full per-class probabilities of each head, the
class map, the mixture components), which the export writes out. With *Show
every head* on (:func:`set_every_head`), each other head gets its probability
layer too, with the class map ``classes · nuclei`` and, for a head whose
classes are mixtures of components (ImPartial), its most likely component per
pixel (``parts of <kind> · nuclei``); turning it off removes those layers (the data
stays in the objects layer).

New layers go just above their image and never take the selection, so a user
painting while a model trains keeps painting in the same layer.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Mapping, Sequence

import numpy as np
from napari.layers import Image, Labels

from ...engine.labels import smallest_label_dtype
from ..layers import (META, component_map, components_layer_kwargs, components_role, find_layer, foreground,
                      image_of, instances_layer_kwargs, main_task, probability_layer_kwargs, role_of,
                      semantic_layer_kwargs, spatial_placement, spatial_shape)

#: Viewers whose every head is shown (the *Show every head* box).
_EVERY_HEAD: "weakref.WeakSet" = weakref.WeakSet()

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



def every_head(viewer) -> bool:
    """Whether *Show every head* is on for the viewer."""
    return viewer in _EVERY_HEAD


def _parts(name: str, probabilities: Mapping[str, np.ndarray], semantic: np.ndarray, instances: np.ndarray,
           class_names: Sequence[str], components: Mapping[str, np.ndarray], common: dict, every: bool) -> list:
    """(role, kind, values, make) of each layer to show: the objects and the main head's probability, then, with
    ``every``, the class map, the other heads' probabilities and the mixture components."""
    main = main_task(probabilities)
    parts = [("instances", "labels", instances.astype(np.int32),
              lambda data: Labels(data, **instances_layer_kwargs(name), **common))]
    tasks = [main] + [t for t in probabilities if t != main and every] if main is not None else []
    if every:
        sem = semantic.astype(smallest_label_dtype(semantic))
        parts.append(("semantic", "labels", sem,
                      lambda data: Labels(data, **semantic_layer_kwargs(name, class_names), **common)))
    for task in tasks:
        parts.append((f"P({task})", "image", foreground(probabilities[task]),
                      lambda data, task=task: Image(data, **probability_layer_kwargs(name, task, task == main),
                                                    **common)))
    for task, comps in (components if every else {}).items():
        n_cls = int(np.asarray(probabilities[task]).shape[0]) if task in probabilities else 1
        n_comp = max(1, int(np.asarray(comps).shape[0]) // max(n_cls, 1))
        parts.append((components_role(task), "labels", component_map(comps),
                      lambda data, task=task, k=n_cls, m=n_comp:
                      Labels(data, **components_layer_kwargs(name, task, k, m), **common)))
    return parts


def _store(layer, plane: tuple[int, ...], probabilities, semantic, components) -> None:
    """Keep one plane's outputs in the objects layer's metadata (what the export writes, what every head shows)."""
    entry = layer.metadata.setdefault(META, {})
    entry.setdefault("probabilities", {})[tuple(plane)] = {t: np.asarray(p, np.float32)
                                                          for t, p in probabilities.items()}
    entry.setdefault("semantic", {})[tuple(plane)] = np.asarray(semantic)
    entry.setdefault("components", {})[tuple(plane)] = {t: np.asarray(c, np.float32)
                                                        for t, c in (components or {}).items()}


def show_prediction(viewer, image_layer, plane: tuple[int, ...], probabilities: Mapping[str, np.ndarray],
                    semantic: np.ndarray, instances: np.ndarray, class_names: Sequence[str],
                    max_new_layers: int | None = None, written: set | None = None,
                    placeholder: bool = False, components: Mapping[str, np.ndarray] | None = None,
                    every: bool | None = None) -> tuple[list, bool]:
    """Create or refresh the prediction layers of ``image_layer`` for one plane, and keep its outputs.

    ``components``: task -> per-component probabilities (C * M, Y, X) of the
    tasks whose classes are mixtures. ``every``: show every head (the viewer's
    :func:`every_head` when None).

    Adding a layer costs the GUI thread far more than refreshing one, so at
    most ``max_new_layers`` missing layers are added per call (the objects
    first); call again with the same prediction and the same ``written`` set
    (roles already shown, updated here) to add the rest. Returns the layers
    shown and whether all are. ``placeholder=True`` adds the missing layers
    empty and stores nothing.
    """
    shape = spatial_shape(image_layer)
    name = image_layer.name
    every = every_head(viewer) if every is None else every
    parts = _parts(name, {t: np.asarray(p, np.float32) for t, p in probabilities.items()}, semantic, instances,
                   class_names, components or {}, spatial_placement(image_layer), every)
    budget = len(parts) if max_new_layers is None else max_new_layers
    written = set() if written is None else written
    out, complete = [], True
    for role, kind, values, make in parts:
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
        if role == "instances" and not placeholder:
            _store(layer, plane, probabilities, semantic, components)
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


def _cells_layers(viewer) -> list:
    return [layer for layer in viewer.layers if role_of(layer) == "instances" and image_of(layer) is not None]


def stored_outputs(viewer, image_name: str, plane: tuple[int, ...]) -> tuple[dict, np.ndarray | None, dict]:
    """(task -> full (C, Y, X) probabilities, semantic map or None, task -> component probabilities) of one
    predicted plane, from the image's objects layer; empty when the plane was not predicted."""
    cells = find_layer(viewer, image_name, "instances", "labels")
    entry = ((cells.metadata or {}).get(META) or {}) if cells is not None else {}
    plane = tuple(plane)
    return (dict((entry.get("probabilities") or {}).get(plane) or {}), (entry.get("semantic") or {}).get(plane),
            dict((entry.get("components") or {}).get(plane) or {}))


def stored_probabilities(viewer, image_name: str, plane: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Task -> full (C, Y, X) probabilities of one plane, kept in the image's objects layer."""
    return stored_outputs(viewer, image_name, plane)[0]


def _extra(layer) -> bool:
    """A layer shown only with every head: the class map, a mixture's components, a head's probability other
    than the main one."""
    role = str(role_of(layer) or "")
    entry = (layer.metadata or {}).get(META) or {}
    return role == "semantic" or role.startswith("components(") or (role.startswith("P(") and not entry.get("main"))


def set_every_head(viewer, on: bool, class_names_of=None) -> None:
    """Show every head's layers of every predicted image (from what the objects layers keep), or remove them.

    ``class_names_of(image_layer)``: the class names of an image (its class map's colours)."""
    if not on:
        _EVERY_HEAD.discard(viewer)
        for layer in [layer for layer in viewer.layers if _extra(layer)]:
            viewer.layers.remove(layer)
        return
    _EVERY_HEAD.add(viewer)
    for cells in _cells_layers(viewer):
        name = image_of(cells)
        if name not in viewer.layers:
            continue
        image = viewer.layers[name]
        names = class_names_of(image) if class_names_of is not None else ["cell"]
        for plane in list(((cells.metadata or {}).get(META) or {}).get("probabilities") or {}):
            probs, semantic, comps = stored_outputs(viewer, name, plane)
            if semantic is None:
                semantic = np.zeros(np.shape(cells.data)[-2:], np.uint8)
            data = np.asarray(cells.data[plane] if plane else cells.data)
            show_prediction(viewer, image, plane, probs, semantic, data, names, components=comps, every=True)
