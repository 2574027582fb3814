"""What has been painted on each image: the annotation widget's live summary (numpy only).

One row per painted image (plane of a stack), one cell per regime input, made
by the input's own ``summary`` (blobs per class, scribble length, mask
coverage...); the regimes decide what their cell says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .layers import input_keys, input_spec, planes_with_points

#: Shown in a cell when the image is not annotated for that column's input.
NOT_ANNOTATED = "-"


@dataclass
class PlaneSummary:
    """The lazy labels of one training image (a 2D image or one plane of a stack).

    ``cells``: input key -> the text of its summary cell; ``annotated``: the
    inputs this plane is annotated for, in registry order.
    """

    name: str
    cells: dict[str, str] = field(default_factory=dict)
    annotated: list[str] = field(default_factory=list)

    def cell(self, key: str) -> str:
        return self.cells.get(key, NOT_ANNOTATED) if key in self.annotated else NOT_ANNOTATED


def summarize_plane(name: str, layers: Mapping[str, np.ndarray | None], class_names: Sequence[str],
                    marked: Mapping[str, bool] | None = None) -> PlaneSummary:
    """Summary of one plane; ``layers`` maps input key -> YX array, or (M, 3) points of a points input
    (None when the layer is absent).

    ``marked``: inputs explicitly annotated although empty (see ``layers.annotated_flags``).
    """
    s = PlaneSummary(name)
    marked = marked or {}
    for key in input_keys():
        data = layers.get(key)
        if data is None:
            continue
        data = np.asarray(data)
        if data.any() or marked.get(key):
            s.cells[key] = input_spec(key).summary(data, class_names)
            s.annotated.append(key)
    return s


def painted_planes(stacks: Mapping[str, np.ndarray], n_lead: int | None = None) -> list[tuple[int, ...]]:
    """Plane indices (leading axes) where any of the stacks has a non-zero pixel (or a point: a points
    input's stack is its ``layers.layer_values``; ``n_lead``: the image's plane axes, by default those
    of the label stacks)."""
    found: set[tuple[int, ...]] = set()
    points = {k for k in stacks if input_spec(k).is_points}
    if n_lead is None:
        n_lead = next((np.ndim(d) - 2 for k, d in stacks.items() if k not in points), 0)
    for key, data in stacks.items():
        if key in points:
            found |= planes_with_points(data, n_lead)
            continue
        data = np.asarray(data)
        if data.ndim == 2:
            if data.any():
                found.add(())
            continue
        flat = data.reshape(-1, data.shape[-2] * data.shape[-1]).any(axis=1)
        for i in np.flatnonzero(flat):
            found.add(tuple(int(j) for j in np.unravel_index(i, data.shape[:-2])))
    return sorted(found)
