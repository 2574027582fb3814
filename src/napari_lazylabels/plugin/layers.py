"""Layer naming, colours and plane helpers shared by the widgets, the reader and the samples.

An image layer ``nuclei`` gets the lazy-label layers ``nuclei blobs``
(detection), ``nuclei scribbles`` (separation) and ``nuclei masks``
(segmentation), and the prediction layers ``nuclei P(detection)`` ...,
``nuclei semantic`` and ``nuclei instances``. Each such layer also carries
``metadata["lazylabels"] = {"image": "nuclei", "role": <task or kind>}``, so it
is found again after a rename of the layer (the image name is what counts).

Leading axes of an image (2D+t, 2D+z) are planes: each plane is one training
image. An RGB(A) image layer keeps its colour axis last.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator, Sequence

import numpy as np

from ..engine.tasks import DETECTION, SEGMENTATION, SEPARATION

META = "lazylabels"
TASKS = (DETECTION, SEPARATION, SEGMENTATION)
#: What each task's layer is called after the image name.
TASK_SUFFIX = {DETECTION: "blobs", SEPARATION: "scribbles", SEGMENTATION: "masks"}
#: How the widgets title each task's layer.
TASK_TITLES = {task: suffix.capitalize() for task, suffix in TASK_SUFFIX.items()}
PREDICTION_KINDS = ("semantic", "instances")
ROI = "roi"

# Okabe-Ito colours: warm for blobs, cool for masks, magenta for interfaces.
_WARM = [(230, 159, 0), (213, 94, 0), (240, 228, 66), (204, 121, 167), (255, 80, 80)]
_COOL = [(86, 180, 233), (0, 158, 115), (0, 114, 178), (120, 120, 255), (0, 200, 200)]
_INTERFACE = (255, 0, 255)
BRUSH_SIZE = {DETECTION: 6, SEPARATION: 2, SEGMENTATION: 8}
OPACITY = {DETECTION: 0.9, SEPARATION: 1.0, SEGMENTATION: 0.5}


def label_layer_name(image_name: str, task: str) -> str:
    return f"{image_name} {TASK_SUFFIX.get(task, task)}"


def probability_layer_name(image_name: str, task: str) -> str:
    return f"{image_name} P({task})"


def prediction_layer_name(image_name: str, kind: str) -> str:
    return f"{image_name} {kind}"


def _rgba(rgb: tuple[int, int, int], alpha: float = 1.0) -> list[float]:
    return [rgb[0] / 255, rgb[1] / 255, rgb[2] / 255, alpha]


def task_colours(task: str, n_classes: int) -> dict[Any, Any]:
    """A direct colour map for a task's layer: 0 transparent, each class its colour."""
    colours: dict[Any, Any] = {None: _rgba((255, 255, 255)), 0: [0, 0, 0, 0]}
    if task == SEPARATION:
        colours[1] = _rgba(_INTERFACE)
        return colours
    palette = _WARM if task == DETECTION else _COOL
    for k in range(1, max(n_classes, 1) + 1):
        colours[k] = _rgba(palette[(k - 1) % len(palette)])
    return colours


def class_table(task: str, class_names: Sequence[str]) -> dict[str, list]:
    """Labels-layer features: the class name shown under the cursor."""
    names = ["interface"] if task == SEPARATION else list(class_names)
    return {"index": list(range(len(names) + 1)), "class": ["(none)", *names]}


def label_layer_kwargs(image_name: str, task: str, class_names: Sequence[str]) -> dict:
    """Constructor keyword arguments of a lazy-label layer (widgets, reader and samples share them)."""
    return {"name": label_layer_name(image_name, task),
            "colormap": task_colours(task, len(class_names)),
            "opacity": OPACITY.get(task, 0.7),
            "features": class_table(task, class_names),
            "metadata": {META: {"image": image_name, "role": task}}}


def role_of(layer) -> str | None:
    meta = getattr(layer, "metadata", None) or {}
    entry = meta.get(META) or {}
    return entry.get("role")


def image_of(layer) -> str | None:
    meta = getattr(layer, "metadata", None) or {}
    return (meta.get(META) or {}).get("image")


def is_source_image(layer) -> bool:
    """An image layer that is not one of our prediction layers."""
    return layer.__class__.__name__ == "Image" and role_of(layer) is None


def source_images(viewer) -> list:
    return [layer for layer in viewer.layers if is_source_image(layer)]


