"""What has been painted on each image: the annotation widget's live summary (numpy only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from skimage.morphology import skeletonize

from ..engine.grabcut import blob_components
from ..engine.tasks import DETECTION, SEGMENTATION, SEPARATION


@dataclass
class PlaneSummary:
    """The lazy labels of one training image (a 2D image or one plane of a stack)."""

    name: str
    blobs: dict[int, int] = field(default_factory=dict)   # class -> number of blobs
    scribble_px: int = 0                                  # scribble length (skeleton pixels)
    mask_coverage: float = 0.0                            # fraction of the plane under strong masks
    annotated: list[str] = field(default_factory=list)    # tasks this plane is annotated for

    def blob_text(self, class_names: Sequence[str]) -> str:
        if not self.blobs:
            return "0"
        if len(class_names) <= 1 and set(self.blobs) <= {1}:
            return str(self.blobs.get(1, 0))
        return ", ".join(f"{class_names[k - 1] if 0 < k <= len(class_names) else k}: {n}"
                         for k, n in sorted(self.blobs.items()))


def count_blobs(blobs: np.ndarray) -> dict[int, int]:
    """Blobs per class: connected regions (8-connected) of each class value."""
    counts = Counter(c for c in blob_components(blobs)[1].values() if c > 0)
    return {k: counts[k] for k in sorted(counts)}


def scribble_length(scribbles: np.ndarray) -> int:
    """Length of the interface scribbles in px (pixels of their skeleton)."""
    mask = np.asarray(scribbles) > 0
    if not mask.any():
        return 0
    return int(skeletonize(mask).sum())


def summarize_plane(name: str, layers: Mapping[str, np.ndarray | None],
                    marked: Mapping[str, bool] | None = None) -> PlaneSummary:
    """Summary of one plane; ``layers`` maps task -> YX array (or None when the layer is absent).

    ``marked``: tasks explicitly annotated although empty (see ``layers.annotated_flags``).
    """
    s = PlaneSummary(name)
    blobs = layers.get(DETECTION)
    scribbles = layers.get(SEPARATION)
    masks = layers.get(SEGMENTATION)
    if blobs is not None and blobs.any():
        s.blobs = count_blobs(blobs)
        s.annotated.append(DETECTION)
    if scribbles is not None and scribbles.any():
        s.scribble_px = scribble_length(scribbles)
        s.annotated.append(SEPARATION)
    if masks is not None and masks.any():
        s.mask_coverage = float(np.count_nonzero(masks)) / masks.size
        s.annotated.append(SEGMENTATION)
    for task, flag in (marked or {}).items():
        if flag and task not in s.annotated and layers.get(task) is not None:
            s.annotated.append(task)
    order = [DETECTION, SEPARATION, SEGMENTATION]
    s.annotated.sort(key=lambda t: order.index(t) if t in order else len(order))
    return s


def painted_planes(stacks: Mapping[str, np.ndarray]) -> list[tuple[int, ...]]:
    """Plane indices (leading axes) where any of the stacks has a non-zero pixel."""
    found: set[tuple[int, ...]] = set()
    for data in stacks.values():
        data = np.asarray(data)
        if data.ndim == 2:
            if data.any():
                found.add(())
            continue
        flat = data.reshape(-1, data.shape[-2] * data.shape[-1]).any(axis=1)
        for i in np.flatnonzero(flat):
            found.add(tuple(int(j) for j in np.unravel_index(i, data.shape[:-2])))
    return sorted(found)
