"""Layer conventions shared by the widgets, the reader and the sample data (no Qt, no napari import).

An image layer ``nuclei`` gets one lazy-label layer per input of the regimes
(:mod:`napari_lazylabels.engine.regimes`), named ``"nuclei <suffix>"`` with
the input's colours and brush (a layer named with an input's older suffix is
still found; an input whose ``layer_type`` is ``points`` gets a Points layer,
one point per object, with a ``class`` feature), and the prediction layers ``nuclei <painted kind> (probability)``
..., ``nuclei semantic`` and ``nuclei instances`` (and ``nuclei
components(<task>)``, the mixture component of each pixel, for a task whose
classes are mixtures). Each such layer also carries
``metadata["lazylabels"] = {"image": "nuclei", "role": <input key or kind>}``,
so it is found again after a rename of the layer (the image name is what
counts). Nothing here names a regime: everything comes from the registry.

Leading axes of an image (2D+t, 2D+z) are planes: each plane is one training
image. An RGB(A) image layer keeps its colour axis last; another multi-channel
image (e.g. 2 fluorescence channels, as the reader opens it) has its channel
axis just before Y, X, marked by ``metadata["lazylabels"]["channel_axis"]``:
its planes are handed to the engine as YXC.
"""

from __future__ import annotations

import colorsys
import itertools
from typing import Any, Iterator, Sequence

import numpy as np

from ..engine.annotations import PixelSize
from ..engine.labels import smallest_uint
from ..engine.regimes import registry
from ..engine.regimes.base import LabelInput
from ..engine.tasks import FOREGROUND
from .layer_names import (PREDICTION_KINDS, conventional_names, input_spec, label_layer_name, main_task,  # noqa: F401
                          prediction_layer_name, probability_layer_name)

META = "lazylabels"
ROI = "roi"
#: Names of a class-id layer's values that are not classes (the cursor table).
NO_VALUE = "(none)"


def input_keys() -> tuple[str, ...]:
    """The input of every regime, in registry order (one lazy-label layer each)."""
    return registry.input_keys()


def role_of(layer) -> str | None:
    meta = getattr(layer, "metadata", None) or {}
    entry = meta.get(META) or {}
    return entry.get("role")


def image_of(layer) -> str | None:
    meta = getattr(layer, "metadata", None) or {}
    return (meta.get(META) or {}).get("image")


# -- colours and tables -----------------------------------------------------------------------

def _rgba(rgb: tuple[int, int, int], alpha: float = 1.0) -> list[float]:
    return [rgb[0] / 255, rgb[1] / 255, rgb[2] / 255, alpha]


def input_colours(key: str, n_classes: int) -> dict[Any, Any]:
    """A direct colour map for an input's layer: 0 transparent, each value its colour."""
    colours: dict[Any, Any] = {None: _rgba((255, 255, 255)), 0: [0, 0, 0, 0]}
    for value, rgb in input_spec(key).colours(n_classes).items():
        colours[value] = _rgba(rgb)
    return colours


def class_table(key: str, class_names: Sequence[str]) -> dict[str, list]:
    """Labels-layer features: the name of the value under the cursor."""
    names = input_spec(key).names_of_values(class_names)
    return {"index": list(range(len(names) + 1)), "class": [NO_VALUE, *names]}


def label_dtype(n_classes: int) -> np.dtype:
    """The dtype of a lazy-label layer of any input (its largest value fits)."""
    top = max([int(n_classes)] + [i.max_label(n_classes) for i in registry.label_inputs()])
    return smallest_uint(top)


def label_layer_kwargs(image_name: str, key: str, class_names: Sequence[str]) -> dict:
    """Constructor keyword arguments of a lazy-label layer (widgets, reader and samples share them)."""
    spec = input_spec(key)
    return {"name": label_layer_name(image_name, key),
            "colormap": input_colours(key, len(class_names)),
            "opacity": spec.opacity,
            "features": class_table(key, class_names),
            "metadata": {META: {"image": image_name, "role": spec.key}}}


def _meta(image_name: str, role: str, **extra) -> dict:
    return {META: {"image": image_name, "role": role, **extra}}


