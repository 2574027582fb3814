"""Accuracy benchmark: lazy labels against every baseline of METHOD section 8, on easy and hard images.

    python benchmarks/accuracy.py --threads 1           # the full run: resumable, hours on 2 CPU cores
    python benchmarks/accuracy.py --quick               # about 10-15 min on 2 CPU cores
    python benchmarks/accuracy.py --report-only         # tables and figures from the results file

Methods, all with the same network size (the ``cpu`` preset: a plain U-Net for the single-task
baselines, the multi-task U-Net otherwise), the same training settings and the same number of steps,
on the same images:

    wl        single-task U-Net trained on the blobs as if they were masks
    sl        single-task U-Net trained on the few strong masks only
    pl        single-task U-Net on GrabCut pseudo-masks drafted from every blob
              (the strong masks where an image has them)
    mt        multi-task U-Net on lazy labels: blobs + interface scribbles on
              every image, strong masks on a few
    mtr       mt plus the recursive approximation task (Ke et al. 2021), final
              growth at inference
    full      full supervision, what a user tracing every object gives: the same
              multi-task U-Net with every label the traced instances give (exact
              masks on every image, the blobs and interfaces made from them), so
              it can learn separations too (the reference of the targets)
    fullst    the single-task U-Net on the exact masks of every image (foreground
              only; the old upper bound, a reference row)

Every run trains through the one training recipe (``napari_lazylabels.recipes.train``). The
benchmark names no regime: it finds them in the regime registry by the role of their head (the exact
masks are the foreground regime's input, the blobs the seeds regime's; the single-task baselines
train the foreground regime alone), and the recursive approximation of mtr is the opt-in regime whose
head gives partial masks. Each model is post-processed as its model file says
(``engine.pipeline.segment``: seeded watershed, or the final growth for mtr).

Data (``benchmarks/datasets.py``, shared with the other suites): the synthetic nuclei, HeLa,
E. coli (quick mode), and the hard sets phase/, em/, he/ of ../shared/data, split by frame,
section or image. Real training frames are cut into tiles; a tile is a training "image" for the
strong-label ratio. A ratio r gives exact masks to max(1, round(r * n)) of the n training images,
chosen among images that hold objects, nested (the 5 % set contains the 2.5 % set). Test frames are
predicted whole (tiled inference).

Metrics on the test images: foreground Dice (mean over images), GlaS object Dice and object
Hausdorff distance (px; means over images), AP50 and the AP sweep (TP / (TP + FP + FN) at IoU
0.50, 0.55, ..., 0.95, pooled over images; "AP 0.5-0.9" is the mean over 0.50-0.90), ImPartial's
mDice (each ground-truth object of 20 px or more against the predicted object overlapping it most,
pooled). Every model is also scored with test-time flips (the mean of the image and its three flips)
and, for the multi-task models, with instance post-processing tuned on its own strong training
images (never on test data; see :func:`tuned_instances`). Annotation cost of each setting (pixels
painted, brush strokes, objects traced exactly) comes from ``simulate.annotation_cost``.

Resumable: every finished run is one JSON line of ``benchmarks/results/accuracy_<mode>.jsonl``
(its key: data set, method, ratio, training seed, variant and budget); a rerun skips what is there
(a killed run loses the setting it was in). After each run the tables of docs/benchmarks.md (the
block between the mode's markers) and the figures are rewritten from that file. ``--variant`` runs
a method change (:data:`VARIANTS`) under its own name, for the comparisons of the method section.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from datasets import (CACHE, HARD, ROOT, Dataset, Sample, lazy_dataset, load_frames, seeds_key,
                      synthetic_dataset as _synthetic)
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.metrics import aggregate, best_overlap_scores, dice, pool_best_overlap, summarize
from napari_lazylabels.engine.pipeline import segment, segmentation_from_probabilities
from napari_lazylabels.engine.postprocess.settings import WATERSHED, PostProcessing
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.regimes.base import Regime
from napari_lazylabels.engine.simulate import annotation_cost, total_annotation_cost
from napari_lazylabels.engine.tasks import BOUNDARIES, FOREGROUND, PARTIAL
from napari_lazylabels.io.figures import overlay_rgb, pyplot
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

METHODS = ("wl", "sl", "pl", "mt", "mtr", "full", "fullst")
METHOD_NAMES = {"wl": "WL only", "sl": "SL only", "pl": "PL (GrabCut)", "mt": "multi-task",
                "mtr": "multi-task + recursive", "full": "full supervision (multi-task, every object traced)",
                "fullst": "full masks, single-task U-Net"}
SHORT_NAMES = {**METHOD_NAMES, "full": "full supervision", "fullst": "full, single-task"}
#: Methods whose data depend on the strong-label ratio; at 100 % SL and PL are the single-task full
#: supervision and mt is full supervision.
RATIO_METHODS = ("sl", "pl", "mt", "mtr")
#: Methods with a fixed ratio.
FIXED_RATIO = {"wl": 0.0, "full": 1.0, "fullst": 1.0}
#: Methods that train the multi-task network on the lazy labels (the others are single-task baselines),
#: and those of them that add the partial-mask (recursive approximation) regime.
MULTITASK_METHODS = ("mt", "mtr", "full")
PARTIAL_METHODS = ("mtr",)
#: The order in which the methods of one setting run (the targets compare mt with full first).
RUN_ORDER = ("mt", "full", "sl", "pl", "wl", "mtr", "fullst")
FULL_RATIOS = (0.025, 0.05, 0.10, 1.0)
TARGET_RATIO = 0.10
#: The IoU thresholds of the "AP 0.5-0.9" column.
SWEEP = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))
#: The Markdown file whose blocks between the markers the runs rewrite; the markers of each mode.
DOCS_FILE = ROOT / "docs" / "benchmarks.md"
MARKS = {"quick": ("<!-- accuracy:begin -->", "<!-- accuracy:end -->"),
         "full": ("<!-- accuracy-full:begin -->", "<!-- accuracy-full:end -->")}
MARK_BEGIN, MARK_END = MARKS["quick"]
#: Other suites of this benchmark, in their own modules: name -> module (``main(argv)``).
#: Other suites of this benchmark, in their own modules: name -> module (``main(argv)``).
SUITES = {"fgbg": "scribble_mixture", "points": "points_mask"}


# --- the regimes, found in the registry (the benchmark names none) ----------------------

def foreground_regime() -> Regime:
    """The regime of the exact masks: the one task of the single-task baselines."""
    regime = registry.regime_with_role(FOREGROUND)
    if regime is None:
        raise SystemExit("no registered regime has a foreground head")
    return regime


def strong_key() -> str:
    """The input key of the exact (strong) masks."""
    return foreground_regime().inputs[0].key


def boundaries_key() -> str | None:
    """The input key of the interface scribbles (None without such a regime)."""
    found = registry.input_with_role(BOUNDARIES)
    return None if found is None else found.key


def partial_regime() -> Regime:
    """The opt-in regime whose head gives partial masks (the recursive approximation of mtr)."""
    regime = next((r for r in registry.opt_in_regimes() if r.role == PARTIAL), None)
    if regime is None or regime.options is None:
        raise SystemExit("no registered opt-in regime has a partial-mask head with options")
    return regime


def partial_options(**settings) -> Any:
    """The options of the partial-mask regime (its defaults, with ``settings`` changed)."""
    return partial_regime().options(**settings)


# --- budgets, variants -------------------------------------------------------------------

@dataclass
class Mode:
    """One benchmark budget and its data."""

    name: str
    steps: int
    batch_size: int
    patch_size: int
    rounds: int
    datasets: tuple[str, ...]
    ratios: tuple[float, ...]          # ratios every ratio method runs at
    seeds: tuple[int, ...] = (0,)      # training seeds of the settings the targets compare
    synthetic_train: int = 40
    synthetic_test: int = 8
    sweep: dict[str, tuple[float, ...]] = field(default_factory=dict)  # extra ratios: dataset -> ratios (mt only)
    lambda_train: float = field(default_factory=lambda: partial_options().lambda_train)
    device: str = "cpu"                # where training and prediction run (--device)

    @property
    def budget(self) -> str:
        return f"{self.steps}x{self.batch_size}x{self.patch_size}r{self.rounds}"


MODES = {
    "quick": Mode("quick", steps=200, batch_size=4, patch_size=64, rounds=3,
                  datasets=("synthetic", "hela", "ecoli"), ratios=(0.10,), synthetic_test=4,
                  sweep={"synthetic": (0.025, 0.05, 1.0)}),
    # the defaults of `lazylabels train` (800 steps of 8 x 128 px), 10 rounds as the paper
    "full": Mode("full", steps=800, batch_size=8, patch_size=128, rounds=10,
                 datasets=(*HARD, "synthetic", "hela"), ratios=FULL_RATIOS, seeds=(0, 1, 2)),
}


#: Method changes measured against the defaults (``--variant NAME``): settings of the training
#: config (``train``), its augmentation (``augment``), the network preset (``network``) and the
#: post-processing (``postprocess``). ``default`` is the code's defaults.
VARIANTS: dict[str, dict[str, dict]] = {
    "default": {},
    "stain": {"augment": {"stain_jitter": 0.05}},
    "blur": {"augment": {"blur_probability": 0.3}},
    "elastic": {"augment": {"elastic_alpha": 2.0}},
    "aug": {"augment": {"stain_jitter": 0.05, "blur_probability": 0.3, "elastic_alpha": 2.0}},
    "cap30": {"train": {"class_weight_cap": 30.0}},
    "wide": {"network": {"base_channels": 24}},
}


def variant_config(name: str, config: TrainConfig) -> tuple[TrainConfig, dict]:
    """The training config of a variant, and the network overrides."""
    v = VARIANTS[name]
    config = replace(config, **v.get("train", {}))
    if v.get("augment"):
        config = replace(config, augment=replace(config.augment, **v["augment"]))
    return config, dict(v.get("network", {}))


# --- data --------------------------------------------------------------------------------

def synthetic_dataset(seed: int, mode: Mode, pseudo: bool = True) -> Dataset:
    """The synthetic set of a mode (data seed ``seed``)."""
    return _synthetic(seed, mode.synthetic_train, mode.synthetic_test, pseudo,
                      name="synthetic-s0" if mode.name == "quick" else "synthetic")


def real_dataset(family: str, pseudo: bool = True, mode: str = "quick") -> Dataset:
    """A real set with its lazy labels (see ``datasets.lazy_dataset``)."""
    return lazy_dataset(family, mode, pseudo)


def load(family: str, mode: Mode, pseudo: bool) -> Dataset:
    return synthetic_dataset(0, mode, pseudo) if family == "synthetic" else real_dataset(family, pseudo, mode.name)


def test_sets(records: list[dict], mode: Mode) -> dict[str, Dataset]:
    """The test images of the sets in ``records`` (for the overlays of a report from the results
    file alone: no labels simulated, no training images)."""
    out = {}
    for fam in dict.fromkeys(r["family"] for r in records):
        if fam == "synthetic":
            out[fam] = synthetic_dataset(0, replace(mode, synthetic_train=1), pseudo=False)
        else:
            fs = load_frames(fam, mode.name)
            out[fam] = Dataset(fam, fam, [], fs.test, fs.split, [])
    return out


# --- one run -----------------------------------------------------------------------------

def training_plan(method: str, ds: Dataset, strong: set[int], mode: Mode, config: TrainConfig,
                  network: dict | None = None) -> tuple[TrainingPlan, dict]:
    """The training plan of a method (items, network, regimes), and the cost of the labels it used.

    Labels are keyed by the regimes' input keys. The single-task baselines put
    what they train on under the exact masks' key and train the foreground
    regime alone; mt and full train every regime whose labels the images have
    (the exact masks only on the strong images: all of them for full), mtr adds
    the partial-mask regime.
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
        plan = TrainingPlan(items, network=net, config=config, opt_in=opt_in)
    else:
        plan = TrainingPlan(items, network=replace(net, multitask=False), config=config,
                            regimes=[foreground_regime()])
    return plan, total_annotation_cost(used)


