"""Accuracy benchmark: lazy labels against every baseline of METHOD section 8.

    python benchmarks/accuracy.py --quick      # about 10-15 min on 2 CPU cores
    python benchmarks/accuracy.py              # the full run (hours on 2 CPU cores, see --help)

Methods, all with the same network size (the ``cpu`` preset: a plain U-Net
for the single-task baselines, the multi-task U-Net otherwise), the same
training settings and the same number of steps, on the same images:

    wl        single-task U-Net trained on the blobs as if they were masks
    sl        single-task U-Net trained on the few strong masks only
    pl        single-task U-Net on GrabCut pseudo-masks drafted from every blob
              (the strong masks where an image has them)
    mt        multi-task U-Net on lazy labels: blobs + interface scribbles on
              every image, strong masks on a few
    mtr       mt plus the recursive approximation task (Ke et al. 2021), final
              growth at inference
    full      single-task U-Net on the exact masks of every image (upper bound)

Every run trains through the one training recipe
(``napari_lazylabels.recipes.train``). The benchmark names no regime: it finds
them in the regime registry by the role of their head (the exact masks are the
foreground regime's input, the blobs the seeds regime's; the single-task
baselines train the foreground regime alone), and the recursive approximation
of mtr is the opt-in regime whose head gives partial masks. Each model is
post-processed as its model file says (``engine.pipeline.segment``: seeded
watershed, or the final growth for mtr).

Datasets (lazy labels simulated from the ground truth with
``napari_lazylabels.engine.simulate``):

    synthetic   the project's generator, three seeds (one in --quick); training
                and test images come from disjoint seed streams
    hela        ../shared/data/hela, split by frame: t00, t06, t12 train, t19 test
    ecoli       ../shared/data/ecoli, split by frame: t05, t12 train, t19 test

Real training frames are cut into a 4 x 4 grid of tiles; a tile is a training
"image" for the strong-label ratio. A ratio r gives exact masks to
max(1, round(r * n)) of the n training images, chosen among images that hold
objects, nested (the 5 % set contains the 2.5 % set). Test frames are
predicted whole (tiled inference).

Metrics on the test images: foreground Dice, AP50 (TP / (TP + FP + FN) at
IoU 0.5, pooled over images), GlaS object Dice and object Hausdorff distance
(px, mean over images). Annotation cost of each setting (pixels painted,
brush strokes, objects traced exactly) comes from
``simulate.annotation_cost`` over the labels the method used.

Outputs: benchmarks/results/accuracy_<mode>.json and .csv, the figures
docs/img/accuracy_vs_ratio.png, docs/img/approximation_rounds.png and
docs/img/accuracy_overlays.png, and the generated block of
docs/benchmarks.md (text outside the markers is kept).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch

from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.grabcut import grabcut_drafts
from napari_lazylabels.engine.metrics import aggregate, dice, summarize
from napari_lazylabels.engine.pipeline import segment, segmentation_from_probabilities
from napari_lazylabels.engine.postprocess.settings import WATERSHED, PostProcessing
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.regimes.base import Regime
from napari_lazylabels.engine.simulate import annotation_cost, simulate_lazy_labels, \
    total_annotation_cost
from napari_lazylabels.engine.synthetic import make_lazy_dataset, make_test_set
from napari_lazylabels.engine.tasks import FOREGROUND, PARTIAL, SEEDS
from napari_lazylabels.io.figures import overlay_rgb, pyplot
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
METHODS = ("wl", "sl", "pl", "mt", "mtr", "full")
METHOD_NAMES = {"wl": "WL only", "sl": "SL only", "pl": "PL (GrabCut)", "mt": "multi-task",
                "mtr": "multi-task + recursive", "full": "full supervision"}
#: Methods whose data depend on the strong-label ratio; at 100 % SL and PL are full supervision.
RATIO_METHODS = ("sl", "pl", "mt", "mtr")
#: Methods that train the multi-task network on the lazy labels (the others are single-task baselines),
#: and those of them that add the partial-mask (recursive approximation) regime.
MULTITASK_METHODS = ("mt", "mtr")
PARTIAL_METHODS = ("mtr",)
FULL_RATIOS = (0.025, 0.05, 0.10, 1.0)
MARK_BEGIN, MARK_END = "<!-- accuracy:begin -->", "<!-- accuracy:end -->"
#: The Markdown file whose block between the markers each run rewrites.
DOCS_FILE = ROOT / "docs" / "benchmarks.md"


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


def seeds_key() -> str:
    """The input key of the blobs (inner seeds): what WL trains on and GrabCut drafts from."""
    seeds = registry.input_with_role(SEEDS)
    if seeds is None:
        raise SystemExit("no registered regime has a seeds input")
    return seeds.key


def partial_regime() -> Regime:
    """The opt-in regime whose head gives partial masks (the recursive approximation of mtr)."""
    regime = next((r for r in registry.opt_in_regimes() if r.role == PARTIAL), None)
    if regime is None or regime.options is None:
        raise SystemExit("no registered opt-in regime has a partial-mask head with options")
    return regime


def partial_options(**settings) -> Any:
    """The options of the partial-mask regime (its defaults, with ``settings`` changed)."""
    return partial_regime().options(**settings)


@dataclass
class Mode:
    """One benchmark budget."""

    name: str
    steps: int
    batch_size: int
    patch_size: int
    rounds: int
    synthetic_seeds: tuple[int, ...]
    synthetic_train: int
    synthetic_test: int
    datasets: tuple[str, ...]
    ratios: tuple[float, ...]          # ratios every ratio method runs at
    sweep: dict[str, tuple[float, ...]] = field(default_factory=dict)  # extra ratios: dataset -> ratios (mt only)
    lambda_train: float = field(default_factory=lambda: partial_options().lambda_train)


MODES = {
    "quick": Mode("quick", steps=200, batch_size=4, patch_size=64, rounds=3, synthetic_seeds=(0,),
                  synthetic_train=40, synthetic_test=4, datasets=("synthetic", "hela", "ecoli"),
                  ratios=(0.10,), sweep={"synthetic": (0.025, 0.05, 1.0)}),
    "full": Mode("full", steps=800, batch_size=8, patch_size=128, rounds=10, synthetic_seeds=(0, 1, 2),
                 synthetic_train=40, synthetic_test=8, datasets=("synthetic", "hela", "ecoli"),
                 ratios=FULL_RATIOS),
}


# --- data --------------------------------------------------------------------------------

@dataclass
class Sample:
    """A training image (or tile) with its ground truth and every label a method may use."""

    name: str
    image: np.ndarray
    instances: np.ndarray
    labels: dict[str, np.ndarray]        # simulated lazy labels and exact masks, keyed by input key
    pseudo: np.ndarray | None = None     # GrabCut pseudo-masks drafted from the blobs (PL only)

    @property
    def has_objects(self) -> bool:
        return bool(self.instances.any())


@dataclass
class Dataset:
    name: str                             # e.g. synthetic-s0
    family: str                           # synthetic, hela, ecoli
    train: list[Sample]
    test: list[tuple[str, np.ndarray, np.ndarray]]   # (name, image, instances)
    split: str
    order: list[int]                      # order in which images get strong masks

    def strong_set(self, ratio: float) -> set[int]:
        n = max(1, int(round(ratio * len(self.train)))) if ratio < 1 else len(self.train)
        return set(self.order[:n])


def _strong_order(samples: list[Sample], seed: int) -> list[int]:
    rng = np.random.default_rng([seed, 7])
    perm = [int(i) for i in rng.permutation(len(samples))]
    return [i for i in perm if samples[i].has_objects] + [i for i in perm if not samples[i].has_objects]


def _given(labels: dict) -> dict[str, np.ndarray]:
    """The simulated labels an image was given (input key -> array)."""
    return {k: np.asarray(v) for k, v in labels.items() if v is not None}


def _pseudo_masks(image: np.ndarray, labels: dict, pseudo: bool = True) -> np.ndarray | None:
    """GrabCut pseudo-masks drafted from the blobs (only when the PL method runs)."""
    if not pseudo:
        return None
    return np.asarray(grabcut_drafts(image, labels[seeds_key()]), np.int32)


def synthetic_dataset(seed: int, mode: Mode, pseudo: bool = True) -> Dataset:
    items, truths = make_lazy_dataset(mode.synthetic_train, seed=seed, shape=(256, 256), strong_fraction=1.0)
    train = []
    for it, tr in zip(items, truths):
        labels = _given(it.labels)
        train.append(Sample(it.name, tr.image, tr.instances, labels, _pseudo_masks(tr.image, labels, pseudo)))
    tests = [(f"test_{i:03d}", t.image, t.instances)
             for i, t in enumerate(make_test_set(mode.synthetic_test, seed=seed, shape=(256, 256)))]
    return Dataset(f"synthetic-s{seed}", "synthetic", train, tests,
                   f"{len(train)} training images 256x256 (seed stream 'train'), {len(tests)} test images "
                   f"(seed stream 'test')", _strong_order(train, seed))


#: Real data: training and test frames, the simulator's max_gap (E. coli ground truth leaves
#: 3-4 px between touching cells), and whether tiles without any object are kept. Every tile
#: is normalised on its own (1-99.8 percentiles), which stretches the noise of an empty
#: phase-contrast tile to the full range: nothing like the background of a whole frame, so
#: a model trained on such tiles took the test frame's background for cells (Dice 0.06).
REAL = {
    "hela": dict(train=("t00", "t06", "t12"), test=("t19",), max_gap=0, keep_empty=True),
    "ecoli": dict(train=("t05", "t12"), test=("t19",), max_gap=4, keep_empty=False),
}


def _tiles(shape: tuple[int, int], grid: int = 4) -> list[tuple[slice, slice]]:
    ys = np.linspace(0, shape[0], grid + 1).astype(int)
    xs = np.linspace(0, shape[1], grid + 1).astype(int)
    return [(slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1])) for i in range(grid) for j in range(grid)]


def real_dataset(family: str, pseudo: bool = True) -> Dataset:
    spec = REAL[family]
    folder = DATA / family
    train = []
    for k, frame in enumerate(spec["train"]):
        image = tifffile.imread(folder / f"{family}_{frame}_image.tif")
        inst = tifffile.imread(folder / f"{family}_{frame}_labels.tif").astype(np.int32)
        lazy = simulate_lazy_labels(inst, rng=np.random.default_rng([k, 11]), strong=True,
                                    max_gap=spec["max_gap"])
        labels = _given(lazy)
        drafts = _pseudo_masks(image, labels, pseudo)
        for t, (sy, sx) in enumerate(_tiles(image.shape)):
            if not spec["keep_empty"] and not inst[sy, sx].any():
                continue
            train.append(Sample(f"{family}_{frame}_tile{t:02d}", image[sy, sx], inst[sy, sx],
                                {k2: v[sy, sx] for k2, v in labels.items()},
                                None if drafts is None else drafts[sy, sx]))
    tests = []
    for frame in spec["test"]:
        tests.append((f"{family}_{frame}", tifffile.imread(folder / f"{family}_{frame}_image.tif"),
                      tifffile.imread(folder / f"{family}_{frame}_labels.tif").astype(np.int32)))
    kept = "" if spec["keep_empty"] else ", only the tiles that hold cells"
    split = (f"split by frame: train {', '.join(spec['train'])} (each cut into 4x4 tiles{kept}: {len(train)} "
             f"training images), test {', '.join(spec['test'])} (whole frame)")
    return Dataset(family, family, train, tests, split, _strong_order(train, 0))


# --- one run -----------------------------------------------------------------------------

def training_plan(method: str, ds: Dataset, strong: set[int], mode: Mode,
                  config: TrainConfig) -> tuple[TrainingPlan, dict]:
    """The training plan of a method (items, network, regimes), and the cost of the labels it used.

    Labels are keyed by the regimes' input keys. The single-task baselines put
    what they train on under the exact masks' key and train the foreground
    regime alone; mt trains every regime whose labels the images have (the
    exact masks only on the strong images), mtr adds the partial-mask regime.
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
        elif method == "full":
            lab = cost = {fg: seg_true}
        else:   # mt, mtr: every lazy label, the exact masks on the strong images only
            lab = {k: v if k != fg or i in strong else None for k, v in s.labels.items()}
            cost = lab
        annotated = {k: v is not None for k, v in lab.items()}
        items.append(LazyAnnotations(s.image, labels=dict(lab), name=s.name, annotated=annotated))
        used.append(annotation_cost(cost, s.instances))
    if method in MULTITASK_METHODS:
        opt_in = {}
        if method in PARTIAL_METHODS:
            partial = partial_regime()
            opt_in[partial.name] = partial_options(rounds=mode.rounds, lambda_train=mode.lambda_train)
        plan = TrainingPlan(items, network=preset("cpu"), config=config, opt_in=opt_in)
    else:
        plan = TrainingPlan(items, network=preset("cpu", multitask=False), config=config,
                            regimes=[foreground_regime()])
    return plan, total_annotation_cost(used)


