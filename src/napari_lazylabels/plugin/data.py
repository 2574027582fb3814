"""From napari layers to the engine's training items, and back to plain arrays.

Everything handed to a background thread is copied here, on the GUI thread,
so the user can keep painting while a model trains on a snapshot.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..engine.annotations import LazyAnnotations
from ..engine.regimes import registry
from ..errors import AnnotationError
from .layers import (META, annotated_flags, input_plane, input_spec, label_layers, layer_values, leading_shape,
                     pixel_size_of, plane_data, plane_name, planes, spatial_shape)
from .summary import painted_planes


def snapshot_labels(viewer, image_layer) -> dict[str, np.ndarray]:
    """Input key -> the image's lazy-label data (all planes; a points input's ``layers.layer_values``),
    checked against the image's shape."""
    shape = spatial_shape(image_layer)
    out = {}
    for task, layer in label_layers(viewer, image_layer.name).items():
        if input_spec(task).is_points:
            out[task] = np.array(layer_values(layer))
            if out[task].shape[-1] != len(shape) + 1:
                raise AnnotationError(f"layer '{layer.name}' has points of {out[task].shape[-1] - 1} "
                                      f"coordinates but the image has {len(shape)} axes", source=image_layer.name)
            continue
        if tuple(layer.data.shape) != shape:
            raise AnnotationError(f"layer '{layer.name}' has shape {tuple(layer.data.shape)} but the "
                                  f"image is {shape}", source=image_layer.name)
        out[task] = layer.data
    return out


def training_items(viewer, image_layer, unpainted: bool = False) -> list[LazyAnnotations]:
    """One training item per painted plane of the image (copies of the image and its labels);
    ``unpainted=True``: every plane (for a run with a self-supervised task, which trains on
    images without labels too)."""
    stacks = snapshot_labels(viewer, image_layer)
    if not stacks:
        raise AnnotationError("has nothing painted yet: paint blobs, interfaces or masks on it in the Lazy "
                              "annotation widget (its buttons, Alt-1 to Alt-6)",
                              source=image_layer.name)
    items = []
    marks = ((image_layer.metadata or {}).get(META) or {}).get("annotated") or {}
    flagged = {tuple(p) for p, f in marks.items() if any(f.values())}
    chosen = set(planes(image_layer)) if unpainted else set(painted_planes(stacks, len(leading_shape(image_layer)))) | flagged
    for plane in sorted(chosen):
        labels = {t: np.array(input_plane(t, d, plane)) for t, d in stacks.items()}
        items.append(LazyAnnotations(image=np.array(plane_data(image_layer, plane)), labels=labels,
                                     name=plane_name(image_layer.name, plane),
                                     annotated=annotated_flags(image_layer, plane),
                                     pixel_size=pixel_size_of(image_layer)))
    return items


def training_set(viewer, image_layers: Sequence, unpainted: bool = False) -> list[LazyAnnotations]:
    """Training items of several images (``unpainted``: every plane, painted or not); an error names
    the image when nothing is painted at all."""
    items: list[LazyAnnotations] = []
    for layer in image_layers:
        items.extend(training_items(viewer, layer, unpainted))
    if not items:
        names = ", ".join(layer.name for layer in image_layers) or "(no image ticked)"
        what = ", ".join(i.title.lower() for i in registry.label_inputs())
        raise AnnotationError(f"nothing painted yet: paint some lazy labels ({what}) first", source=names)
    return items
