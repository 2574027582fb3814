"""Accuracy of fg/bg scribbles with and without the blind-spot mixture loss (ImPartial), against the
lazy regime and full supervision.

    python benchmarks/accuracy.py --suite fgbg --quick     # the run in docs/benchmarks.md
    python benchmarks/accuracy.py --suite fgbg             # every image of every set, more steps

The suite names no regime: the fg/bg scribbles' regime is the one whose task
is self-supervised (``registry.self_supervised_regimes``), the lazy regime the
regimes with required inputs (blobs, interfaces, masks), full supervision the
foreground regime (exact masks) alone.

Methods, all with the same network (the ``cpu`` preset, multi-task U-Net),
the same training settings and the same number of steps on the same images:

    base      fg/bg scribbles, blind spots, mixture weight 0 (ImPartial's "Base")
    mixture   fg/bg scribbles with the mixture loss (the regime's defaults: 0.45 / 0.45 / 0.1)
    lazy      blobs and interfaces on every training image, exact masks on 10 % of them
    full      exact masks on every training image (the upper bound)
    mix100    (on request) mixture weight 10: the mixture loss with sigma 0.1 instead of 1
    mix0      (on request) a control: mixture weight 1e-6, so the images without strokes are drawn
              into the batches (and their BatchNorm statistics) as with the mixture loss, which
              itself adds next to nothing

Scribbles are simulated by the regime's ``simulate`` (ImPartial's protocol:
random 32x32 fields of view, skeletons of the objects they touch and of the
background inside them, until a budget of objects is used) at budgets of 5,
10 and 25 % of each training image's objects; base and mixture run at every
budget. Real frames are simulated whole, then cut into tiles (the training
images); test images are predicted whole. Data and splits: see ``harness.tiles.FRAME_SETS``
(split by frame, section or field of view, never inside one).

Metrics on the test images, as ImPartial reports them: pixel F1 (= foreground
Dice), mDice and mIoU (each ground-truth object against the predicted object
overlapping it most, objects under 20 px left out, pooled over the test
images' objects), plus AP50 (TP / (TP + FP + FN) at IoU 0.5, pooled). Cost
beside them: painted pixels, strokes, objects scribbled or traced.

Resumable: every finished run is appended to
``benchmarks/results/fgbg_<mode>.jsonl``; a rerun skips the runs already there
(delete the file to start over). The block between the ``fgbg`` markers of
docs/benchmarks.md is rewritten from that file at the end of each run (or with
``--report-only``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import gray_or_rgb as _gray_or_rgb, tiles as _tiles
from benchmarks.harness.options import start_suite, suite_options
from benchmarks.harness.queue import run_suite
from benchmarks.harness.regimes import foreground_regime, lazy_regimes
from benchmarks.harness.results import read_results
from benchmarks.harness.tiles import FRAME_SETS, Budget, FrameData, items_from_tiles, load_frame_data
from benchmarks.report.docs import write_docs
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.metrics import best_overlap_scores, match_instances, pool_best_overlap
from napari_lazylabels.engine.pipeline import segment
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.simulate import simulate_lazy_labels

METHODS = ("base", "mixture", "lazy", "full", "mix100", "mix0")
#: Run unless --methods says otherwise (on request: mix100, the mixture weight x 100, i.e. sigma 0.1;
#: mix0, a control: weight 1e-6, so the images without strokes are in the batches as with the
#: mixture loss, but the loss itself adds next to nothing).
DEFAULT_METHODS = ("base", "mixture", "lazy", "full")
SCRIBBLE_METHODS = ("base", "mixture", "mix100", "mix0")
MIXTURE_FACTOR = {"base": 0.0, "mixture": 1.0, "mix100": 100.0, "mix0": 1e-5}
METHOD_NAMES = {"base": "Base (scribbles only)", "mixture": "scribbles + mixture loss",
                "lazy": "lazy (blobs + interfaces + 10 % masks)", "full": "full supervision",
                "mix100": "mixture x100 (weight 10 = sigma 0.1)",
                "mix0": "control: mixture weight 1e-6 (unstroked images drawn, no mixture loss to speak of)"}
BUDGETS = (0.05, 0.10, 0.25)
MARK_BEGIN, MARK_END = "<!-- fgbg:begin -->", "<!-- fgbg:end -->"


def scribble_regime():
    """The regime of the fg/bg scribbles: the one whose task trains on every image."""
    found = registry.self_supervised_regimes()
    if not found:
        raise SystemExit("no registered regime has a self-supervised task")
    return found[0]


# --- data --------------------------------------------------------------------------------

def training_items(ds: FrameData, method: str, budget: float | None) -> tuple[list[LazyAnnotations], dict]:
    """The training images (tiles) with the labels of one method, and the cost of those labels."""
    scribbles = scribble_regime()
    tiles = []
    for k, (name, image, inst) in enumerate(ds.train):
        rng = np.random.default_rng([k, 23])
        if method in SCRIBBLE_METHODS:
            labels = simulate_lazy_labels(inst, rng=rng, regimes=[scribbles], scribble_budget=budget)
        elif method == "lazy":
            labels = simulate_lazy_labels(inst, rng=rng, strong=True)
        else:
            labels = simulate_lazy_labels(inst, rng=rng, regimes=[foreground_regime()], strong=True)
        for t, (sy, sx) in enumerate(_tiles(inst.shape, ds.tiles) if ds.tiles > 1 else
                                     [(slice(None), slice(None))]):
            tiles.append((f"{name}_tile{t:02d}", _gray_or_rgb(image)[sy, sx], inst[sy, sx],
                          {key: None if v is None else v[sy, sx] for key, v in labels.items()}))
    return items_from_tiles(tiles, method)


# --- one run -----------------------------------------------------------------------------

BUDGET = {"quick": Budget(steps=300, batch_size=4, patch_size=96),
          "full": Budget(steps=800, batch_size=8, patch_size=128)}


def setting_key(dataset: str, method: str, budget: float | None) -> str:
    return f"{dataset}/{method}/{'-' if budget is None else f'{budget:g}'}"


def run_key(dataset: str, method: str, budget: float | None, seed: int = 0) -> str:
    """One run: a setting and the training seed (the labels do not depend on it)."""
    return setting_key(dataset, method, budget) + (f"/s{seed}" if seed else "")


def run_one(ds: FrameData, method: str, budget: float | None, b: Budget, log, seed: int = 0) -> dict:
    items, cost = training_items(ds, method, budget)
    scribbles = scribble_regime()
    config = TrainConfig(steps=b.steps, batch_size=b.batch_size, patch_size=b.patch_size, device="cpu",
                         seed=seed, checkpoint_every=10**9)
    if method in SCRIBBLE_METHODS:
        opts = scribbles.options(mixture_weight=MIXTURE_FACTOR[method] * scribbles.options().mixture_weight)
        plan = TrainingPlan(items, network=preset("cpu"), config=config, options={scribbles.name: opts})
    elif method == "lazy":
        plan = TrainingPlan(items, network=preset("cpu"), config=config, regimes=lazy_regimes())
    else:
        plan = TrainingPlan(items, network=preset("cpu"), config=config, regimes=[foreground_regime()])
    t0 = time.perf_counter()
    run = TrainingRun(plan)
    for _ in run.run():
        pass
    train_s = time.perf_counter() - t0
    model = run.model()
    scores, counts = [], np.zeros(3, np.int64)
    for _, image, truth in ds.test:
        result = segment(model, _gray_or_rgb(image), device="cpu")
        scores.append(best_overlap_scores(result.instances, truth))
        counts += match_instances(result.instances, truth, 0.5)[:3]
    pooled = pool_best_overlap(scores)
    agg = {"ap50": float(counts[0] / max(counts.sum(), 1)), "n_pred": int(counts[0] + counts[1])}
    record = {"key": run_key(ds.name, method, budget, seed), "setting": setting_key(ds.name, method, budget),
              "seed": seed, "dataset": ds.name, "method": method, "budget": budget,
              "n_train": len(items), "steps": run.step, "train_s": round(train_s, 1),
              "pixel_f1": pooled["pixel_f1"], "mdice": pooled["mdice"], "miou": pooled["miou"],
              "ap50": agg["ap50"], "n_objects": pooled["n_objects"], "n_pred": agg["n_pred"], "cost": cost,
              "split": ds.split}
    log(f"{record['key']:24s} F1 {record['pixel_f1']:.3f} mDice {record['mdice']:.3f} "
        f"mIoU {record['miou']:.3f} AP50 {record['ap50']:.3f}  [{train_s:.0f} s]")
    return record


# --- reporting ---------------------------------------------------------------------------

METRICS = ("pixel_f1", "mdice", "miou", "ap50")


def settings(records: list[dict]) -> dict[str, dict]:
    """Setting key -> the mean (and sd, n) of each metric over its seeds, and its first record's data."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r.get("setting") or setting_key(r["dataset"], r["method"], r["budget"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        row = dict(rs[0], n=len(rs), seeds=sorted(r.get("seed", 0) for r in rs))
        for m in METRICS:
            a = np.array([r[m] for r in rs], float)
            row[m], row[m + "_sd"] = float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0
        out[key] = row
    return out