def probability_layer_kwargs(image_name: str, task: str, main: bool = False) -> dict:
    """Constructor keyword arguments of a probability layer (the widgets and the reader share them);
    ``main``: the one shown by default (:func:`~.layer_names.main_task`)."""
    return {"name": probability_layer_name(image_name, task, main), "colormap": registry.probability_colormap(task),
            "contrast_limits": (0.0, 1.0), "blending": "additive", "opacity": 0.6, "visible": False,
            "metadata": _meta(image_name, f"P({task})", task=task, main=bool(main))}


def semantic_layer_kwargs(image_name: str, class_names: Sequence[str]) -> dict:
    """The semantic map takes the colours of the foreground regime's input (the exact masks)."""
    kwargs = {"name": prediction_layer_name(image_name, "semantic"), "opacity": 0.5, "visible": False,
              "metadata": _meta(image_name, "semantic")}
    strong = registry.input_with_role(FOREGROUND)
    if strong is not None:
        kwargs["colormap"] = input_colours(strong.key, len(class_names))
    return kwargs


def instance_colours(n_colours: int = 24) -> np.ndarray:
    """Bright, saturated colours for instance ids (row 0 transparent), for a cycling colormap.

    napari's default label colours include greys and dark hues that vanish as
    outlines on grey nuclei; these hues are spread by the golden ratio so
    neighbouring ids differ, all at full value. napari reads an (N, 4) array as
    a cycling label colormap (a new one per layer).
    """
    hues = (np.arange(n_colours) * 0.618034) % 1.0
    colours = [(0.0, 0.0, 0.0, 0.0)] + [(*colorsys.hsv_to_rgb(h, 0.85 if i % 2 else 0.6, 1.0), 1.0)
                                        for i, h in enumerate(hues)]
    return np.array(colours, np.float32)


#: Keys of the objects layer's ``metadata["lazylabels"]`` that keep each predicted plane's outputs
#: (plane -> {task: (C, Y, X) probabilities}, plane -> semantic map, plane -> {task: component map}), whether
#: a layer shows them or not: the export writes them, *Show every head* draws them.
STORED = ("probabilities", "semantic", "components")


def instances_layer_kwargs(image_name: str) -> dict:
    """The objects layer: the objects found, and every predicted plane's outputs in its metadata (:data:`STORED`)."""
    return {"name": prediction_layer_name(image_name, "instances"), "opacity": 0.8,
            "colormap": instance_colours(), "metadata": _meta(image_name, "instances", **{k: {} for k in STORED})}


def components_role(task: str) -> str:
    return f"components({task})"


#: Colours of mixture components: the background's in reds and oranges, the objects' in greens and
#: blues (ImPartial's Fig. 1, right column).
BACKGROUND_COMPONENTS = ((230, 60, 30), (255, 150, 0), (170, 0, 60), (255, 210, 80))
OBJECT_COMPONENTS = ((0, 210, 90), (80, 255, 200), (0, 140, 255), (170, 255, 60), (0, 90, 160))


def components_colours(n_classes: int, components: int) -> dict[Any, Any]:
    """A direct colour map for a component map: value ``c * M + m + 1`` is component m of class c."""
    colours: dict[Any, Any] = {None: _rgba((255, 255, 255)), 0: [0, 0, 0, 0]}
    j = 0
    for c in range(n_classes):
        for m in range(components):
            if c == 0:
                rgb = BACKGROUND_COMPONENTS[m % len(BACKGROUND_COMPONENTS)]
            else:
                rgb = OBJECT_COMPONENTS[j % len(OBJECT_COMPONENTS)]
                j += 1
            colours[c * components + m + 1] = _rgba(rgb)
    return colours


def components_layer_kwargs(image_name: str, task: str, n_classes: int, components: int) -> dict:
    """The component map of a task: which mixture component each pixel belongs to most (hidden at first)."""
    return {"name": prediction_layer_name(image_name, components_role(task)), "opacity": 0.6, "visible": False,
            "colormap": components_colours(n_classes, components),
            "metadata": _meta(image_name, components_role(task), task=task)}


def component_map(probs: np.ndarray) -> np.ndarray:
    """Per-component probabilities (C*M, Y, X) -> the most likely component + 1 (uint8)."""
    return (np.argmax(np.asarray(probs), axis=0) + 1).astype(np.uint8)


def foreground(probs: np.ndarray) -> np.ndarray:
    """Probability of "not background" (1 - class 0) of a (C, Y, X) array."""
    return (1.0 - np.asarray(probs, np.float32)[0]).astype(np.float32)