def evaluate(model, ds: Dataset) -> tuple[dict, dict, list]:
    """Metrics on the test images with the model's own post-processing; for a model with a
    partial-mask head (mtr: the final growth) also the variant with watershed seeds from that head."""
    partial_head = any(t.role == PARTIAL for t in model.tasks)
    watershed = PostProcessing(method=WATERSHED, instances=replace(model.postprocess.instances,
                                                                   seed_source=PARTIAL))
    summaries, variant, predictions = [], [], []
    for name, image, truth in ds.test:
        result = segment(model, image, device="cpu")
        if partial_head:
            ws = segmentation_from_probabilities(result.probabilities, model.tasks, watershed)
            variant.append(summarize(ws.instances, truth))
        summaries.append(summarize(result.instances, truth))
        predictions.append(result.instances)
    total = _short(aggregate(summaries))
    return total, (_short(aggregate(variant)) if variant else {}), predictions


def _short(agg: dict) -> dict:
    return {k: float(agg[k]) for k in ("dice", "ap50", "object_dice", "object_hausdorff")} | {
        "n_pred": int(agg["n_pred"]), "n_gt": int(agg["n_gt"])}


def run_one(method: str, ds: Dataset, ratio: float | None, mode: Mode, log) -> dict:
    if method == "full":
        strong = set(range(len(ds.train)))
    else:
        strong = ds.strong_set(ratio) if ratio is not None else set()
    config = TrainConfig(steps=mode.steps, batch_size=mode.batch_size, patch_size=mode.patch_size,
                         device="cpu", seed=0, checkpoint_every=10**9)
    plan, cost = training_plan(method, ds, strong, mode, config)
    t0, c0 = time.perf_counter(), time.process_time()
    run = TrainingRun(plan)
    for _ in run.run():
        pass
    train_s = time.perf_counter() - t0
    model = run.model()
    metrics, variant, predictions = evaluate(model, ds)
    record = {
        "dataset": ds.name, "family": ds.family, "method": method,
        "ratio": ratio if method in RATIO_METHODS else (1.0 if method == "full" else 0.0),
        "n_strong": len(strong), "n_train": len(ds.train), "steps": run.step,
        "train_s": round(train_s, 1), "total_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1), **metrics,
        "cost": cost,
    }
    rounds = run.hooks.get(partial_regime().name) if method in PARTIAL_METHODS else None
    if rounds is not None:
        record["watershed_seeds"] = variant
        curve = []
        for cls_maps in rounds.rounds:
            d = [dice(c > 0, s.instances > 0) for c, s in zip(cls_maps, ds.train) if c is not None and
                 s.has_objects]
            curve.append(float(np.mean(d)))
        record["approximation_dice"] = curve
        record["round_steps"] = list(rounds.round_steps)
    log(f"{ds.name:14s} {method:5s} ratio {record['ratio']:.3f} ({len(strong)} strong): "
        f"Dice {metrics['dice']:.3f} AP50 {metrics['ap50']:.3f} objDice {metrics['object_dice']:.3f} "
        f"Haus {metrics['object_hausdorff']:.1f}  [{record['total_s']:.0f} s]")
    record["_predictions"] = predictions
    return record


