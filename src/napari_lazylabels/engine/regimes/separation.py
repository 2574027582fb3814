"""Separation: a scribble on the interface between touching objects (Ke et al. 2020; METHOD 1, task 2).

Painted only where two touching objects have no visible boundary; value 1.
It trains the head whose interfaces cut touching objects apart. Its napari
layer is ``"<image> interfaces"`` (before: ``"<image> scribbles"``, still
found; the fg/bg scribbles of ImPartial are another regime).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from ..groundtruth import check_instances, close_gaps, interface_edges
from ..labels import blob_components
from ..tasks import BOUNDARIES, BOUNDARY
from .base import LabelInput, Regime


def scribble_length(scribbles: np.ndarray, class_names=()) -> str:
    """Summary cell: the length of the scribbles in px (pixels of their skeleton)."""
    mask = np.asarray(scribbles) > 0
    return f"{int(skeletonize(mask).sum()) if mask.any() else 0} px"


def interface_scribbles(instances: np.ndarray, *, rng: np.random.Generator | int | None = None,
                        scribble_width: float = 3, interface_coverage: float = 1.0,
                        max_gap: int = 0) -> np.ndarray:
    """Scribbles (1) along boundaries shared by two touching objects (uint8).

    A pixel is painted when its centre lies within ``scribble_width / 2`` of
    the boundary between two objects (the boundary runs between pixel
    centres; so a width of 3 paints 2 px on each side of it). Only a random
    ``interface_coverage`` fraction of the touching pairs is painted (all of
    them at 1.0), as a lazier annotator would.

    Ground truth of real data often leaves a thin background gap between
    neighbours that touch in the image (E. coli in ../shared/data: 3-4 px).
    With ``max_gap > 0`` objects at most that far apart count as touching:
    the interface is taken midway across the gap and the scribble spans the
    gap's background plus ``scribble_width / 2`` on each side.
    """
    inst = check_instances(instances)
    rng = np.random.default_rng(rng)
    first, second, pairs = interface_edges(close_gaps(inst, max_gap))
    core = np.zeros(inst.size, dtype=bool)
    if len(pairs):
        uniq, which = np.unique(pairs, axis=0, return_inverse=True)
        which = which.reshape(-1)
        n_keep = int(round(float(np.clip(interface_coverage, 0.0, 1.0)) * len(uniq)))
        keep = np.zeros(len(uniq), dtype=bool)
        keep[rng.permutation(len(uniq))[:n_keep]] = True
        sel = keep[which]
        core[first[sel]] = True
        core[second[sel]] = True
    core = core.reshape(inst.shape)
    if not core.any():
        return core.astype(np.uint8)
    # core pixels are 0.5 px from the boundary; a pixel at distance d from the
    # core is d + 0.5 from it
    if max_gap > 0:
        # the interface lies midway across the gap: bridge the gap's background
        bridge = (inst == 0) & (ndimage.distance_transform_edt(~core) <= (int(max_gap) + 1) // 2)
        core = core | bridge
    reach = (float(scribble_width) - 1.0) / 2.0
    if reach < 1.0:
        return core.astype(np.uint8)
    return (ndimage.distance_transform_edt(~core) <= reach).astype(np.uint8)


class Separation(Regime):
    name = "separation"
    title = "interface scribbles (separation)"
    description = "a scribble (1) on the interface between touching objects"
    inputs = (LabelInput(
        key="separation", title="Interfaces", suffix="interfaces", suffix_aliases=("scribbles",),
        values="1 on interfaces between touching objects",
        tooltip="Separation: a thin scribble (1) on the interface between two touching objects.",
        class_values=False, value_names=("interface",), palette=((255, 0, 255),), brush_size=2,
        opacity=1.0, shortcut="Alt-2", required=True, summary=scribble_length),)
    features = BOUNDARY
    role = BOUNDARIES
    colour = (255, 0, 255)
    probability_colormap = "magenta"

    def simulate(self, instances, classes=None, rng=None, *, scribble_width: float = 3,
                 interface_coverage: float = 1.0, max_gap: int = 0):
        return {"separation": interface_scribbles(instances, rng=rng, scribble_width=scribble_width,
                                                  interface_coverage=interface_coverage, max_gap=max_gap)}

    def cost(self, labels, instances=None):
        sep = labels.get("separation")
        n = 0 if sep is None else int(blob_components(np.asarray(sep) > 0)[0].max(initial=0))
        px = 0 if sep is None else int(np.count_nonzero(sep))
        return {"painted_pixels": px, "strokes": n, "interface_pixels": px, "interfaces": n}


REGIME = Separation()
