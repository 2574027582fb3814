"""The training plan of each of our methods of the lazy suite (items, network, regimes), its training
config at a mode's budget, and the one loop that trains a plan."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from benchmarks.harness.data import Dataset
from benchmarks.harness.methods import MULTITASK_METHODS, PARTIAL_METHODS, Mode, variant_config
from benchmarks.harness.regimes import foreground_regime, partial_options, partial_regime, seeds_key, strong_key
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.simulate import annotation_cost, total_annotation_cost
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun


def train_config(mode: Mode, seed: int, variant: str = "default", steps: int | None = None) -> tuple[TrainConfig, dict]:
    """The training config of a run at the mode's budget (``steps`` instead of the mode's when given; no
    checkpoints), and the variant's network overrides."""
    config = TrainConfig(steps=steps or mode.steps, batch_size=mode.batch_size, patch_size=mode.patch_size,
                         device=mode.device, seed=seed, checkpoint_every=10**9, checkpoint_seconds=float("inf"))
    return variant_config(variant, config)


def training_plan(method: str, ds: Dataset, strong: set[int], mode: Mode, config: TrainConfig,
                  network: dict | None = None) -> tuple[TrainingPlan, dict]:
    """The training plan of a method (items, network, regimes), and the cost of the labels it used.

    Labels are keyed by the regimes' input keys. The single-task baselines put
    what they train on under the exact masks' key and train the foreground
    regime alone; mt and full train every regime whose labels the images have
    (the exact masks only on the strong images: all of them for full), mtr adds
    the partial-mask regime. The instance settings stay the defaults (no fit at the end of the run),
    so the suite's records compare with the earlier ones; ``benchmarks/instance_fit.py`` measures the
    fit, paired.
    """
    fg, seeds = strong_key(), seeds_key()
    items, used = [], []
    for i, s in enumerate(ds.train):
        seg_true = s.labels[fg]
        if method == "wl":
            lab = {fg: s.labels[seeds]}
            cost = {seeds: s.labels[seeds]}
        elif method == "sl":
            if i not in strong:
                continue
            lab = cost = {fg: seg_true}
        elif method == "pl":
            if s.pseudo is None:
                raise RuntimeError(f"{s.name}: no GrabCut pseudo-masks (the dataset was made without PL)")
            lab = {fg: seg_true if i in strong else s.pseudo}
            cost = {seeds: s.labels[seeds], fg: seg_true if i in strong else None}
        elif method == "fullst":
            lab = cost = {fg: seg_true}
        else:   # mt, mtr, full: every lazy label, the exact masks on the strong images only
            lab = {k: v if k != fg or i in strong else None for k, v in s.labels.items()}
            cost = lab
        annotated = {k: v is not None for k, v in lab.items()}
        items.append(LazyAnnotations(s.image, labels=dict(lab), name=s.name, annotated=annotated))
        used.append(annotation_cost(cost, s.instances))
    net = preset("cpu", **(network or {}))
    if method in MULTITASK_METHODS:
        opt_in = {}
        if method in PARTIAL_METHODS:
            partial = partial_regime()
            opt_in[partial.name] = partial_options(rounds=mode.rounds, lambda_train=mode.lambda_train)
        plan = TrainingPlan(items, network=net, config=config, opt_in=opt_in, fit_instances=False)
    else:
        plan = TrainingPlan(items, network=replace(net, multitask=False), config=config,
                            regimes=[foreground_regime()], fit_instances=False)
    return plan, total_annotation_cost(used)



def train(plan: TrainingPlan, at_steps: Callable[[TrainingRun, float], None] | None = None,
          every: Iterator[int] | None = None) -> tuple[TrainingRun, float]:
    """Train ``plan``; return the run and its training wall seconds. ``at_steps(run, train_s)`` is called
    after each step listed in ``every`` (its time is not counted as training)."""
    marks = set(every or ())
    t0 = time.perf_counter()
    paused = 0.0
    run = TrainingRun(plan)
    for report in run.run():
        if at_steps is not None and report.step in marks:
            marks.discard(report.step)
            p0 = time.perf_counter()
            at_steps(run, p0 - t0 - paused)
            paused += time.perf_counter() - p0
    return run, time.perf_counter() - t0 - paused
