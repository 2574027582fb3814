"""Weighted partial cross-entropy (Ke et al. 2020, eq. 3-5; METHOD 2).

For each task, the cross-entropy is averaged over the valid pixels of each
image (inside the ROI, not unlabelled), images not annotated for the task give
no loss, and the task's loss is the mean over the annotated images of the
batch. The total is the alpha-weighted sum over tasks. ``LOSSES`` maps a
task's ``loss`` name to its function, so new regimes add an entry.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..tasks import TaskSpec


def partial_cross_entropy(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                          annotated: torch.Tensor, class_weights: torch.Tensor | None = None
                          ) -> torch.Tensor | None:
    """Masked, class-weighted cross-entropy.

    Args:
        logits: (B, C, H, W) raw scores.
        target: (B, H, W) class ids (any value where ``valid`` is False).
        valid: (B, H, W) bool, pixels that count.
        annotated: (B,) bool, images annotated for this task.
        class_weights: (C,) or None.

    Returns the mean over annotated images of the per-image mean over valid
    pixels, or ``None`` when no image of the batch is annotated.
    """
    if not bool(annotated.any()):
        return None
    n_classes = logits.shape[1]
    target = target.clamp(0, n_classes - 1).long()
    ce = F.cross_entropy(logits.float(), target, weight=class_weights, reduction="none")
    validf = valid.float()
    per_image = (ce * validf).sum(dim=(1, 2)) / validf.sum(dim=(1, 2)).clamp(min=1.0)
    ann = annotated.float()
    return (per_image * ann).sum() / ann.sum()


LossFn = Callable[..., "torch.Tensor | None"]
LOSSES: dict[str, LossFn] = {"partial_ce": partial_cross_entropy}


def auto_class_weights(counts: np.ndarray, cap: float = 10.0) -> np.ndarray:
    """Class weights from pixel counts: sqrt of inverse frequency relative to
    the most frequent class, capped at ``cap``; unseen classes get 1."""
    counts = np.asarray(counts, dtype=np.float64)
    w = np.ones_like(counts)
    seen = counts > 0
    if seen.any():
        w[seen] = np.sqrt(counts[seen].max() / counts[seen])
    return np.minimum(w, cap)


def total_loss(outputs: dict[str, torch.Tensor], batch: dict, tasks: Sequence[TaskSpec],
               class_weights: dict[str, torch.Tensor | None]) -> tuple[torch.Tensor, dict[str, float]]:
    """Alpha-weighted sum of the task losses; also each task's value (NaN if absent)."""
    total = None
    parts: dict[str, float] = {}
    for t in tasks:
        loss = LOSSES[t.loss](outputs[t.name], batch["targets"][t.name], batch["valid"][t.name],
                              batch["annotated"][t.name], class_weights.get(t.name))
        if loss is None:
            parts[t.name] = float("nan")
            continue
        parts[t.name] = float(loss.detach())
        term = t.weight * loss
        total = term if total is None else total + term
    if total is None:   # no task annotated in this batch: a zero loss that keeps the graph
        total = sum(o.sum() * 0.0 for o in outputs.values())
    return total, parts