def _fmt(row: dict, m: str) -> str:
    return f"{row[m]:.3f}" + (f" ± {row[m + '_sd']:.3f}" if row["n"] > 1 else "")


def _row(r: dict) -> str:
    c = r["cost"]
    setting = "" if r["budget"] is None else f"{100 * r['budget']:g} % of objects"
    objects = c.get("objects_scribbled", 0) if r["method"] in SCRIBBLE_METHODS else c.get("objects_traced", 0)
    return (f"| {METHOD_NAMES[r['method']]} | {setting} | {r['n']} | {_fmt(r, 'pixel_f1')} | {_fmt(r, 'mdice')} | "
            f"{_fmt(r, 'miou')} | {_fmt(r, 'ap50')} | {c.get('painted_pixels', 0)} | {c.get('strokes', 0)} | "
            f"{objects} |")


def targets(records: list[dict]) -> list[str]:
    """The issue's targets on the records (means over seeds), one line each."""
    by = settings(records)
    lines = []
    gains = {}
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    for ds in datasets:
        pairs = [(by[setting_key(ds, "mixture", b)], by[setting_key(ds, "base", b)]) for b in BUDGETS
                 if setting_key(ds, "mixture", b) in by and setting_key(ds, "base", b) in by]
        if pairs:
            gains[ds] = {m["budget"]: m["mdice"] - b["mdice"] for m, b in pairs}
            lines.append(f"- {ds}: mDice of the mixture loss minus Base: " + ", ".join(
                f"{100 * m['budget']:g} %: {m['mdice'] - b['mdice']:+.3f}"
                + (f" (mean of {min(m['n'], b['n'])} seeds)" if min(m["n"], b["n"]) > 1 else "") for m, b in pairs))
    ten = {ds: g[0.10] for ds, g in gains.items() if 0.10 in g}
    synthetic = ten.get("mibi")
    real = {ds: g for ds, g in ten.items() if ds != "mibi"}
    if synthetic is not None:
        lines.append(f"- the mixture loss improves mDice over Base by >= 0.02 on the noisy synthetic data at 10 % "
                     f"({synthetic:+.3f}): **{'met' if synthetic >= 0.02 else 'missed'}**")
    if real:
        won = [ds for ds, g in real.items() if g >= 0.02]
        lines.append("- ... and on at least one real set at 10 % ("
                     + ", ".join(f"{d} {g:+.3f}" for d, g in real.items()) + "): "
                     + f"**{'met on ' + ', '.join(won) if won else 'missed'}**")
    for ds in datasets:
        m, lazy = by.get(setting_key(ds, "mixture", 0.10)), by.get(setting_key(ds, "lazy", None))
        if m and lazy:
            gap = m["mdice"] - lazy["mdice"]
            lines.append(f"- {ds}: scribbles + mixture at 10 % vs lazy at 10 % masks, mDice {m['mdice']:.3f} vs "
                         f"{lazy['mdice']:.3f} ({gap:+.3f}): **{'met' if gap >= -0.05 else 'missed'}** "
                         "(target: within 0.05)")
    return lines