# -- finding layers ---------------------------------------------------------------------------

def is_source_image(layer) -> bool:
    """An image layer that is not one of our prediction layers."""
    return layer.__class__.__name__ == "Image" and role_of(layer) is None


def source_images(viewer) -> list:
    return [layer for layer in viewer.layers if is_source_image(layer)]


def find_layer(viewer, image_name: str, role: str, kind: str | None = None):
    """The layer of ``role`` for the image, by metadata first, then by its conventional name(s)."""
    for layer in viewer.layers:
        if image_of(layer) == image_name and role_of(layer) == role:
            if kind is None or layer.__class__.__name__.lower() == kind:
                return layer
    for name in conventional_names(image_name, role):
        if name in viewer.layers:
            layer = viewer.layers[name]
            if (kind is None or layer.__class__.__name__.lower() == kind) and role_of(layer) is None:
                return layer      # a layer given another role (label_picker) is not taken by its name
    return None


def label_layers(viewer, image_name: str) -> dict[str, Any]:
    """Input key -> lazy-label layer of the image (inputs without a layer left out)."""
    out = {}
    for key in input_keys():
        layer = find_layer(viewer, image_name, key, input_spec(key).layer_type)
        if layer is not None:
            out[key] = layer
    return out


def candidate_label_layers(viewer, image_layer) -> list:
    """Labels layers that could hold lazy labels of the image: same shape, not a prediction layer."""
    shape = spatial_shape(image_layer)
    return [layer for layer in viewer.layers
            if layer.__class__.__name__ == "Labels" and tuple(layer.data.shape) == shape
            and not is_prediction_role(role_of(layer))]


def candidate_layers(viewer, image_layer, key: str) -> list:
    """The layers that could hold input ``key`` of the image: Points layers of the image's dimensions for
    a points input, else :func:`candidate_label_layers`."""
    if not input_spec(key).is_points:
        return candidate_label_layers(viewer, image_layer)
    ndim = len(spatial_shape(image_layer))
    return [layer for layer in viewer.layers if layer.__class__.__name__ == "Points" and layer.ndim == ndim]


def is_prediction_role(role: str | None) -> bool:
    """A layer made by a prediction (semantic, instances, a component map), not painted by the user."""
    return role is not None and (role in PREDICTION_KINDS or role.startswith(components_role("")[:-1]))


def assign_label_layer(viewer, image_name: str, key: str, layer) -> None:
    """Make ``layer`` the image's layer for input ``key``; any other layer loses that role.

    The role is recorded in the layers' metadata (``metadata["lazylabels"]``),
    which every widget and the export read; the painted data is not touched.
    """
    for other in viewer.layers:
        if other is not layer and image_of(other) == image_name and role_of(other) == key:
            meta = dict(other.metadata or {})
            meta.pop(META, None)
            other.metadata = meta
    meta = dict(layer.metadata or {})
    meta[META] = {"image": image_name, "role": key}
    layer.metadata = meta


def ensure_label_layers(viewer, image_layer, names: Sequence[str], keys: Sequence[str] | None = None
                        ) -> dict[str, Any]:
    """The lazy-label layers of an image for the inputs ``keys`` (every input when None); missing ones are
    added (empty), existing kept. The first becomes the active layer."""
    out = {}
    shape = spatial_shape(image_layer)
    for key in (input_keys() if keys is None else keys):
        layer = find_layer(viewer, image_layer.name, key, input_spec(key).layer_type)
        if layer is None and input_spec(key).is_points:
            layer = viewer.add_points(np.zeros((0, len(shape))), **spatial_placement(image_layer),
                                      **points_layer_kwargs(image_layer.name, key, len(shape)))
        elif layer is None:
            kwargs = label_layer_kwargs(image_layer.name, key, names)
            layer = viewer.add_labels(np.zeros(shape, label_dtype(len(names))), **spatial_placement(image_layer),
                                      **kwargs)
        style_label_layer(layer, key, names)
        out[key] = layer
    if out:
        viewer.layers.selection.active = next(iter(out.values()))
    return out