def plan(mode: Mode, family: str) -> list[tuple[str, float | None]]:
    runs: list[tuple[str, float | None]] = [("wl", None), ("full", None)]
    ratios = sorted(set(mode.ratios))
    for r in ratios:
        for m in RATIO_METHODS:
            if r >= 1.0 and m in ("sl", "pl"):
                continue         # identical to full supervision
            runs.append((m, r))
    for r in mode.sweep.get(family, ()):
        if r not in ratios:
            runs.append(("mt", r))
    return runs


# --- reporting ---------------------------------------------------------------------------

def _mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def table_rows(records: list[dict], family: str) -> list[dict]:
    """Records of a family averaged over its datasets (seeds), per (method, ratio)."""
    keys = sorted({(r["method"], r["ratio"]) for r in records if r["family"] == family},
                  key=lambda k: (METHODS.index(k[0]), k[1]))
    rows = []
    for method, ratio in keys:
        rs = [r for r in records if r["family"] == family and r["method"] == method and r["ratio"] == ratio]
        row = {"method": method, "ratio": ratio, "n": len(rs), "n_strong": rs[0]["n_strong"],
               "n_train": rs[0]["n_train"]}
        for k in ("dice", "ap50", "object_dice", "object_hausdorff"):
            row[k], row[k + "_sd"] = _mean_sd([r[k] for r in rs])
        for k in ("painted_pixels", "strokes", "objects_traced"):
            row[k] = float(np.mean([r["cost"].get(k, 0) for r in rs]))
        if "watershed_seeds" in rs[0]:
            row["ws_ap50"] = float(np.mean([r["watershed_seeds"]["ap50"] for r in rs]))
            row["ws_object_dice"] = float(np.mean([r["watershed_seeds"]["object_dice"] for r in rs]))
            row["ws_dice"] = float(np.mean([r["watershed_seeds"]["dice"] for r in rs]))
        rows.append(row)
    return rows


