"""napari reader: a lazylabels project folder, or one OME-Zarr image store, as layers.

Each image comes back with one lazy-label layer per kind it was painted (or
marked annotated) for (a kind never painted gets its layer when the user
paints it; labels saved under an input's older name are read too), its region
of interest, and its predictions as the widgets show them: the objects layer
(``instances``, with every plane's probabilities and class map kept in its
metadata) and the main head's probability layer. Stores exported
from the planes of one stack (``metadata["stack"]``) are put back together
into the stack.

Stores of NGFF 0.5 and 0.4 are opened; one this plugin cannot show (more than
one time point or z-plane, other axes, another NGFF version) is declined
(``napari_get_reader`` returns None, so napari may try another reader). An
image with 3 or 4 channels opens as RGB(A); one with 2 or more than 4 as one
layer with its channel axis before Y, X (``metadata["lazylabels"]["channel_axis"]``),
over which the 2D label layers are drawn. A pixel size in the store becomes
the layers' ``scale`` (and ``metadata["lazylabels"]["pixel_size"]``).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..io.ngff import is_image_store, store_problem
from ..io.ome_zarr import ImageStore, read_image_store
from ..io.project import ROI_LABEL, is_project, read_project
from ..engine.regimes import registry
from .layer_names import named
from .layers import (CLASS_FEATURE, META, PREDICTION_KINDS, foreground, instances_layer_kwargs, label_dtype,
                     label_layer_kwargs, main_task, points_layer_data, points_layer_kwargs, probability_layer_kwargs)

LayerData = tuple[Any, dict, str]


def napari_get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """Our reader for a project folder or an OME-Zarr store written by napari-lazylabels."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(os.fspath(path))
    if p.is_dir() and (is_project(p) or (is_image_store(p) and store_problem(p) is None)):
        return read_lazylabels
    return None


def read_lazylabels(path: str | list[str]) -> list[LayerData]:
    if isinstance(path, (list, tuple)):
        path = path[0]
    p = Path(os.fspath(path))
    stores = read_project(p) if is_project(p) else [read_image_store(p)]
    layers: list[LayerData] = []
    for name, members in group_stacks(stores).items():
        layers.extend(image_layers(name, members))
    return layers


def group_stacks(stores: list[ImageStore]) -> "OrderedDict[str, list[tuple[tuple[int, ...], ImageStore]]]":
    """Image name -> [(plane, store)]: planes of one exported stack together, 2D images alone."""
    groups: OrderedDict[str, list] = OrderedDict()
    for s in stores:
        stack = s.metadata.get("stack") if isinstance(s.metadata, dict) else None
        if isinstance(stack, dict) and "name" in stack and "plane" in stack:
            groups.setdefault(str(stack["name"]), []).append((tuple(int(i) for i in stack["plane"]), s))
        else:
            groups.setdefault(s.name, []).append(((), s))
    return groups


def _lead_shape(members) -> tuple[int, ...]:
    plane0, first = members[0]
    if not plane0:
        return ()
    shape = first.metadata.get("stack", {}).get("shape")
    if shape:
        return tuple(int(n) for n in shape)
    return tuple(int(max(p[i] for p, _ in members)) + 1 for i in range(len(plane0)))


def _stacked(members, lead, get, dtype=None) -> np.ndarray | None:
    """Put one array per plane into a stack (zeros where a plane has none); None if no plane has one."""
    arrays = [(p, get(s)) for p, s in members]
    present = [(p, a) for p, a in arrays if a is not None]
    if not present:
        return None
    ref = np.asarray(present[0][1])
    if not lead:
        return ref if dtype is None else ref.astype(dtype)
    out = np.zeros(lead + ref.shape, dtype or ref.dtype)
    for p, a in present:
        out[p] = a
    return out


def _key_of(name: str) -> str:
    """An input's key for any of its names (other names are kept as they are)."""
    spec = registry.find_input(name)
    return spec.key if spec is not None else name


def _input_labels(store: ImageStore, names: tuple[str, ...]):
    """A store's labels of one input: under its key, or under an older name."""
    return next((store.labels[n] for n in names if n in store.labels), None)