def style_label_layer(layer, key: str, names: Sequence[str]) -> None:
    """Colours, brush, class table and selected value of an existing lazy-label layer (a Points
    layer keeps its own style)."""
    spec = input_spec(key)
    if spec.is_points:
        return
    layer.colormap = input_colours(key, len(names))
    layer.brush_size = spec.brush_size
    try:
        layer.features = class_table(key, names)
    except (ValueError, TypeError):
        pass
    if layer.selected_label == 0 or layer.selected_label > spec.max_label(len(names)):
        layer.selected_label = 1


# -- points inputs (Points layers) ------------------------------------------------------------

#: The feature of a Points layer that holds each point's class (1..K; 1 when absent).
CLASS_FEATURE = "class"


def points_layer_kwargs(image_name: str, key: str, ndim: int = 2) -> dict:
    """Constructor keyword arguments of the Points layer of a points input (new points: class 1)."""
    spec = input_spec(key)
    return {"name": label_layer_name(image_name, key), "ndim": int(ndim), "size": spec.brush_size,
            "face_color": _rgba(spec.palette[0]), "opacity": spec.opacity,
            "features": {CLASS_FEATURE: np.zeros(0, np.int64)}, "feature_defaults": {CLASS_FEATURE: 1},
            "metadata": _meta(image_name, spec.key)}


def layer_values(layer) -> np.ndarray:
    """A lazy-label layer's data: a Labels layer's array, or a Points layer's ``(N, ndim + 1)`` array of
    coordinates (data axes) and class."""
    if layer.__class__.__name__ != "Points":
        return layer.data
    coords = np.asarray(layer.data, np.float64).reshape(len(layer.data), int(layer.ndim))
    features = getattr(layer, "features", None)
    cls = np.ones(len(coords))
    if features is not None and CLASS_FEATURE in features and len(features) == len(coords):
        cls = np.nan_to_num(np.asarray(features[CLASS_FEATURE], np.float64), nan=1.0)
    return np.column_stack([coords, cls])


def points_of_plane(values: np.ndarray, plane: tuple[int, ...]) -> np.ndarray:
    """The points of one plane as ``(M, 3)`` y, x, class (those whose leading coordinates round to it)."""
    values = np.asarray(values, np.float64).reshape(-1, np.shape(values)[-1] if np.size(values) else 3 + len(plane))
    lead = values[:, :-3]
    keep = np.all(np.floor(lead + 0.5) == np.asarray(plane, np.float64), axis=1) if len(plane) else \
        np.ones(len(values), bool)
    return values[keep][:, -3:]


def input_plane(key: str, values: np.ndarray, plane: tuple[int, ...]) -> np.ndarray:
    """One plane of an input's :func:`layer_values`: YX labels, or ``(M, 3)`` points."""
    return points_of_plane(values, plane) if input_spec(key).is_points else np.asarray(plane_of(values, plane))


def planes_with_points(values: np.ndarray, n_lead: int) -> set[tuple[int, ...]]:
    """The planes holding a point (rounded leading coordinates)."""
    values = np.asarray(values, np.float64).reshape(-1, n_lead + 3) if np.size(values) else np.zeros((0, n_lead + 3))
    return {tuple(int(v) for v in row) for row in np.floor(values[:, :n_lead] + 0.5)}