def given_instances(sample: Sample) -> np.ndarray:
    """The objects a user's labels of a strong image determine: the exact mask cut by the interface
    scribbles into connected pieces, each grown back over the mask (what tuning may score against;
    not the ground truth, which a user does not have)."""
    mask = np.asarray(sample.labels[strong_key()]) > 0
    key = boundaries_key()
    cut = mask if key is None or key not in sample.labels else mask & ~(np.asarray(sample.labels[key]) > 0)
    pieces, _ = ndi.label(cut)
    return watershed(np.zeros(mask.shape, np.float32), markers=pieces, mask=mask).astype(np.int32)


#: The instance settings tried by :func:`tuned_instances`.
TUNING_GRID = {"probability_threshold": (None, 0.3, 0.4, 0.6, 0.7), "interface_threshold": (0.3, 0.5, 0.7)}
#: At most this many strong images are used for tuning (the first ones of the strong order).
TUNING_IMAGES = 16


def tuned_instances(model, ds: Dataset, strong: set[int], device: str = "cpu") -> tuple[PostProcessing, dict]:
    """The post-processing with the instance settings of :data:`TUNING_GRID` that give the best mean of
    AP50 and object Dice on the model's own strong training images (against :func:`given_instances`),
    and the scores of every setting tried. Never looks at test data."""
    chosen = [i for i in ds.order if i in strong][:TUNING_IMAGES]
    probs = [(segment(model, ds.train[i].image, device=device).probabilities, given_instances(ds.train[i]))
             for i in chosen]
    scores = {}
    best, best_score = model.postprocess, -1.0
    for pt in TUNING_GRID["probability_threshold"]:
        for it in TUNING_GRID["interface_threshold"]:
            pp = replace(model.postprocess, instances=replace(model.postprocess.instances,
                                                                probability_threshold=pt, interface_threshold=it))
            agg = aggregate([summarize(segmentation_from_probabilities(p, model.tasks, pp).instances, truth)
                             for p, truth in probs])
            score = 0.5 * (agg["ap50"] + agg["object_dice"])
            scores[f"{pt}/{it}"] = round(score, 4)
            if score > best_score + 1e-9:
                best, best_score = pp, score
    return best, scores