def markdown(records: list[dict], mode: str, command: str, machine_text: str, b: Budget) -> str:
    by = settings(records)
    out = [MARK_BEGIN, "",
           f"Written by `{command}` from the runs in `benchmarks/results/fgbg_{mode}.jsonl` ({mode} mode; "
           f"the commands above), on {machine_text}. Training budget of every run: "
           f"{b.steps} steps, batch {b.batch_size} x {b.patch_size}x{b.patch_size} px, the `cpu` preset "
           "(multi-task U-Net), Adam with warm-up and cosine decay. Where a row has several runs (n), they "
           "differ in the training seed only (same data, same strokes): mean ± sd.", "",
           "### Targets", "", *targets(records), ""]
    for ds in dict.fromkeys(r["dataset"] for r in records):
        order = ("base", "mix0", "mixture", "mix100", "lazy", "full")
        rows = sorted((r for r in by.values() if r["dataset"] == ds),
                      key=lambda r: (order.index(r["method"]), r["budget"] or 0))
        out += [f"### {ds}", "", f"Data: {rows[0]['split']}; {rows[0]['n_objects']} test objects of 20 px or more.",
                "", "| method | scribble budget | n | pixel F1 | mDice | mIoU | AP50 | painted px | strokes | "
                "objects scribbled / traced |", "|---|---|---|---|---|---|---|---|---|---|",
                *(_row(r) for r in rows), ""]
    out.append(MARK_END)
    return "\n".join(out)


