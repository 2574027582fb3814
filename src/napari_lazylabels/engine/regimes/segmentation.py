"""Segmentation: exact masks on a few images (Ke et al. 2020; METHOD section 1, task 3).

Strong labels, exact to the boundary, valued by class (1..K), on only a few
images (2-10 %), drafted with GrabCut from the blobs (:mod:`..grabcut`) and
then corrected. It trains the head whose foreground gives the semantic map and
the extent of the instances.
"""

from __future__ import annotations

import numpy as np

from ..groundtruth import semantic_from_instances
from ..labels import blob_components
from ..tasks import FOREGROUND, REFINED, SEEDS
from .base import LabelInput, Regime, coverage_text

#: Okabe-Ito cool colours, one per class.
COOL = ((86, 180, 233), (0, 158, 115), (0, 114, 178), (120, 120, 255), (0, 200, 200))


class Segmentation(Regime):
    name = "segmentation"
    title = "exact masks (segmentation)"
    description = "exact masks by class (1..K) on a few images"
    inputs = (LabelInput(
        key="segmentation", title="Masks", suffix="masks",
        values="class id (1..K) exact to the boundary, on a few images",
        tooltip="Segmentation: exact masks by class (1..K) on a few images only. Draft them with "
                "GrabCut, then correct.",
        palette=COOL, brush_size=8, opacity=0.5, shortcut="Alt-3", required=True, summary=coverage_text,
        claims_objects=True, exact_objects=True),)
    features = REFINED
    role = FOREGROUND
    colour = (86, 180, 233)
    probability_colormap = "cyan"
    draft_from_role = SEEDS

    def simulate(self, instances, classes=None, rng=None, *, strong: bool = False):
        return {"segmentation": semantic_from_instances(instances, classes) if strong else None}

    def cost(self, labels, instances=None):
        seg = labels.get("segmentation")
        strong = seg is not None and bool(np.any(seg))
        if not strong:
            traced = 0
        elif instances is not None:
            traced = int(np.count_nonzero(np.unique(np.asarray(instances)[np.asarray(seg) > 0])))
        else:
            traced = int(blob_components(np.asarray(seg))[0].max(initial=0))
        px = 0 if seg is None else int(np.count_nonzero(seg))
        return {"painted_pixels": px, "strokes": 0, "objects_traced": traced, "mask_pixels": px,
                "strong_images": int(strong)}


REGIME = Segmentation()