def score(predictions: list[np.ndarray], ds: Dataset) -> dict:
    """Every metric of the test images' predicted instance maps."""
    summaries = [summarize(pred, truth) for pred, (_, _, truth) in zip(predictions, ds.test)]
    agg = aggregate(summaries)
    pooled = pool_best_overlap([best_overlap_scores(pred, truth) for pred, (_, _, truth) in
                                zip(predictions, ds.test)])
    return {"dice": agg["dice"], "ap50": agg["ap50"], "ap75": agg["ap75"],
            "ap_sweep": float(np.mean([agg["ap"][t] for t in SWEEP])),
            "ap": {f"{t:.2f}": float(v) for t, v in agg["ap"].items()},
            "object_dice": agg["object_dice"], "object_hausdorff": agg["object_hausdorff"],
            "mdice": pooled["mdice"], "miou": pooled["miou"], "n_pred": int(agg["n_pred"]), "n_gt": int(agg["n_gt"])}


def evaluate(model, ds: Dataset, strong: set[int], multitask: bool, tta: bool = True,
             tune: bool = True, device: str = "cpu") -> tuple[dict, dict, list]:
    """The metrics with the model's own post-processing, and the variants: ``flips`` (test-time
    flips), ``tuned`` (instance settings tuned on the strong training images, multi-task models),
    ``watershed_seeds`` (mtr: watershed seeds from the partial-mask head instead of the final growth)."""
    partial_head = any(t.role == PARTIAL for t in model.tasks)
    variants: dict[str, dict] = {}
    plain, flips, ws, probs = [], [], [], []
    for _, image, _ in ds.test:
        result = segment(model, image, device=device)
        plain.append(result.instances)
        probs.append(result.probabilities)
        if partial_head:
            watershed_pp = PostProcessing(method=WATERSHED, instances=replace(model.postprocess.instances,
                                                                              seed_source=PARTIAL))
            ws.append(segmentation_from_probabilities(result.probabilities, model.tasks, watershed_pp).instances)
        if tta:
            flips.append(segment(model, image, device=device,
                                 postprocess=replace(model.postprocess, flips=True)).instances)
    metrics = score(plain, ds)
    if ws:
        variants["watershed_seeds"] = score(ws, ds)
    if flips:
        variants["flips"] = score(flips, ds)
    if tune and multitask and strong:
        pp, tried = tuned_instances(model, ds, strong, device)
        tuned = [segmentation_from_probabilities(p, model.tasks, pp).instances for p in probs]
        variants["tuned"] = {**score(tuned, ds), "settings": asdict(pp.instances), "tried": tried}
    return metrics, variants, plain


def run_key(ds: str, method: str, ratio: float, seed: int, variant: str, budget: str) -> str:
    return f"{ds}/{method}/{ratio:g}/s{seed}/{variant}/{budget}"


def ratio_of(method: str, ratio: float | None) -> float:
    return FIXED_RATIO.get(method, ratio if ratio is not None else TARGET_RATIO)


def strong_of(method: str, ds: Dataset, ratio: float) -> set[int]:
    if method in ("full", "fullst"):
        return set(range(len(ds.train)))
    return ds.strong_set(ratio) if method != "wl" else set()


def run_one(method: str, ds: Dataset, ratio: float, mode: Mode, log, seed: int = 0, variant: str = "default",
            tta: bool = True) -> dict:
    strong = strong_of(method, ds, ratio)
    config = TrainConfig(steps=mode.steps, batch_size=mode.batch_size, patch_size=mode.patch_size,
                         device=mode.device, seed=seed, checkpoint_every=10**9, checkpoint_seconds=float("inf"))
    config, network = variant_config(variant, config)
    plan, cost = training_plan(method, ds, strong, mode, config, network)
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    run = TrainingRun(plan)
    for _ in run.run():
        pass
    train_s = time.perf_counter() - t0
    model = run.model()
    metrics, variants, predictions = evaluate(model, ds, strong, method in MULTITASK_METHODS, tta=tta,
                                                device=mode.device)
    record = {
        "key": run_key(ds.name, method, ratio, seed, variant, mode.budget),
        "dataset": ds.name, "family": ds.family, "method": method, "ratio": ratio, "seed": seed,
        "variant": variant, "budget": mode.budget, "steps": run.step, "batch_size": mode.batch_size,
        "patch_size": mode.patch_size, "rounds": mode.rounds if method in PARTIAL_METHODS else 0,
        "n_strong": len(strong), "n_train": len(ds.train), "device": mode.device,
        "train_s": round(train_s, 1), "total_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1), **metrics, "variants": variants, "cost": cost,
        "config": {"augment": asdict(config.augment), "class_weight_cap": config.class_weight_cap,
                   "network": plan.network.to_dict()},
        "load_start": round(load0, 2), "load_end": round(os.getloadavg()[0], 2),
    }
    rounds = run.hooks.get(partial_regime().name) if method in PARTIAL_METHODS else None
    if rounds is not None:
        curve = []
        for cls_maps in rounds.rounds:
            d = [dice(c > 0, s.instances > 0) for c, s in zip(cls_maps, ds.train) if c is not None and
                 s.has_objects]
            curve.append(float(np.mean(d)))
        record["approximation_dice"] = curve
        record["round_steps"] = list(rounds.round_steps)
    log(f"{record['key']:44s} Dice {metrics['dice']:.3f} AP50 {metrics['ap50']:.3f} "
        f"objDice {metrics['object_dice']:.3f} mDice {metrics['mdice']:.3f} "
        f"Haus {metrics['object_hausdorff']:.1f}  [{record['total_s']:.0f} s, load {load0:.1f}]"
        + "".join(f"  {k}: AP50 {v['ap50']:.3f} objDice {v['object_dice']:.3f}" for k, v in variants.items()))
    record["_predictions"] = predictions
    return record