def find_layer(viewer, image_name: str, role: str, kind: str | None = None):
    """The layer of ``role`` for the image, by metadata first, then by its conventional name."""
    for layer in viewer.layers:
        if image_of(layer) == image_name and role_of(layer) == role:
            if kind is None or layer.__class__.__name__.lower() == kind:
                return layer
    if role in TASKS:
        name = label_layer_name(image_name, role)
    elif role in PREDICTION_KINDS:
        name = prediction_layer_name(image_name, role)
    elif role.startswith("P(") and role.endswith(")"):
        name = probability_layer_name(image_name, role[2:-1])
    else:
        name = f"{image_name} {role}"
    if name in viewer.layers:
        layer = viewer.layers[name]
        if (kind is None or layer.__class__.__name__.lower() == kind) and role_of(layer) is None:
            return layer          # a layer given another role (label_picker) is not taken by its name
    return None


def spatial_shape(layer) -> tuple[int, ...]:
    """Shape of the image without its colour axis: (..., Y, X)."""
    shape = tuple(layer.data.shape)
    return shape[:-1] if getattr(layer, "rgb", False) else shape


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
    """One plane of a layer's data as numpy: YX (labels, images) or YXC (RGB images)."""
    return np.asarray(plane_of(layer.data, plane))


def plane_suffix(plane: tuple[int, ...]) -> str:
    return "_".join(f"{i:03d}" for i in plane)


def plane_name(image_name: str, plane: tuple[int, ...]) -> str:
    """Name of one training image: the layer name, plus ``_003`` for plane 3 of a stack."""
    return f"{image_name}_{plane_suffix(plane)}" if plane else image_name


def class_names(image_layer, default: Sequence[str] = ("nucleus",)) -> list[str]:
    names = ((image_layer.metadata or {}).get(META) or {}).get("class_names")
    return list(names) if names else list(default)


def set_class_names(image_layer, names: Sequence[str]) -> None:
    meta = dict(image_layer.metadata or {})
    entry = dict(meta.get(META) or {})
    entry["class_names"] = list(names)
    meta[META] = entry
    image_layer.metadata = meta


def annotated_flags(image_layer, plane: tuple[int, ...]) -> dict[str, bool]:
    """Tasks marked annotated on a plane although their layer may be empty there.

    Such marks come from projects and samples (``metadata["annotated"]`` of an
    OME-Zarr store): e.g. a plane whose nuclei do not touch is annotated for
    separation with no scribble. Only ``True`` marks are kept; otherwise what
    is painted decides.
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


def label_dtype(n_classes: int) -> np.dtype:
    return np.dtype(np.uint8) if n_classes < 255 else np.dtype(np.uint16)


def ensure_label_layers(viewer, image_layer, names: Sequence[str]) -> dict[str, Any]:
    """The three lazy-label layers of an image; missing ones are added (empty), existing kept."""
    out = {}
    shape = spatial_shape(image_layer)
    for task in TASKS:
        layer = find_layer(viewer, image_layer.name, task, "labels")
        if layer is None:
            kwargs = label_layer_kwargs(image_layer.name, task, names)
            layer = viewer.add_labels(np.zeros(shape, label_dtype(len(names))),
                                      scale=image_layer.scale, translate=image_layer.translate, **kwargs)
        style_label_layer(layer, task, names)
        out[task] = layer
    viewer.layers.selection.active = out[DETECTION]
    return out


def style_label_layer(layer, task: str, names: Sequence[str]) -> None:
    """Colours, brush, class table and metadata of an existing lazy-label layer."""
    layer.colormap = task_colours(task, len(names))
    layer.brush_size = BRUSH_SIZE.get(task, 5)
    try:
        layer.features = class_table(task, names)
    except (ValueError, TypeError):
        pass
    if layer.selected_label == 0 or (task == SEPARATION and layer.selected_label != 1):
        layer.selected_label = 1


def label_layers(viewer, image_name: str) -> dict[str, Any]:
    """Task -> lazy-label layer of the image (missing tasks left out)."""
    out = {}
    for task in TASKS:
        layer = find_layer(viewer, image_name, task, "labels")
        if layer is not None:
            out[task] = layer
    return out


def candidate_label_layers(viewer, image_layer) -> list:
    """Labels layers that could hold lazy labels of the image: same shape, not a prediction layer."""
    shape = spatial_shape(image_layer)
    return [layer for layer in viewer.layers
            if layer.__class__.__name__ == "Labels" and tuple(layer.data.shape) == shape
            and role_of(layer) not in PREDICTION_KINDS]


def assign_label_layer(viewer, image_name: str, task: str, layer) -> None:
    """Make ``layer`` the image's ``task`` layer; any other layer loses that role.

    The role is recorded in the layers' metadata (``metadata["lazylabels"]``),
    which every widget and the export read; the painted data is not touched.
    """
    for other in viewer.layers:
        if other is not layer and image_of(other) == image_name and role_of(other) == task:
            meta = dict(other.metadata or {})
            meta.pop(META, None)
            other.metadata = meta
    meta = dict(layer.metadata or {})
    meta[META] = {"image": image_name, "role": task}
    layer.metadata = meta