def points_layer_data(points_by_plane: dict[tuple[int, ...], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(coordinates (N, len(plane) + 2), classes (N,)) of a Points layer from each plane's ``(M, 3)`` points."""
    coords, classes = [], []
    for plane, pts in sorted(points_by_plane.items()):
        pts = np.asarray(pts, np.float64).reshape(-1, 3)
        coords.append(np.column_stack([np.tile(np.asarray(plane, np.float64), (len(pts), 1)), pts[:, :2]]))
        classes.append(pts[:, 2].astype(np.int64))
    n = len(next(iter(points_by_plane), ())) + 2
    if not coords:
        return np.zeros((0, n)), np.zeros(0, np.int64)
    return np.concatenate(coords).reshape(-1, n), np.concatenate(classes)


# -- planes and image metadata ------------------------------------------------------------------

def channel_axis(layer) -> int | None:
    """The axis of a non-RGB multi-channel image's channels (``metadata["lazylabels"]["channel_axis"]``)."""
    axis = ((getattr(layer, "metadata", None) or {}).get(META) or {}).get("channel_axis")
    return int(axis) if isinstance(axis, int) and 0 <= axis < len(layer.data.shape) - 2 else None


def spatial_shape(layer) -> tuple[int, ...]:
    """Shape of the image without its colour or channel axis: (..., Y, X)."""
    shape = tuple(layer.data.shape)
    if getattr(layer, "rgb", False):
        return shape[:-1]
    axis = channel_axis(layer)
    return shape if axis is None else shape[:axis] + shape[axis + 1:]


def spatial_placement(layer) -> dict:
    """``scale`` and ``translate`` of the image's (..., Y, X) axes, for the layers drawn over it."""
    axis = channel_axis(layer)
    scale, translate = list(layer.scale), list(layer.translate)
    if axis is not None:
        del scale[axis], translate[axis]
    return {"scale": scale, "translate": translate}


def leading_shape(layer) -> tuple[int, ...]:
    """The plane axes (t, z, ...) of an image: everything before Y, X."""
    return spatial_shape(layer)[:-2]


def planes(layer) -> Iterator[tuple[int, ...]]:
    """Every plane index of an image, () for a 2D image."""
    return itertools.product(*(range(n) for n in leading_shape(layer)))


def current_plane(viewer, layer) -> tuple[int, ...]:
    """The plane of ``layer`` shown now (from the viewer's dims), () for a 2D image."""
    lead = leading_shape(layer)
    if not lead:
        return ()
    point = np.asarray(viewer.dims.point)[-layer.ndim:]
    data = np.asarray(layer.world_to_data(point))
    idx = np.round(data[: len(lead)]).astype(int)
    return tuple(int(min(max(i, 0), n - 1)) for i, n in zip(idx, lead))


def plane_of(data, plane: tuple[int, ...]):
    """One plane of an array (the whole array for a 2D image, whose plane is ``()``)."""
    return data[plane] if plane else data


def plane_data(layer, plane: tuple[int, ...]) -> np.ndarray:
    """One plane of a layer's data as numpy: YX (labels, images) or YXC (RGB and multi-channel images)."""
    data = np.asarray(plane_of(layer.data, plane))
    return data if channel_axis(layer) is None else np.moveaxis(data, 0, -1)


def plane_suffix(plane: tuple[int, ...]) -> str:
    return "_".join(f"{i:03d}" for i in plane)


def plane_name(image_name: str, plane: tuple[int, ...]) -> str:
    """Name of one training image: the layer name, plus ``_003`` for plane 3 of a stack."""
    return f"{image_name}_{plane_suffix(plane)}" if plane else image_name


def pixel_size_of(image_layer) -> PixelSize | None:
    """The pixel size the image came with (``metadata["lazylabels"]["pixel_size"]``, set by the reader)."""
    size = ((image_layer.metadata or {}).get(META) or {}).get("pixel_size")
    try:
        return PixelSize.from_dict(size) if isinstance(size, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def class_names(image_layer, default: Sequence[str] = ("cell",)) -> list[str]:
    names = ((image_layer.metadata or {}).get(META) or {}).get("class_names")
    return list(names) if names else list(default)


def set_class_names(image_layer, names: Sequence[str]) -> None:
    meta = dict(image_layer.metadata or {})
    entry = dict(meta.get(META) or {})
    entry["class_names"] = list(names)
    meta[META] = entry
    image_layer.metadata = meta


def annotated_flags(image_layer, plane: tuple[int, ...]) -> dict[str, bool]:
    """Inputs marked annotated on a plane although their layer may be empty there.

    Such marks come from projects and samples (``metadata["annotated"]`` of an
    OME-Zarr store): e.g. a plane whose nuclei do not touch is annotated for
    the interface scribbles with no scribble. Only ``True`` marks are kept;
    otherwise what is painted decides.
    """
    flags = ((image_layer.metadata or {}).get(META) or {}).get("annotated") or {}
    return {t: True for t, v in (flags.get(tuple(plane)) or {}).items() if v}


def set_annotated_flags(image_layer, plane: tuple[int, ...], flags: dict[str, bool]) -> None:
    meta = dict(image_layer.metadata or {})
    entry = dict(meta.get(META) or {})
    marks = dict(entry.get("annotated") or {})
    marks[tuple(plane)] = {t: True for t, v in flags.items() if v}
    entry["annotated"] = marks
    meta[META] = entry
    image_layer.metadata = meta