def queue(mode: Mode, families: list[str], methods: list[str], seeds: list[int] | None,
          ratios: list[float] | None) -> list[tuple[str, str, float, int]]:
    """Every (family, method, ratio, seed) of a mode, the settings the targets compare first: the hard
    sets at the target ratio and full supervision, every method, seed 0; then the other seeds; then
    the other ratios (seed 0); then the easy sets the same way."""
    out: list[tuple[str, str, float, int]] = []
    seeds = list(mode.seeds if seeds is None else seeds)
    hard = [f for f in families if f in HARD]
    easy = [f for f in families if f not in HARD]
    target = TARGET_RATIO if TARGET_RATIO in mode.ratios else mode.ratios[0]
    order = [m for m in RUN_ORDER if m in methods]

    def at_target(fams, seed):
        return [(f, m, ratio_of(m, target), seed) for m in order for f in fams]

    def other_ratios(fams):
        runs = []
        for r in sorted(set(mode.ratios) - {target}):
            for m in order:
                if m not in RATIO_METHODS or (r >= 1.0 and m in ("sl", "pl", "mt")):
                    continue     # at 100 %: sl and pl are fullst, mt is full
                runs += [(f, m, r, seeds[0]) for f in fams]
        for f in fams:
            runs += [(f, "mt", r, seeds[0]) for r in mode.sweep.get(f, ()) if r not in mode.ratios and "mt" in order]
        return runs

    for fams in (hard, easy):
        for seed in seeds:
            out += at_target(fams, seed)
        out += other_ratios(fams)
    if ratios is not None:
        out = [q for q in out if q[1] in FIXED_RATIO or any(abs(q[2] - r) < 1e-9 for r in ratios)]
    return list(dict.fromkeys(out))


# --- reporting ---------------------------------------------------------------------------

METRICS = ("dice", "object_dice", "ap50", "ap_sweep", "mdice", "object_hausdorff")
METRIC_NAMES = {"dice": "Dice", "object_dice": "object Dice", "ap50": "AP50", "ap_sweep": "AP 0.5-0.9",
                "mdice": "mDice", "object_hausdorff": "Hausdorff (px)"}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray([v for v in values if v is not None], float)
    if not len(a):
        return float("nan"), 0.0
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def rows_of(records: list[dict], family: str, variant: str = "default", budget: str | None = None) -> list[dict]:
    """Records of a family (one variant and budget) averaged over seeds, per (method, ratio)."""
    sel = [r for r in records if r["family"] == family and r.get("variant", "default") == variant and
           (budget is None or r.get("budget") == budget)]
    keys = sorted({(r["method"], r["ratio"]) for r in sel}, key=lambda k: (METHODS.index(k[0]), k[1]))
    rows = []
    for method, ratio in keys:
        rs = [r for r in sel if r["method"] == method and r["ratio"] == ratio]
        row = {"method": method, "ratio": ratio, "n": len(rs), "n_strong": rs[0]["n_strong"],
               "n_train": rs[0]["n_train"], "seeds": sorted(r.get("seed", 0) for r in rs),
               "train_s": float(np.mean([r["train_s"] for r in rs]))}
        for k in METRICS:
            row[k], row[k + "_sd"] = _mean_sd([r.get(k) for r in rs])
        for k in ("painted_pixels", "strokes", "objects_traced"):
            row[k] = float(np.mean([r["cost"].get(k, 0) for r in rs]))
        for v in ("flips", "tuned", "watershed_seeds"):
            vs = [r.get("variants", {}).get(v) or r.get(v) for r in rs]
            vs = [x for x in vs if x]
            if vs:
                row[v] = {k: _mean_sd([x.get(k) for x in vs]) for k in METRICS}
        rows.append(row)
    return rows


def _fmt(row: dict, k: str, digits: int = 3) -> str:
    v = row.get(k)
    if v is None or not np.isfinite(v):
        return "–"
    sd = row.get(k + "_sd", 0.0)
    return f"{v:.{digits}f}" + (f" ± {sd:.{digits}f}" if row["n"] > 1 else "")


def _strong_text(r: dict) -> str:
    strong = f"{r['n_strong']}/{r['n_train']}"
    if r["method"] in RATIO_METHODS:
        actual = r["n_strong"] / max(r["n_train"], 1)
        strong += (f" ({100 * r['ratio']:g} %)" if abs(actual - r["ratio"]) <= 0.02 else
                   f" ({100 * actual:.0f} %; {100 * r['ratio']:g} % asked)")
    return strong


def _beyond(a: dict, b: dict, k: str, margin: float = 0.0) -> tuple[float, float, bool]:
    """Difference a - b of metric k, the combined seed spread, and whether the difference exceeds
    ``margin`` and the spread (sqrt(sd_a^2 + sd_b^2); 0 with one seed each)."""
    d = a[k] - b[k]
    spread = float(np.hypot(a.get(k + "_sd", 0.0), b.get(k + "_sd", 0.0)))
    return d, spread, bool(d >= margin and d > spread)


