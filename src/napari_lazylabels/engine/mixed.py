"""Mixed regimes on purpose: which image carries which painted label kinds, and labels that
contradict each other on one pixel (an object claimed where a background stroke is).

A run may mix regimes freely (each image its own kind of labels); the sampler
keeps every regime in the batches (a task is drawn first, uniformly among the
tasks with annotated images, then an image annotated for it: see
:mod:`.training.sampling`), so a regime painted on one image in twenty still
gets its share of the patches. Contradicting labels are not averaged silently:
:func:`label_conflicts` counts them, and the training recipe warns with the counts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .annotations import LazyAnnotations
from .regimes import registry

def painted_kinds(items: Sequence[LazyAnnotations]) -> dict[str, list[str]]:
    """Image name -> the titles of the label kinds painted on it (blobs, interfaces, ...)."""
    out = {}
    for it in items:
        kinds = []
        for key, lab in it.labels.items():
            spec = registry.find_input(key)
            if spec is not None and lab is not None and np.size(lab) and np.any(lab):
                kinds.append(spec.title.lower())
        out[it.name] = kinds
    return out


def kinds_line(items: Sequence[LazyAnnotations], names: int = 3) -> str:
    """One phrase on which images carry which kinds, grouped by kind, when the images differ
    ('' otherwise), e.g. ``mixed regimes (blobs: 19 images; fg/bg scribbles: stroked)``."""
    groups: dict[str, list[str]] = {}
    for name, kinds in painted_kinds(items).items():
        groups.setdefault(" + ".join(kinds) or "nothing painted", []).append(name)
    if len(groups) <= 1:
        return ""
    parts = [f"{kind}: {', '.join(who)}" if len(who) <= names else f"{kind}: {len(who)} images"
             for kind, who in groups.items()]
    return "mixed regimes (" + "; ".join(parts) + ")"


def label_conflicts(items: Sequence[LazyAnnotations], n_classes: int = 1) -> list[tuple[str, str, int]]:
    """(image, what, pixels) for every image where labels contradict each other: an object claimed
    (a blob, a mask, the foreground mask: inputs that declare ``claims_objects``) on a background
    stroke (an input's ``background_value``), or an object claimed outside the exact masks (an input
    that declares ``exact_objects``) of an image traced with them. The regimes declare what their
    labels claim; nothing here names one."""
    out = []
    inputs = [i for i in registry.label_inputs() if not i.is_points]
    for it in items:
        labels = {k: np.asarray(v) for k, v in it.labels.items()
                  if v is not None and np.ndim(v) == 2 and np.shape(v) == it.shape}
        present = [i for i in inputs if i.key in labels]
        claims = [i for i in present if i.claims_objects]
        for stroke in present:
            value = stroke.background_value(n_classes)
            if value is None:
                continue
            bg = labels[stroke.key] == value
            for c in claims:
                n = int(np.count_nonzero(bg & (labels[c.key] > 0)))
                if n:
                    out.append((it.name, f"{c.title.lower()} on a background stroke", n))
        for exact in (i for i in present if i.exact_objects and labels[i.key].any()):
            outside = labels[exact.key] == 0
            for c in claims:
                if c is exact or c.binary:      # a foreground mask is image-level: it may be rough
                    continue
                n = int(np.count_nonzero((labels[c.key] > 0) & outside))
                if n:
                    out.append((it.name, f"{c.title.lower()} outside the {exact.title.lower()}", n))
    return out