def main(argv=None, config: BenchConfig | None = None) -> int:
    ap = argparse.ArgumentParser(prog="accuracy.py --suite fgbg", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="a few training images per set, 300 steps of batch 4 x 96 px (see harness.tiles.FRAME_SETS)")
    ap.add_argument("--datasets", nargs="*", default=None, help="some of " + ", ".join(FRAME_SETS["quick"]))
    ap.add_argument("--methods", nargs="*", choices=METHODS, default=None)
    ap.add_argument("--budgets", nargs="*", type=float, default=None, help="scribble budgets (default 0.05 0.1 0.25)")
    ap.add_argument("--steps", type=int, default=None, help="override the steps of the mode")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0],
                    help="training seeds: each setting runs once per seed (default 0)")
    suite_options(ap)
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    start = start_suite(args, config, "fgbg", mode, BUDGET, argv)
    config, b, path, command, log = start.config, start.budget, start.path, start.command, start.log

    def pending(name: str, done: set[str]) -> list[tuple]:
        return [(m, bud, seed) for seed in args.seeds for m in (args.methods or DEFAULT_METHODS)
                for bud in ((args.budgets or BUDGETS) if m in SCRIBBLE_METHODS else (None,))
                if run_key(name, m, bud, seed) not in done]

    if not args.report_only:
        run_suite(path, args.datasets or list(FRAME_SETS[mode]), pending,
                  lambda name: load_frame_data(name, mode, None if name == "mibi" else config.data_dir()),
                  lambda ds, job: run_one(ds, job[0], job[1], b, log, job[2]),
                  dict(steps_budget=b.steps, batch=b.batch_size, patch=b.patch_size), log)
    records = read_results(path, *args.merge)
    for line in targets(records):
        print(line)
    if not args.no_docs and records:
        write_docs(config.docs_file, markdown(records, mode, command, records[-1]["machine"], b),
                   begin=MARK_BEGIN, end=MARK_END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