def targets(records: list[dict], families: list[str], budget: str | None = None) -> list[str]:
    """The issue's targets on the records (means ± sd over seeds), one line each; a target whose runs
    are not in the records yet says so."""
    lines, improved = [], []
    todo = "**not measured yet**"
    for fam in families:
        rows = {(r["method"], r["ratio"]): r for r in rows_of(records, fam, budget=budget)}
        full = rows.get(("full", 1.0))
        mts = [r for (m, ratio), r in rows.items() if m == "mt" and ratio <= TARGET_RATIO + 1e-9]
        if not mts:
            lines.append(f"- {fam}: {todo} (no multi-task run at <= {100 * TARGET_RATIO:g} % strong images)")
            continue
        mt = max(mts, key=lambda r: r["ratio"])   # the largest ratio <= 10 %
        pct = f"{100 * mt['ratio']:g} %"
        actual = mt["n_strong"] / max(mt["n_train"], 1)
        if abs(actual - mt["ratio"]) > 0.02:
            pct += f" (asked; {mt['n_strong']}/{mt['n_train']} = {100 * actual:.0f} % given, the fewest possible)"
        if full is None:
            lines.append(f"- {fam}: multi-task at {pct} against full supervision: {todo} (no full-supervision run)")
        else:
            seeds = f"{mt['n']} seed(s) vs {full['n']}"
            for k in ("dice", "ap50"):
                rel = mt[k] / max(full[k], 1e-9)
                lines.append(f"- {fam}: multi-task at {pct} reaches {rel:.3f}x the {METRIC_NAMES[k]} of full "
                             f"supervision ({_fmt(mt, k)} vs {_fmt(full, k)}; {seeds}): "
                             f"**{'met' if rel >= 0.95 else 'missed'}** (target >= 0.95x)")
        for base in ("sl", "pl", "wl"):
            b = rows.get((base, mt["ratio"])) or rows.get((base, 0.0))
            if b is None:
                lines.append(f"  - beats {SHORT_NAMES[base]}: {todo}")
                continue
            parts, ok = [], True
            for k in ("ap50", "object_dice"):
                d, spread, good = _beyond(mt, b, k, 0.03)
                ok &= good
                parts.append(f"{METRIC_NAMES[k]} {d:+.3f} (spread {spread:.3f})")
            one = " (one seed each: no spread yet)" if mt["n"] == 1 and b["n"] == 1 else ""
            lines.append(f"  - beats {SHORT_NAMES[base]} by " + ", ".join(parts) +
                         f": **{'met' if ok else 'missed'}** (target +0.03 beyond the spread){one}")
        mtr = rows.get(("mtr", mt["ratio"]))
        if mtr is None:
            lines.append(f"  - recursive approximation vs multi-task at {pct}: {todo}")
        else:
            parts, better = [], False
            for k in ("ap50", "object_dice"):
                d, spread, good = _beyond(mtr, mt, k)
                better |= good
                parts.append(f"{METRIC_NAMES[k]} {d:+.3f} (spread {spread:.3f})")
            improved.append(better)
            lines.append(f"  - recursive approximation vs multi-task at {pct}: " + ", ".join(parts) +
                         f" ({'improves beyond the spread' if better else 'no improvement beyond the spread'})")
    n = sum(improved)
    verdict = "met" if n >= 2 else "missed" if len(families) - len(improved) + n < 2 else "not measured yet"
    lines.append(f"- recursive approximation improves AP50 or object Dice beyond the seed spread on {n} of "
                 f"{len(improved)} sets measured ({len(families)} in all): **{verdict}** (target: at least two)")
    return lines


def table(rows: list[dict]) -> list[str]:
    out = ["| method | strong images | n | " + " | ".join(METRIC_NAMES[k] for k in METRICS) +
           " | painted px | strokes | objects traced |",
           "|---|---|---|" + "---|" * len(METRICS) + "---|---|---|"]
    for r in rows:
        out.append(f"| {SHORT_NAMES[r['method']]} | {_strong_text(r)} | {r['n']} | " +
                   " | ".join(_fmt(r, k, 1 if k == "object_hausdorff" else 3) for k in METRICS) +
                   f" | {r['painted_pixels']:.0f} | {r['strokes']:.0f} | {r['objects_traced']:.0f} |")
    return out


def variant_lines(rows: list[dict], name: str, title: str) -> list[str]:
    """One line per row with the metrics of the evaluation variant ``name``, next to the plain ones."""
    found = [r for r in rows if name in r]
    if not found:
        return []
    out = ["", title, "", "| method | strong images | n | Dice | object Dice | AP50 | AP 0.5-0.9 | mDice |",
           "|---|---|---|---|---|---|---|---|"]
    for r in found:
        v = r[name]
        cells = []
        for k in ("dice", "object_dice", "ap50", "ap_sweep", "mdice"):
            m, sd = v[k]
            cells.append(f"{m:.3f} ({m - r[k]:+.3f})" if np.isfinite(m) else "–")
        out.append(f"| {SHORT_NAMES[r['method']]} | {_strong_text(r)} | {r['n']} | " + " | ".join(cells) + " |")
    return out