def _fmt(row: dict, k: str, digits: int = 3) -> str:
    sd = row.get(k + "_sd", 0.0)
    return f"{row[k]:.{digits}f}" + (f" ± {sd:.{digits}f}" if row["n"] > 1 else "")


def targets(records: list[dict], families: list[str]) -> list[str]:
    """The issue's targets, checked on the records; one line each."""
    lines = []
    improved = []
    for fam in families:
        rows = {(r["method"], r["ratio"]): r for r in table_rows(records, fam)}
        full = rows.get(("full", 1.0))
        mts = [r for (m, ratio), r in rows.items() if m == "mt" and ratio <= 0.10 + 1e-9]
        if not full or not mts:
            continue
        mt = max(mts, key=lambda r: r["ratio"])   # the largest ratio <= 10 %
        pct = f"{100 * mt['ratio']:g} %"
        actual = mt["n_strong"] / max(mt["n_train"], 1)
        if abs(actual - mt["ratio"]) > 0.02:
            pct += f" (asked; {mt['n_strong']}/{mt['n_train']} = {100 * actual:.0f} % given, the fewest possible)"
        rel = mt["dice"] / max(full["dice"], 1e-9)
        lines.append(f"- {fam}: multi-task at {pct} strong labels reaches {rel:.3f}x the Dice of full "
                     f"supervision ({mt['dice']:.3f} vs {full['dice']:.3f}): "
                     f"**{'met' if rel >= 0.95 else 'missed'}** (target >= 0.95x"
                     + ("" if rel >= 0.95 else f", short by {0.95 - rel:.3f}x") + ")")
        for base in ("wl", "sl", "pl"):
            b = rows.get((base, None)) or rows.get((base, 0.0)) or rows.get((base, mt["ratio"]))
            if b is None:
                continue
            gap = mt["dice"] - b["dice"]
            lines.append(f"  - beats {METHOD_NAMES[base]} ({b['dice']:.3f}) by {gap:+.3f} Dice: "
                         f"**{'met' if gap >= 0.03 else 'missed'}** (target +0.03)")
        mtr = rows.get(("mtr", mt["ratio"]))
        if mtr is not None:
            d_ap, d_od = mtr["ap50"] - mt["ap50"], mtr["object_dice"] - mt["object_dice"]
            better = d_ap > 0 or d_od > 0
            improved.append(better)
            lines.append(f"  - recursive approximation vs multi-task at {pct}: AP50 {d_ap:+.3f}, "
                         f"object Dice {d_od:+.3f} ({'improves' if better else 'does not improve'})")
    if improved:
        n = sum(improved)
        lines.append(f"- recursive approximation improves AP50 or object Dice on {n} of {len(improved)} "
                     f"datasets: **{'met' if n >= 2 else 'missed'}** (target: at least two)")
    return lines


