"""Where the model is unsure: a per-pixel uncertainty map and a per-object score.

The measure (docs/method.md, "Uncertainty"): with ``p`` the foreground
probability (1 - P(background) of the foreground head) of each of a few
flipped passes of the network (the image, and the image flipped left-right;
four passes with ``passes=4``), each flipped back,

    uncertainty = ( H(mean p) + 2 * std(p) ) / 2

where ``H`` is the binary entropy in bits. Both terms lie in [0, 1]:

* ``H(mean p)`` is 1 where the model says 0.5 (it does not know whether the
  pixel is an object) and 0 where it is sure either way;
* ``2 * std(p)`` over the flipped passes is the disagreement of the network
  with itself: the network is not equivariant to flips, so on what it has
  learned well the passes agree, and where it extrapolates they drift apart
  (0: they agree; 1: half say 0 and half say 1). It catches the confident but
  unstable answers that the entropy alone misses.

Why these: they need no change to the network or its training (MC dropout
would need dropout layers; an ensemble, several trainings), they cost only the
passes of test-time augmentation (two by default), and they work with every
regime, since every model has a foreground head.

``heads_disagreement`` is a second signal used by the suggestions
(:mod:`.suggest`) but not in ``uncertainty``: where the seeds head (a region
well inside each object) says "object" much more strongly than the foreground
head, ``clip(2 * (P(seed) - P(foreground) - 0.5), 0, 1)``; the two heads
contradict each other there. Only strong contradictions count (a margin of
0.5): the seeds head is trained with class weights that favour its rare
object class, so its probability runs above the foreground head's over much
of the background of a well-trained model (measured: 0.25 on average on a
training image without the margin, 0.001 with it).

The per-object score is the mean uncertainty inside each predicted instance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .pipeline import segmentation_from_probabilities
from .tasks import FOREGROUND, SEEDS, heads_by_role
from .trained_model import LazyLabelsModel

#: The flips of the passes (the image's Y, X axes), by the number of passes.
PASSES = {1: ((),), 2: ((), (1,)), 4: ((), (0,), (1,), (0, 1))}


@dataclass
class Uncertainty:
    """What the model is unsure of on one image (every map Y, X float32 in [0, 1])."""

    foreground: np.ndarray                  # the mean foreground probability over the passes
    entropy: np.ndarray                     # binary entropy (bits) of ``foreground``
    flip_disagreement: np.ndarray           # 2 x the standard deviation of the passes' foreground probability
    heads_disagreement: np.ndarray          # clip(2 (P(seed) - P(foreground) - 0.5)); zeros without seeds
    instances: np.ndarray | None = None     # the predicted instances (int32), when asked for

    @property
    def uncertainty(self) -> np.ndarray:
        """The per-pixel measure: the mean of the entropy and the flip disagreement."""
        return 0.5 * (self.entropy + self.flip_disagreement)

    def object_scores(self) -> dict[int, float]:
        """Instance label -> its mean uncertainty (empty without instances)."""
        return object_scores(self.uncertainty, self.instances)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) in bits, 0 at p = 0 or 1, 1 at p = 0.5."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return (-(p * np.log2(p) + (1 - p) * np.log2(1 - p))).astype(np.float32)


def from_passes(foreground_passes: list[np.ndarray], seeds: np.ndarray | None = None) -> Uncertainty:
    """The maps from each pass's foreground probability (Y, X) and the mean seeds probability."""
    stack = np.stack([np.asarray(p, np.float32) for p in foreground_passes])
    mean = stack.mean(axis=0)
    spread = np.clip(2 * stack.std(axis=0), 0, 1).astype(np.float32)
    heads = (np.zeros_like(mean) if seeds is None
             else np.clip(2 * (np.asarray(seeds, np.float32) - mean - 0.5), 0, 1).astype(np.float32))
    return Uncertainty(mean, binary_entropy(mean), spread, heads)


def object_scores(uncertainty: np.ndarray, instances: np.ndarray | None) -> dict[int, float]:
    """Instance label -> the mean of ``uncertainty`` inside it."""
    if instances is None:
        return {}
    ids = np.unique(instances)
    ids = ids[ids > 0]
    means = ndimage.mean(uncertainty, labels=instances, index=ids) if len(ids) else []
    return {int(i): float(m) for i, m in zip(ids, means)}


def _not_background(probs: np.ndarray) -> np.ndarray:
    return 1.0 - probs[0]


def assess(model: LazyLabelsModel, image: np.ndarray, *, passes: int = 2, device: str | torch.device = "cpu",
           tile_size: int = 1024, instances: bool = True, ranges=None) -> Uncertainty:
    """The uncertainty of ``model`` on a raw YX or YXC image (``passes``: 2 or 4 flipped passes; 1, no
    flip, leaves ``flip_disagreement`` at 0); with ``instances`` also the predicted instances (the
    model's post-processing on the mean probabilities), for :meth:`Uncertainty.object_scores`.
    ``ranges``: the channels' normalisation ranges, when ``image`` is cut from a larger image."""
    if passes not in PASSES:
        raise ValueError(f"passes must be one of {sorted(PASSES)}, got {passes}")
    fg, total = [], {}
    for axes in PASSES[passes]:
        out = model.predict(np.ascontiguousarray(np.flip(image, axes)) if axes else image, device=device,
                            tile_size=tile_size, ranges=ranges)
        out = {k: np.flip(v, tuple(a + 1 for a in axes)) for k, v in out.items()}
        heads = heads_by_role(out, model.tasks)
        fg.append(_not_background(heads[FOREGROUND]))
        for k, v in out.items():
            total[k] = total.get(k, 0.0) + v / len(PASSES[passes])
    mean_heads = heads_by_role(total, model.tasks)
    seeds = _not_background(mean_heads[SEEDS]) if SEEDS in mean_heads else None
    result = from_passes(fg, seeds)
    if instances:
        result.instances = segmentation_from_probabilities(total, model.tasks, model.postprocess).instances
    return result