def prediction_layers(name: str, members, lead: tuple[int, ...], yx, names, common: dict) -> list[LayerData]:
    """The objects layer (the instances, every plane's outputs in its metadata) and the main head's probability,
    just above the image, as the widgets place them; nothing for an image never predicted."""
    tasks = sorted({t for _, s in members for t in s.probabilities})
    cells = _stacked(members, lead, lambda s: s.labels.get("instances"))
    if cells is None and not tasks:
        return []
    kwargs = {**instances_layer_kwargs(name), **common}
    entry = kwargs["metadata"][META]
    for plane, s in members:
        if s.probabilities:
            entry["probabilities"][plane] = {t: np.asarray(v, np.float32) for t, v in s.probabilities.items()}
        if "semantic" in s.labels:
            entry["semantic"][plane] = np.asarray(s.labels["semantic"])
    out: list[LayerData] = []
    main = main_task(tasks)
    if main is not None:
        fg = _stacked(members, lead, lambda s: foreground(s.probabilities[main]) if main in s.probabilities
                      else None)
        out.append((fg, {**probability_layer_kwargs(name, main, True), **common}, "image"))
    # instances as int32, the type the widgets paint and predict them in
    cells = np.zeros(lead + tuple(yx), np.int32) if cells is None else cells.astype(np.int32)
    out.append((cells, kwargs, "labels"))
    return out


def image_layers(name: str, members: list[tuple[tuple[int, ...], ImageStore]]) -> list[LayerData]:
    """The layers of one image (or one stack rebuilt from its planes)."""
    members = sorted(members, key=lambda m: m[0])
    lead = _lead_shape(members)
    first = members[0][1]
    names = list(first.metadata.get("class_names") or ["cell"])
    image = _stacked(members, lead, lambda s: s.image)
    channels = image.ndim == len(lead) + 3
    rgb = channels and image.shape[-1] in (3, 4)
    marks = {p: {_key_of(t): True for t, v in (s.metadata.get("annotated") or {}).items() if v}
             for p, s in members if isinstance(s.metadata.get("annotated"), dict)}
    meta: dict[str, Any] = {"class_names": names}
    if any(marks.values()):
        meta["annotated"] = {p: m for p, m in marks.items() if m}
    yx = image.shape[:-1] if channels else image.shape
    common: dict[str, Any] = {}
    if first.pixel_size is not None:
        meta["pixel_size"] = first.pixel_size.to_dict()
        common["scale"] = (1.0,) * len(lead) + (first.pixel_size.y, first.pixel_size.x)
    image_kwargs = {"name": name, "rgb": rgb, "metadata": {META: meta}, **common}
    if channels and not rgb:  # the channels just before Y, X: napari draws the 2D labels over them
        image = np.moveaxis(image, -1, len(lead))
        meta["channel_axis"] = len(lead)
        if common:
            image_kwargs["scale"] = common["scale"][:-2] + (1.0,) + common["scale"][-2:]
    layers: list[LayerData] = [(image, image_kwargs, "image")]
    layers.extend(prediction_layers(name, members, lead, yx, names, common))
    for spec in registry.label_inputs():
        marked = any(spec.key in m for m in marks.values())
        if spec.is_points:      # a Points layer: the points of every plane, the plane as leading coordinates
            found = {p: next((s.points[n] for n in spec.names if n in s.points), None) for p, s in members}
            found = {p: v for p, v in found.items() if v is not None}
            if not found and not marked:
                continue        # never painted: its layer comes when the user paints it
            coords, classes = points_layer_data(found or {members[0][0]: np.zeros((0, 3))})
            kwargs = points_layer_kwargs(name, spec.key, len(lead) + 2)
            kwargs["features"] = {CLASS_FEATURE: classes}
            layers.append((coords, {**kwargs, **common}, "points"))
            continue
        data = _stacked(members, lead, lambda s: _input_labels(s, spec.names), label_dtype(len(names)))
        if data is None and not marked:
            continue
        if data is None:
            data = np.zeros(yx, label_dtype(len(names)))
        layers.append((data, {**label_layer_kwargs(name, spec.key, names), **common}, "labels"))
    roi = _stacked(members, lead, lambda s: s.labels.get(ROI_LABEL), np.uint8)
    if roi is not None:
        layers.append((roi, {"name": named("region of interest", name), "opacity": 0.3,
                             "metadata": {META: {"image": name, "role": ROI_LABEL}}, **common}, "labels"))
    known = {n for i in registry.label_inputs() for n in i.names} | set(PREDICTION_KINDS) | {ROI_LABEL}
    others = sorted({k for _, s in members for k in s.labels} - known)
    for other in others:
        data = _stacked(members, lead, lambda s: s.labels.get(other))
        layers.append((data, {"name": named(other, name),
                              "metadata": {META: {"image": name, "role": other}}, **common}, "labels"))
    return layers