def write_csv(path: Path, records: list[dict]) -> None:
    cols = ["dataset", "family", "method", "ratio", "n_strong", "n_train", "steps", "dice", "ap50",
            "object_dice", "object_hausdorff", "n_pred", "n_gt", "painted_pixels", "strokes",
            "objects_traced", "train_s", "cpu_s"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in records:
            flat = {**r, **{k: r["cost"].get(k, 0) for k in ("painted_pixels", "strokes", "objects_traced")}}
            w.writerow([flat.get(c, "") for c in cols])


def plot_ratio(path: Path, records: list[dict], families: list[str]) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, len(families), figsize=(4.2 * len(families), 6.4), squeeze=False)
    colours = {"sl": "tab:orange", "pl": "tab:green", "mt": "tab:blue", "mtr": "tab:purple",
               "wl": "tab:red", "full": "black"}
    for j, fam in enumerate(families):
        rows = table_rows(records, fam)
        for i, metric in enumerate(("dice", "ap50")):
            ax = axes[i, j]
            for m in RATIO_METHODS:
                pts = sorted((r["ratio"], r[metric]) for r in rows if r["method"] == m)
                if m in ("sl", "pl"):
                    pts += [(1.0, r[metric]) for r in rows if r["method"] == "full"]
                if pts:
                    x, y = zip(*sorted(pts))
                    ax.plot([100 * v for v in x], y, "o-", color=colours[m], label=METHOD_NAMES[m])
            for m, ls in (("wl", ":"), ("full", "--")):
                for r in rows:
                    if r["method"] == m:
                        ax.axhline(r[metric], color=colours[m], ls=ls, lw=1, label=METHOD_NAMES[m])
            ax.set_xscale("log")
            ax.set_xticks([2.5, 5, 10, 100])
            ax.set_xticklabels(["2.5", "5", "10", "100"])
            ax.set_xlabel("images with strong masks (%)")
            ax.set_ylabel({"dice": "Dice", "ap50": "AP50"}[metric])
            ax.set_title(fam, fontsize=10)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_rounds(path: Path, records: list[dict], families: list[str]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for fam in families:
        rs = [r for r in records if r["family"] == fam and r["method"] == "mtr" and "approximation_dice" in r]
        if not rs:
            continue
        ratio = max(r["ratio"] for r in rs if r["ratio"] <= 0.10 + 1e-9) if any(
            r["ratio"] <= 0.10 + 1e-9 for r in rs) else rs[0]["ratio"]
        sel = [r for r in rs if r["ratio"] == ratio]
        curves = np.array([r["approximation_dice"] for r in sel])
        given = 100 * sel[0]["n_strong"] / max(sel[0]["n_train"], 1)
        ax.plot(range(curves.shape[1]), curves.mean(0), "o-", label=f"{fam} ({given:.0f} % strong)")
        ax.set_xticks(range(curves.shape[1]))
    ax.set_xlabel("round (0 = the blobs)")
    ax.set_ylabel("mean Dice of approximations\nto ground truth (training images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_overlays(path: Path, records: list[dict], datasets: list[Dataset], ratio: float) -> None:
    plt = pyplot()
    shown = [ds for ds in datasets if ds.family != "synthetic" or ds.name.endswith("s0")]
    fig, axes = plt.subplots(len(shown), len(METHODS), figsize=(2.6 * len(METHODS), 2.8 * len(shown)),
                             squeeze=False)
    for i, ds in enumerate(shown):
        _, image, truth = ds.test[0]
        # a 256x256 window around the most crowded region
        h, w = truth.shape
        size = min(256, h, w)
        dens = np.cumsum(np.cumsum((truth > 0).astype(np.int64), 0), 1)
        best, y0, x0 = -1, 0, 0
        for y in range(0, h - size + 1, 32):
            for x in range(0, w - size + 1, 32):
                s = dens[y + size - 1, x + size - 1] - (dens[y - 1, x + size - 1] if y else 0) - (
                    dens[y + size - 1, x - 1] if x else 0) + (dens[y - 1, x - 1] if x and y else 0)
                if s > best:
                    best, y0, x0 = s, y, x
        win = (slice(y0, y0 + size), slice(x0, x0 + size))
        for j, m in enumerate(METHODS):
            ax = axes[i, j]
            ax.set_axis_off()
            cand = [r for r in records if r["dataset"] == ds.name and r["method"] == m and
                    (m in ("wl", "full") or abs(r["ratio"] - ratio) < 1e-9)]
            if not cand:
                continue
            r = cand[0]
            ax.imshow(overlay_rgb(image[win], r["_predictions"][0][win], reference=truth[win]))
            ax.set_title(f"{ds.family}: {METHOD_NAMES[m]}\nDice {r['dice']:.3f} AP50 {r['ap50']:.3f}", fontsize=7)
    fig.suptitle(f"test images: predicted (red) and true (green) outlines; {100 * ratio:g} % strong labels",
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


def markdown(records: list[dict], splits: dict[str, str], mode: Mode, command: str, wall: float,
             cpu: float, machine_text: str) -> str:
    families = list(dict.fromkeys(r["family"] for r in records))
    out = [MARK_BEGIN, "",
           f"Generated by `{command}` ({mode.name} mode) on {machine_text}: "
           f"{wall / 60:.1f} min wall-clock, {cpu / 60:.1f} min CPU time (all threads).", "",
           f"Training budget of every run: {mode.steps} steps, batch {mode.batch_size} x "
           f"{mode.patch_size}x{mode.patch_size} px, Adam with warm-up and cosine decay, the `cpu` network "
           f"preset (multi-task U-Net for mt/mtr, the plain U-Net of the same size otherwise); "
           f"recursive approximation: {mode.rounds} rounds, lambda_train {partial_options().lambda_train}, "
           f"lambda_final {partial_options().lambda_final}.", "",
           "Data and split:", ""]
    for fam in families:
        names = list(dict.fromkeys(r["dataset"] for r in records if r["family"] == fam))
        out.append(f"- **{fam}**: {splits.get(names[0], '')}" + (f"; seeds: {', '.join(names)} (mean ± sd)"
                                                                 if len(names) > 1 else ""))
    out += ["", "### Targets", ""] + targets(records, families) + [""]
    for fam in families:
        rows = table_rows(records, fam)
        out += [f"### {fam}", "",
                "| method | strong images | Dice | AP50 | object Dice | Hausdorff (px) | painted px | "
                "strokes | objects traced |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            strong = f"{r['n_strong']}/{r['n_train']}"
            if r["method"] in RATIO_METHODS:
                actual = r["n_strong"] / max(r["n_train"], 1)
                strong += (f" ({100 * r['ratio']:g} %)" if abs(actual - r["ratio"]) <= 0.02 else
                           f" ({100 * actual:.0f} %; {100 * r['ratio']:g} % asked)")
            out.append(f"| {METHOD_NAMES[r['method']]} | {strong} | {_fmt(r, 'dice')} | {_fmt(r, 'ap50')} | "
                       f"{_fmt(r, 'object_dice')} | {_fmt(r, 'object_hausdorff', 1)} | "
                       f"{r['painted_pixels']:.0f} | {r['strokes']:.0f} | {r['objects_traced']:.0f} |")
        ws = [r for r in rows if "ws_ap50" in r]
        if ws:
            out += ["", "Multi-task + recursive with watershed instances from the approximation head "
                        "(instead of the final growth): " + "; ".join(
                            f"{100 * r['ratio']:g} %: Dice {r['ws_dice']:.3f}, AP50 {r['ws_ap50']:.3f}, "
                            f"object Dice {r['ws_object_dice']:.3f}" for r in ws)]
        rounds = [r for r in records if r["family"] == fam and "approximation_dice" in r]
        if rounds:
            out += ["", "Mean Dice of the approximations to the ground truth, rounds 0.."
                    f"{len(rounds[0]['approximation_dice']) - 1}: " + "; ".join(
                        f"{100 * r['ratio']:g} % ({r['dataset']}): "
                        + " → ".join(f"{v:.3f}" for v in r["approximation_dice"]) for r in rounds)]
        out.append("")
    out += ["![accuracy against the strong-label ratio](img/accuracy_vs_ratio.png)", "",
            "![approximation quality over rounds](img/approximation_rounds.png)", "",
            "![example overlays](img/accuracy_overlays.png)", "", MARK_END]
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


# --- main --------------------------------------------------------------------------------

#: Other suites of this benchmark, in their own modules: name -> module (``main(argv)``).
SUITES = {"fgbg": "scribble_mixture", "points": "points_mask"}


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
                    help="one synthetic seed (40 images), 240 steps of batch 4 x 96 px, 3 rounds, every method "
                         "at 10 %% strong labels plus a multi-task ratio sweep on synthetic data; about 10-15 "
                         "min on 2 CPU cores. Without it: three seeds of 40 images, 800 steps of batch 8 x "
                         "128 px (the training defaults), 10 rounds, every ratio (2.5, 5, 10, 100 %%) for "
                         "every method: 72 runs, roughly 8-12 hours on 2 CPU cores")
    ap.add_argument("--datasets", nargs="*", choices=("synthetic", "hela", "ecoli"), default=None)
    ap.add_argument("--methods", nargs="*", choices=METHODS, default=None)
    ap.add_argument("--steps", type=int, default=None, help="override the steps of the mode")
    ap.add_argument("--rounds", type=int, default=None, help="override the recursive rounds of the mode")
    ap.add_argument("--synthetic-train", type=int, default=None, help="override the synthetic training images")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a 2-core machine shared with other work one thread "
                         "trained 3x faster than two; use 2 on an idle machine)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results",
                    help="folder for the JSON and CSV results")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/ (figures and tables)")
    ap.add_argument("--report-only", type=Path, default=None, metavar="JSON",
                    help="rewrite the tables and the ratio and rounds figures from a results JSON "
                         "(no training; the overlays need a run)")
    args = ap.parse_args(argv)
    if args.report_only is not None:
        saved = json.loads(args.report_only.read_text())
        settings = dict(saved["settings"])
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        mode = Mode(**settings)
        runs = saved["runs"]
        families = list(dict.fromkeys(r["family"] for r in runs))
        img = ROOT / "docs" / "img"
        plot_ratio(img / "accuracy_vs_ratio.png", runs, families)
        plot_rounds(img / "approximation_rounds.png", runs, families)
        write_docs(DOCS_FILE,
                   markdown(runs, saved["splits"], mode, saved["command"], saved["wall_s"], saved["cpu_s"],
                            saved["machine"]))
        return 0
    mode = MODES["quick" if args.quick else "full"]
    if args.steps:
        mode = replace(mode, steps=args.steps)
    if args.rounds:
        mode = replace(mode, rounds=args.rounds)
    if args.synthetic_train:
        mode = replace(mode, synthetic_train=args.synthetic_train)
    if args.datasets is not None:
        mode = replace(mode, datasets=tuple(args.datasets))
    methods = args.methods or METHODS
    command = " ".join(["python benchmarks/accuracy.py", *argv])
    torch.set_num_threads(max(1, args.threads))
    wall0, cpu0 = time.perf_counter(), time.process_time()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - wall0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    datasets: list[Dataset] = []
    for fam in mode.datasets:
        if fam == "synthetic":
            for seed in mode.synthetic_seeds:
                datasets.append(synthetic_dataset(seed, mode, pseudo="pl" in methods))
        else:
            datasets.append(real_dataset(fam, pseudo="pl" in methods))
        log(f"data ready: {datasets[-1].name} ({len(datasets[-1].train)} training images)")
    records = []
    for ds in datasets:
        done = set()
        for method, ratio in plan(mode, ds.family):
            if method not in methods:
                continue
            key = (method, frozenset(ds.strong_set(ratio)) if ratio is not None else None)
            if key in done:
                log(f"{ds.name:14s} {method:5s} ratio {ratio:.3f}: same strong images as a ratio already run; "
                    "skipped")
                continue
            done.add(key)
            records.append(run_one(method, ds, ratio, mode, log))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    args.results.mkdir(parents=True, exist_ok=True)
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]
    (args.results / f"accuracy_{mode.name}.json").write_text(json.dumps(
        {"mode": mode.name, "command": command, "machine": machine(), "wall_s": round(wall, 1),
         "cpu_s": round(cpu, 1), "settings": {k: v for k, v in mode.__dict__.items()},
         partial_regime().name: asdict(partial_options(rounds=mode.rounds, lambda_train=mode.lambda_train)),
         "splits": {ds.name: ds.split for ds in datasets}, "runs": clean}, indent=1, default=str))
    write_csv(args.results / f"accuracy_{mode.name}.csv", clean)
    families = list(dict.fromkeys(ds.family for ds in datasets))
    for line in targets(clean, families):
        print(line)
    if not args.no_docs:
        img = ROOT / "docs" / "img"
        img.mkdir(parents=True, exist_ok=True)
        plot_ratio(img / "accuracy_vs_ratio.png", clean, families)
        plot_rounds(img / "approximation_rounds.png", clean, families)
        plot_overlays(img / "accuracy_overlays.png", records, datasets, 0.10 if 0.10 in mode.ratios else
                      mode.ratios[0])
        write_docs(DOCS_FILE,
                   markdown(clean, {ds.name: ds.split for ds in datasets}, mode, command, wall, cpu, machine()))
    log(f"done: {len(records)} runs in {wall / 60:.1f} min (CPU {cpu / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