def method_changes(records: list[dict]) -> list[str]:
    """The variants (method changes) against the defaults at the same budget, per set and method."""
    others = [r for r in records if r.get("variant", "default") != "default"]
    if not others:
        return []
    out = ["### Method changes (variants against the defaults, same budget, same seeds)", "",
           "| set | method | budget | variant | n | Dice | object Dice | AP50 | mDice | default: Dice | "
           "object Dice | AP50 | mDice |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["family"], r["method"], r["ratio"], r["budget"], r["variant"]) for r in others})
    for fam, method, ratio, budget, variant in keys:
        mine = [r for r in others if (r["family"], r["method"], r["ratio"], r["budget"], r["variant"]) ==
                (fam, method, ratio, budget, variant)]
        seeds = {r["seed"] for r in mine}
        base = [r for r in records if r.get("variant", "default") == "default" and r["family"] == fam and
                r["method"] == method and r["ratio"] == ratio and r["budget"] == budget and r["seed"] in seeds]
        cells = []
        for group in (mine, base):
            for k in ("dice", "object_dice", "ap50", "mdice"):
                m, sd = _mean_sd([r.get(k) for r in group])
                cells.append("–" if not group or not np.isfinite(m) else f"{m:.3f}" + (f" ± {sd:.3f}" if len(group) > 1
                                                                                      else ""))
        out.append(f"| {fam} | {SHORT_NAMES[method]} {100 * ratio:g} % | {budget} | {variant} | {len(mine)} | "
                   + " | ".join(cells) + " |")
    return out + [""]


def write_csv(path: Path, records: list[dict]) -> None:
    cols = ["key", "dataset", "family", "method", "ratio", "seed", "variant", "budget", "n_strong", "n_train",
            "steps", "dice", "object_dice", "ap50", "ap75", "ap_sweep", "mdice", "miou", "object_hausdorff",
            "n_pred", "n_gt", "painted_pixels", "strokes", "objects_traced", "train_s", "total_s", "cpu_s",
            "load_start", "load_end"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in records:
            flat = {**r, **{k: r["cost"].get(k, 0) for k in ("painted_pixels", "strokes", "objects_traced")}}
            w.writerow([flat.get(c, "") for c in cols])


COLOURS = {"sl": "tab:orange", "pl": "tab:green", "mt": "tab:blue", "mtr": "tab:purple", "wl": "tab:red",
           "full": "black", "fullst": "tab:gray"}


def plot_ratio(path: Path, records: list[dict], families: list[str], budget: str | None = None) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, len(families), figsize=(4.2 * len(families), 6.4), squeeze=False)
    for j, fam in enumerate(families):
        rows = rows_of(records, fam, budget=budget)
        for i, metric in enumerate(("dice", "ap50")):
            ax = axes[i, j]
            for m in RATIO_METHODS:
                pts = [(r["ratio"], r[metric], r[metric + "_sd"]) for r in rows if r["method"] == m]
                if m in ("sl", "pl"):
                    pts += [(1.0, r[metric], r[metric + "_sd"]) for r in rows if r["method"] == "fullst"]
                if m == "mt":
                    pts += [(1.0, r[metric], r[metric + "_sd"]) for r in rows if r["method"] == "full"]
                if pts:
                    x, y, e = zip(*sorted(pts))
                    ax.errorbar([100 * v for v in x], y, yerr=e, fmt="o-", color=COLOURS[m], label=SHORT_NAMES[m],
                                capsize=2)
            for m, ls in (("wl", ":"), ("full", "--"), ("fullst", "-.")):
                for r in rows:
                    if r["method"] == m:
                        ax.axhline(r[metric], color=COLOURS[m], ls=ls, lw=1, label=SHORT_NAMES[m])
            ax.set_xscale("log")
            ax.set_xticks([2.5, 5, 10, 100])
            ax.set_xticklabels(["2.5", "5", "10", "100"])
            ax.set_xlabel("images with strong masks (%)")
            ax.set_ylabel(METRIC_NAMES[metric])
            ax.set_title(fam, fontsize=10)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_effort(path: Path, records: list[dict], families: list[str], budget: str | None = None) -> None:
    """AP50 against the annotation effort (pixels painted), every method and ratio."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(families), figsize=(4.2 * len(families), 3.6), squeeze=False)
    for j, fam in enumerate(families):
        ax = axes[0, j]
        for r in rows_of(records, fam, budget=budget):
            ax.errorbar(r["painted_pixels"], r["ap50"], yerr=r["ap50_sd"], fmt="o", color=COLOURS[r["method"]],
                        capsize=2)
            label = SHORT_NAMES[r["method"]] + (f" {100 * r['ratio']:g}%" if r["method"] in RATIO_METHODS else "")
            ax.annotate(label, (r["painted_pixels"], r["ap50"]), fontsize=5, xytext=(3, 2),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("pixels painted (all training images)")
        ax.set_ylabel("AP50")
        ax.set_title(fam, fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_rounds(path: Path, records: list[dict], families: list[str]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for fam in families:
        rs = [r for r in records if r["family"] == fam and r["method"] == "mtr" and "approximation_dice" in r and
              r.get("variant", "default") == "default"]
        if not rs:
            continue
        near = [r["ratio"] for r in rs if r["ratio"] <= TARGET_RATIO + 1e-9]
        ratio = max(near) if near else rs[0]["ratio"]
        sel = [r for r in rs if r["ratio"] == ratio]
        n = min(len(r["approximation_dice"]) for r in sel)
        curves = np.array([r["approximation_dice"][:n] for r in sel])
        given = 100 * sel[0]["n_strong"] / max(sel[0]["n_train"], 1)
        ax.plot(range(n), curves.mean(0), "o-", label=f"{fam} ({given:.0f} % strong)")
        ax.set_xticks(range(n))
    ax.set_xlabel("round (0 = the blobs)")
    ax.set_ylabel("mean Dice of approximations\nto ground truth (training images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def overlay_window(truth: np.ndarray, size: int = 256) -> tuple[slice, slice]:
    """A ``size`` x ``size`` window around the most crowded region of a ground-truth map."""
    h, w = truth.shape
    size = min(size, h, w)
    dens = np.pad(np.cumsum(np.cumsum((truth > 0).astype(np.int64), 0), 1), ((1, 0), (1, 0)))
    best, y0, x0 = -1, 0, 0
    for y in range(0, h - size + 1, 32):
        for x in range(0, w - size + 1, 32):
            s = dens[y + size, x + size] - dens[y, x + size] - dens[y + size, x] + dens[y, x]
            if s > best:
                best, y0, x0 = s, y, x
    return slice(y0, y0 + size), slice(x0, x0 + size)


def prediction_file(mode: Mode, key: str) -> Path:
    return CACHE / "predictions" / mode.name / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".npz")


def plot_overlays(path: Path, records: list[dict], datasets: dict[str, Dataset], mode: Mode, ratio: float) -> None:
    """Predicted and true outlines on a crowded window of the first test image, per set and method."""
    plt = pyplot()
    shown = list(datasets.values())
    methods = [m for m in METHODS if any(r["method"] == m for r in records)]
    fig, axes = plt.subplots(len(shown), len(methods), figsize=(max(2.6 * len(methods), 6.0), 2.8 * len(shown)),
                             squeeze=False)
    for i, ds in enumerate(shown):
        _, image, truth = ds.test[0]
        win = overlay_window(truth)
        for j, m in enumerate(methods):
            ax = axes[i, j]
            ax.set_axis_off()
            want = ratio_of(m, ratio)
            cand = [r for r in records if r["dataset"] == ds.name and r["method"] == m and
                    abs(r["ratio"] - want) < 1e-9 and r.get("variant", "default") == "default" and
                    r.get("seed", 0) == 0 and r.get("budget", mode.budget) == mode.budget]
            f = prediction_file(mode, cand[0]["key"]) if cand and "key" in cand[0] else None
            if not cand or f is None or not f.exists():
                continue
            pred = np.load(f)["instances"]
            shown_image = image[win] if image.ndim == 2 else image[win + (slice(None),)]
            ax.imshow(overlay_rgb(shown_image, pred, reference=truth[win]))
            ax.set_title(f"{ds.family}: {SHORT_NAMES[m]}\nDice {cand[0]['dice']:.3f} AP50 {cand[0]['ap50']:.3f}",
                         fontsize=7)
    fig.suptitle(f"first test image: predicted (red) and true (green) outlines; {100 * ratio:g} % strong labels",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), {torch.get_num_threads()} torch thread(s), "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def markdown(records: list[dict], mode: Mode, command: str) -> str:
    begin, end = MARKS[mode.name]
    budget = mode.budget
    main = [r for r in records if r.get("budget", budget) == budget]
    families = [f for f in (*HARD, "synthetic", "hela", "ecoli") if any(r["family"] == f for r in main)]
    default = [r for r in main if r.get("variant", "default") == "default"]
    wall = sum(r["total_s"] for r in default)
    loads = [r.get("load_start") for r in default if r.get("load_start") is not None]
    dates = sorted(r["date"] for r in default if r.get("date"))
    out = [begin, "",
           f"Generated by `{command}` ({mode.name} mode) from `benchmarks/results/accuracy_{mode.name}.jsonl`: "
           f"{len(default)} runs at the defaults" + (f" ({dates[0][:10]} to {dates[-1][:10]})" if dates else "") +
           f", {wall / 3600:.1f} h of training and scoring in all ({wall / max(len(default), 1) / 60:.1f} min a run), "
           f"on {default[-1].get('machine', '?') if default else '?'}"
           + (f"; load average at the start of a run {min(loads):.1f}-{max(loads):.1f} (the machine was shared)"
              if loads else "") + ".", "",
           f"Training budget of every run: {mode.steps} steps, batch {mode.batch_size} x "
           f"{mode.patch_size}x{mode.patch_size} px (the defaults of `lazylabels train`), Adam with warm-up and "
           "cosine decay, the `cpu` network preset (multi-task U-Net for mt, mtr and full supervision, the plain "
           f"U-Net of the same size otherwise); recursive approximation: {mode.rounds} rounds, lambda_train "
           f"{mode.lambda_train}, lambda_final {partial_options().lambda_final}. Where a row has n > 1 runs, they "
           "differ in the training seed only (same data, same labels): mean ± sd.", "",
           "Data and split:", ""]
    for fam in families:
        split = next((r.get("split") for r in main if r["family"] == fam and r.get("split")), "")
        out.append(f"- **{fam}**: {split}")
    hard = [f for f in HARD if f in mode.datasets]
    out += ["", "### Targets", "", f"On the hard sets ({', '.join(hard)}), from the runs so far." if hard else
            "The targets on these sets:", "", *targets(default, hard or families, budget), ""]
    for fam in families:
        rows = rows_of(default, fam, budget=budget)
        if not rows:
            continue
        n_gt = next((r["n_gt"] for r in default if r["family"] == fam), 0)
        out += [f"### {fam}", "", f"{n_gt} test objects.", "", *table(rows)]
        out += variant_lines(rows, "flips", "With test-time flips (difference to the row above in brackets):")
        out += variant_lines(rows, "tuned", "With the instance settings tuned on each model's own strong "
                                            "training images (never on test data):")
        out += variant_lines(rows, "watershed_seeds", "Multi-task + recursive with watershed instances seeded by "
                                                      "the approximation head (instead of the final growth):")
        rounds = [r for r in default if r["family"] == fam and "approximation_dice" in r]
        if rounds:
            r0 = rounds[0]
            out += ["", f"Mean Dice of the approximations to the ground truth over the rounds ({r0['key']}): "
                    + " → ".join(f"{v:.3f}" for v in r0["approximation_dice"])]
        out.append("")
    out += method_changes(records)
    stem = "accuracy" if mode.name == "quick" else f"accuracy_{mode.name}"
    out += [f"![accuracy against the strong-label ratio](img/{stem}_vs_ratio.png)", "",
            f"![accuracy against the annotation effort](img/{stem}_vs_effort.png)", "",
            f"![approximation quality over rounds](img/{stem}_rounds.png)", "",
            f"![example overlays](img/{stem}_overlays.png)", "", end]
    return "\n".join(out)


def write_docs(path: Path, block: str, begin: str = MARK_BEGIN, end: str = MARK_END) -> None:
    """Put ``block`` between the markers ``begin`` and ``end`` of ``path`` (appended when they are not there)."""
    if path.exists():
        text = path.read_text()
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1]
            path.write_text(head + block + tail)
            return
        path.write_text(text.rstrip("\n") + "\n\n" + block + "\n")
        return
    path.write_text("## Accuracy (`benchmarks/accuracy.py`)\n\n" + block + "\n")


def append_record(path: Path, record: dict) -> None:
    """One JSON line more in the results file; a line a kill cut short (no newline at its end) is
    closed first, so it stays the only line lost."""
    cut = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "a") as fh:
        fh.write(("\n" if cut else "") + json.dumps(record, default=float) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_results(path: Path) -> list[dict]:
    """The runs of a results file, one per key (the first line of a key: two workers sharing the file
    may both have run a setting)."""
    if not path.exists():
        return []
    out: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:      # a line cut short by a kill
                continue
            out.setdefault(rec.get("key", f"#{len(out)}"), rec)
    return list(out.values())


def suite_options(ap: argparse.ArgumentParser) -> None:
    """The options every suite of this benchmark shares."""
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument("--report-only", action="store_true", help="rewrite the docs block from the results file")


def stopwatch(threads: int):
    """Set the torch threads and return a logger that stamps each line with the seconds since now."""
    torch.set_num_threads(max(1, threads))
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {msg}", file=sys.stderr, flush=True)
    return log


def run_suite(path: Path, names, pending, load, run, extra: dict, log) -> None:
    """The resumable loop of a suite: for each data set, the jobs ``pending(name, done_keys)`` not yet in
    the results file are run (``run(dataset, job)`` -> a record with its "key"), each appended as one JSON
    line with ``extra``; the data set is loaded (``load(name)``) only when it has work left."""
    done = {r["key"] for r in read_results(path)}
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        todo = pending(name, done)
        if not todo:
            continue
        ds = load(name)
        log(f"data ready: {name} ({len(ds.train)} frames, {len(ds.test)} test)")
        for job in todo:
            record = run(ds, job)
            record.update(machine=machine(), **extra)
            append_record(path, record)


def report(records: list[dict], mode: Mode, command: str, datasets: dict[str, Dataset] | None = None) -> None:
    """The docs block and the figures from the records."""
    budget = mode.budget
    main = [r for r in records if r.get("budget", budget) == budget and r.get("variant", "default") == "default"]
    families = [f for f in (*HARD, "synthetic", "hela", "ecoli") if any(r["family"] == f for r in main)]
    if not main:
        return
    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    stem = "accuracy" if mode.name == "quick" else f"accuracy_{mode.name}"
    plot_ratio(img / f"{stem}_vs_ratio.png", main, families, budget)
    plot_effort(img / f"{stem}_vs_effort.png", main, families, budget)
    plot_rounds(img / f"{stem}_rounds.png", main, families)
    if datasets:
        plot_overlays(img / f"{stem}_overlays.png", main, datasets, mode, TARGET_RATIO)
    begin, end = MARKS[mode.name]
    write_docs(DOCS_FILE, markdown(records, mode, command), begin, end)


# --- main --------------------------------------------------------------------------------

def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", choices=("lazy", *SUITES), default="lazy")
    known, rest = pre.parse_known_args(argv)
    if known.suite != "lazy":
        import importlib
        return importlib.import_module(SUITES[known.suite]).main(rest)
    argv = rest
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=("lazy", *SUITES), default="lazy",
                    help="lazy (this suite: lazy labels against METHOD 8's baselines), fgbg (fg/bg scribbles "
                         "with and without the mixture loss, benchmarks/scribble_mixture.py; --suite fgbg --help) "
                         "or points (points + a foreground mask, clicked or machine-made, "
                         "benchmarks/points_mask.py; --suite points --help)")
    ap.add_argument("--quick", action="store_true",
                    help="synthetic (40 images), HeLa and E. coli, 200 steps of batch 4 x 64 px, 3 rounds, every "
                         "method at 10 %% strong labels plus a multi-task ratio sweep on synthetic data; about "
                         "10-15 min on 2 CPU cores. Without it: phase, em, he, synthetic and HeLa at the training "
                         "defaults (800 steps of batch 8 x 128 px), 10 rounds, every ratio (2.5, 5, 10, 100 %%), "
                         "three training seeds at 10 %% and full supervision: many hours on 2 CPU cores")
    ap.add_argument("--datasets", nargs="*", choices=("synthetic", "hela", "ecoli", *HARD), default=None)
    ap.add_argument("--methods", nargs="*", choices=METHODS, default=None)
    ap.add_argument("--ratios", nargs="*", type=float, default=None, help="only these strong-label ratios")
    ap.add_argument("--seeds", nargs="*", type=int, default=None,
                    help="training seeds of the settings the targets compare (default: the mode's)")
    ap.add_argument("--variant", choices=tuple(VARIANTS), default="default",
                    help="a method change to measure (see VARIANTS in this file)")
    ap.add_argument("--steps", type=int, default=None, help="override the steps of the mode (a probe budget)")
    ap.add_argument("--rounds", type=int, default=None, help="override the recursive rounds of the mode")
    ap.add_argument("--device", default="cpu", choices=("cpu", "auto", "cuda", "mps"),
                    help="where to train and predict (default cpu; auto: a GPU when there is one). The device "
                         "is recorded with each run; the budget is the same")
    ap.add_argument("--max-runs", type=int, default=None, help="stop after this many runs")
    ap.add_argument("--no-flips", action="store_true", help="do not score the models with test-time flips too")
    ap.add_argument("--list", action="store_true", help="print the queue (done or to do) and exit")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a 2-core machine shared with other work one thread "
                         "trained 3x faster than two; use 2 on an idle machine)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results",
                    help="folder of the results file (accuracy_<mode>.jsonl) and its CSV")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/ (figures and tables)")
    ap.add_argument("--report-only", action="store_true", help="rewrite the tables and figures from the results")
    args = ap.parse_args(argv)
    mode = MODES["quick" if args.quick else "full"]
    if args.steps:
        mode = replace(mode, steps=args.steps)
    if args.rounds:
        mode = replace(mode, rounds=args.rounds)
    mode = replace(mode, device=args.device)
    families = list(args.datasets or mode.datasets)
    methods = list(args.methods or METHODS)
    command = " ".join(["python benchmarks/accuracy.py", *argv])
    doc_command = "python benchmarks/accuracy.py" + (" --quick" if args.quick else "")
    torch.set_num_threads(max(1, args.threads))
    path = args.results / f"accuracy_{mode.name}.jsonl"
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:7.0f} s] {msg}", file=sys.stderr, flush=True)

    report_mode = MODES[mode.name]      # the tables and figures are of the mode's own budget
    if args.report_only:
        if not args.no_docs:
            records = read_results(path)
            report(records, report_mode, doc_command, test_sets(records, report_mode))
        return 0
    todo = queue(mode, families, methods, args.seeds, args.ratios)
    done = {r["key"] for r in read_results(path)}
    datasets: dict[str, Dataset] = {}
    n_run, seen = 0, set()
    for fam, method, ratio, seed in todo:
        key = run_key("synthetic-s0" if fam == "synthetic" and mode.name == "quick" else fam, method, ratio, seed,
                      args.variant, mode.budget)
        if args.list:
            print(("done  " if key in done else "to do ") + key)
            continue
        if key in done:
            continue
        if key in {r["key"] for r in read_results(path)}:
            continue                          # another worker on the same file did it meanwhile
        if args.max_runs is not None and n_run >= args.max_runs:
            break
        if fam not in datasets:
            datasets[fam] = load(fam, mode, pseudo="pl" in methods)
            log(f"data ready: {datasets[fam].name} ({len(datasets[fam].train)} training images, "
                f"{len(datasets[fam].test)} test)")
        ds = datasets[fam]
        same = (ds.name, method, frozenset(strong_of(method, ds, ratio)), seed)
        if same in seen:
            log(f"{key}: the same strong images as a ratio already run; skipped")
            continue
        seen.add(same)
        record = run_one(method, ds, ratio, mode, log, seed, args.variant, tta=not args.no_flips)
        predictions = record.pop("_predictions")
        f = prediction_file(mode, record["key"])
        f.parent.mkdir(parents=True, exist_ok=True)
        win = overlay_window(ds.test[0][2])
        np.savez_compressed(f, instances=predictions[0][win].astype(np.int32))
        record.update(split=ds.split, machine=machine(), commit=git_commit(),
                      date=time.strftime("%Y-%m-%dT%H:%M:%S"))
        args.results.mkdir(parents=True, exist_ok=True)
        append_record(path, record)
        n_run += 1
        records = read_results(path)
        write_csv(path.with_suffix(".csv"), records)
        if not args.no_docs:
            report(records, report_mode, doc_command, datasets)
    if args.list:
        return 0
    records = read_results(path)
    for line in targets([r for r in records if r.get("variant", "default") == "default" and
                         r.get("budget") == report_mode.budget], families, report_mode.budget):
        print(line)
    log(f"done: {n_run} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
