"""Weighted partial cross-entropy (Ke et al. 2020, eq. 3-5; METHOD 2), and the
scribble loss with the blind-spot mixture reconstruction (ImPartial; METHOD 6).

For each task, the cross-entropy is averaged over the valid pixels of each
image (inside the ROI, not unlabelled), images not annotated for the task give
no loss, and the task's loss is the mean over the annotated images of the
batch. The total is the alpha-weighted sum over tasks. ``LOSSES`` maps a
task's ``loss`` name to its function, so new regimes add an entry; each is
called as ``fn(logits, target, valid, annotated, class_weights, task=...,
batch=...)`` (the task's :class:`~..tasks.TaskSpec` and the whole batch, for a
loss that needs more than its labels: the clean image and the blind spots).

A head whose classes are mixtures of components (``TaskSpec.components``)
has class probabilities that are sums of component probabilities; both losses
work on those.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..model import class_log_probabilities, component_probabilities
from ..tasks import TaskSpec


def _log_probabilities(logits: torch.Tensor, task: TaskSpec | None) -> torch.Tensor:
    """log P(class) (B, C, H, W): a plain log-softmax, or the log of the summed components."""
    if task is None:
        return torch.log_softmax(logits.float(), dim=1)
    return class_log_probabilities(logits, task.n_classes, task.components)


def partial_cross_entropy(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                          annotated: torch.Tensor, class_weights: torch.Tensor | None = None, *,
                          task: TaskSpec | None = None, batch: dict | None = None) -> torch.Tensor | None:
    """Masked, class-weighted cross-entropy.

    Args:
        logits: (B, C, H, W) raw scores (with ``task``: the task's head, whose
            classes may be mixtures of components).
        target: (B, H, W) class ids (any value where ``valid`` is False).
        valid: (B, H, W) bool, pixels that count.
        annotated: (B,) bool, images annotated for this task.
        class_weights: (C,) or None.
        task, batch: the task and the batch (unused here but for the task's components).

    Returns the mean over annotated images of the per-image mean over valid
    pixels, or ``None`` when no image of the batch is annotated.
    """
    if not bool(annotated.any()):
        return None
    logp = _log_probabilities(logits, task)
    n_classes = logp.shape[1]
    target = target.clamp(0, n_classes - 1).long()
    ce = F.nll_loss(logp, target, weight=class_weights, reduction="none")
    validf = valid.float()
    per_image = (ce * validf).sum(dim=(1, 2)) / validf.sum(dim=(1, 2)).clamp(min=1.0)
    ann = annotated.float()
    return (per_image * ann).sum() / ann.sum()


def class_balanced_cross_entropy(logp: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                                 class_weights: torch.Tensor | None) -> torch.Tensor | None:
    """``sum_k w_k * (sum of CE over the batch's valid pixels of class k) / (their number)``
    (ImPartial eq. 2 with a cross-entropy): each class counts by its weight, however few its
    pixels; classes without a valid pixel in the batch give nothing. None: no valid pixel."""
    n_classes = logp.shape[1]
    if not bool(valid.any()):
        return None
    target = target.clamp(0, n_classes - 1).long()
    nll = -logp.gather(1, target[:, None]).squeeze(1)
    t, v = target[valid], nll[valid]
    counts = torch.bincount(t, minlength=n_classes).to(v.dtype)
    sums = torch.zeros(n_classes, dtype=v.dtype, device=v.device).index_add_(0, t, v)
    w = torch.ones(n_classes, dtype=v.dtype, device=v.device) if class_weights is None else \
        class_weights.to(v.dtype)
    seen = counts > 0
    return (w[seen] * sums[seen] / counts[seen]).sum()


#: The fixed standard deviation of the mixture's components, on images normalised to 0..1: 1, as
#: in ImPartial's code (a Gaussian log-likelihood with log sigma = 0). Only the ratio of the mixture
#: weight to sigma^2 matters; sigma = 0.1 (weights 100x larger) did worse on the MIBI-like data.
MIXTURE_SIGMA = 1.0


def component_means(stats: torch.Tensor, rho: torch.Tensor, n_background: int) -> torch.Tensor:
    """Per-patch means of the mixture components (B, M, C).

    ``stats``: (B, M, C, H, W) per-pixel statistics, ``rho``: (B, M, H, W)
    memberships. Each component's mean is its statistic averaged over the
    patch, weighted by the membership (so a component's mean comes from the
    pixels it holds). The first ``n_background`` components model the
    background; the others' means are offsets from the background mean (the
    mean of the background components' means), which codes the prior that
    objects are brighter than the background (ImPartial).
    """
    w = rho[:, :, None]
    means = (stats * w).sum(dim=(3, 4)) / w.sum(dim=(3, 4)).clamp(min=1e-6)
    if 0 < n_background < means.shape[1]:
        background = means[:, :n_background].mean(dim=1, keepdim=True)
        means = torch.cat([means[:, :n_background], means[:, n_background:] + background], dim=1)
    return means


def mixture_reconstruction(logits: torch.Tensor, task: TaskSpec, clean: torch.Tensor,
                           blind: torch.Tensor, sigma: float = MIXTURE_SIGMA) -> torch.Tensor | None:
    """The blind-spot mixture loss (ImPartial eq. 1, METHOD 6), mean over the blind-spot pixels.

    ``L = sum_{i blind} sum_m rho_m(i) |x_i - tau_m|^2 / (2 sigma^2)``: every
    pixel is one of the components (fixed-variance Gaussians), with the
    membership ``rho`` the network predicts from the blind-spot input, and
    ``tau_m`` the per-patch mean of component m (:func:`component_means`).
    ``clean``: (B, C, H, W) the patch before the blind spots were put in;
    ``blind``: (B, H, W) bool, where they are.
    """
    if not bool(blind.any()):
        return None
    k, m = task.n_classes, task.components
    n_comp, channels = k * m, clean.shape[1]
    rho = component_probabilities(logits, k, m)
    b, _, h, w = rho.shape
    stats = logits[:, n_comp:n_comp + n_comp * channels].float().reshape(b, n_comp, channels, h, w)
    tau = component_means(stats, rho, n_background=m)
    sq = ((clean.float()[:, None] - tau[..., None, None]) ** 2).sum(dim=2)      # (B, M, H, W)
    per_pixel = (rho * sq).sum(dim=1) / (2.0 * sigma ** 2)
    return per_pixel[blind].mean()


def scribble_mixture_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                          annotated: torch.Tensor, class_weights: torch.Tensor | None = None, *,
                          task: TaskSpec, batch: dict) -> torch.Tensor | None:
    """ImPartial's joint loss (eq. 3): the class-balanced scribble cross-entropy plus
    ``task.self_supervised_weight`` times the blind-spot mixture loss.

    The scribble part (:func:`class_balanced_cross_entropy`) is taken over the
    stroke pixels (``valid``) of the batch, the classes weighted by
    ``class_weights`` (ImPartial: 0.45 each for one object class and the
    background). The mixture part runs on every image of the batch, needs the
    head's statistics (``task.statistics``) and the batch's ``clean`` patches
    and ``blind`` spots (the sampler adds them for a task with
    ``blind_spot > 0``), and is left out at weight 0 (ImPartial's "Base").
    """
    if not bool(annotated.any()):
        return None
    logp = class_log_probabilities(logits, task.n_classes, task.components)
    ann = annotated[:, None, None]
    total = class_balanced_cross_entropy(logp, target, valid & ann, class_weights)
    if task.self_supervised and task.statistics > 0 and "blind" in batch:
        blind = batch["blind"] & ann
        mix = mixture_reconstruction(logits, task, batch["clean"], blind)
        if mix is not None:
            mix = task.self_supervised_weight * mix
            total = mix if total is None else total + mix
    return total


LossFn = Callable[..., "torch.Tensor | None"]
#: The function of each loss name a task may give (:data:`~..tasks.LOSS_NAMES`, what a model file may hold).
LOSSES: dict[str, LossFn] = {"partial_ce": partial_cross_entropy, "scribble_mixture": scribble_mixture_loss}


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
        loss = LOSSES[t.loss](outputs[t.name].float(), batch["targets"][t.name].long(), batch["valid"][t.name],
                              batch["annotated"][t.name], class_weights.get(t.name), task=t, batch=batch)
        if loss is None:
            parts[t.name] = float("nan")
            continue
        parts[t.name] = float(loss.detach())
        term = t.weight * loss
        total = term if total is None else total + term
    if total is None:   # no task annotated in this batch: a zero loss that keeps the graph
        total = sum(o.sum() * 0.0 for o in outputs.values())
    return total, parts
