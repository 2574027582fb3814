"""Accuracy of points + an image-level foreground mask (LACSS), clicked or machine-made, against the lazy
regime, full supervision and the classical pipeline the machine labels come from.

    python benchmarks/accuracy.py --suite points --threads 1     # the run in docs/benchmarks.md

The suite names no regime: the points + mask regime is the one with a points
input and a binary mask input (``registry.machine_label_inputs``), the lazy
regime the regimes with required inputs (blobs, interfaces, masks), full
supervision the foreground regime (exact masks) alone.

Methods (the same network, the ``cpu`` preset, the same steps on the same images):

    points      a point at each ground-truth object's centroid + the exact foreground (the regime's defaults)
    machine     machine-made points (LoG) + machine-made foreground (Otsu; no ground truth used)
    classical   the pipeline the machine labels come from, no training: the machine mask cut between the
                machine points by a seeded watershed of its distance transform (on the test images)
    lazy        blobs and interfaces on every training image, exact masks on 10 % of them
    full        exact masks on every training image
    no_rounds   ablation of "points": the first partition (distance-transform necks) throughout
    no_aux      ablation of "points": no low field-of-view auxiliary head
    no_cuts     ablation of "points": no boundary task at all (and so no auxnet and no rounds): cuts by the
                seeded watershed alone
    and the diagnostics of ``points_mixed`` (machine-made labels with one part exact, e.g.
    ``centroids_machine_mask``: a point at each true centroid + the machine mask)

Machine-label settings per data set (``AUTOLABEL``) were set as a user would
set them, by eye: the objects' typical diameter, and dark objects for H&E;
the threshold is Otsu everywhere (the default). Real frames are labelled
whole, then cut into tiles (the training images); test images are predicted
whole. Splits: ``DATASETS`` (by frame, section or image, never inside one).

Metrics on the test images, pooled over them: AP at IoU 0.5 (TP / (TP + FP +
FN)), the mean AP over IoU 0.5, 0.55, ..., 0.9 (as LACSS reports), pixel Dice
of the foreground; annotation cost: points clicked and pixels painted.

Seeds: ``--seeds 0 1 2`` trains each method once per seed (the classical
pipeline, which trains nothing, runs once); the tables give AP50 as the mean
and standard deviation over the seeds, and each target its worst seed.

Resumable: every finished run is appended to
``benchmarks/results/points_<mode>.jsonl``; a rerun skips the runs already
there. The block between the ``points`` markers of docs/benchmarks.md is
rewritten from that file at the end (or with ``--report-only``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import gray_or_rgb as _gray_or_rgb, load_frames, tiles as _tiles
from benchmarks.harness.options import start_suite, suite_options
from benchmarks.harness.queue import run_suite
from benchmarks.harness.regimes import foreground_regime, lazy_regimes
from benchmarks.harness.results import read_results
from benchmarks.harness.tiles import REAL_SETS, Budget, items_from_tiles, load_frame_data
from benchmarks.report.docs import write_docs
from benchmarks.report.tables import mean_sd_text
from benchmarks.suites import points_mixed
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel, classical_instances
from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.metrics import ap_sweep
from napari_lazylabels.engine.pipeline import segment, segmentation_from_probabilities
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.selftrain import foreground_probability, refined_labels
from napari_lazylabels.engine.simulate import simulate_lazy_labels
from napari_lazylabels.engine.synthetic import make_image, make_test_set
from napari_lazylabels.io.modelio import load_model, save_model
from napari_lazylabels.recipes.instance_fit import fit_on_labels
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

METHODS = ("points", "machine", "selftrain", "classical", "lazy", "full", "no_rounds", "no_aux", "no_cuts",
           *points_mixed.METHODS)
METHOD_NAMES = {"points": "points at centroids + exact foreground", "machine": "machine points + machine foreground",
                "selftrain": "machine labels + 1 self-training round",
                "classical": "classical (threshold + LoG seeds + distance watershed)",
                "lazy": "lazy (blobs + interfaces + 10 % masks)", "full": "full supervision",
                "no_rounds": "points, no rounds", "no_aux": "points, no auxnet", "no_cuts": "points, no boundary task",
                **points_mixed.NAMES}
ABLATIONS = {"no_rounds": dict(partition_rounds=0), "no_aux": dict(auxiliary_head=False),
             "no_cuts": dict(boundary_task=False, auxiliary_head=False)}
POINT_METHODS = ("points", "no_rounds", "no_aux", "no_cuts")
#: What runs unless --methods says otherwise: per data set.
MACHINE_METHODS = ("machine", "selftrain", "classical")
DEFAULT_METHODS = {"synthetic": MACHINE_METHODS, "mibi": MACHINE_METHODS, "hela": MACHINE_METHODS,
                   "he": MACHINE_METHODS, "em": MACHINE_METHODS, "ecoli": MACHINE_METHODS, "phase": MACHINE_METHODS}
SWEEP = tuple(np.round(np.arange(0.5, 0.91, 0.05), 2))
#: Machine-label settings: the defaults everywhere (object size, polarity, denoising and threshold
#: method read from each image).
AUTOLABEL = AutolabelConfig()
MARK_BEGIN, MARK_END = "<!-- points:begin -->", "<!-- points:end -->"
#: The markers of each mode's block in docs/benchmarks.md (the full run has its own section).
MARKS = {"quick": (MARK_BEGIN, MARK_END), "full": ("<!-- points-full:begin -->", "<!-- points-full:end -->")}


def points_regime():
    pair = registry.machine_label_inputs()
    if pair is None:
        raise SystemExit("no registered regime takes points and a foreground mask")
    return registry.regime_of_input(pair[0].key)


@dataclass
class Data:
    name: str
    train: list[tuple[str, np.ndarray, np.ndarray]]
    test: list[tuple[str, np.ndarray, np.ndarray]]
    split: str
    tiles: int = 1


def load(name: str, n_synthetic: int, config: BenchConfig) -> Data:
    if name == "synthetic":
        train = [(f"syn_{i:03d}", t.image, t.instances)
                 for i, t in enumerate(make_image(900 + i, (256, 256), touching=0.3) for i in range(n_synthetic))]
        test = [(f"syn_test_{i:03d}", t.image, t.instances) for i, t in enumerate(make_test_set(4, seed=0))]
        return Data(name, train, test, f"the synthetic generator: {len(train)} training images 256x256 (seeds "
                                       f"900..) and {len(test)} test images (make_test_set, seed 0)")
    if name == "ecoli":
        fs = load_frames(name, "quick", config.data_dir())
        return Data(name, fs.train, fs.test, fs.split, fs.tiles)
    ds = load_frame_data(name, "quick", None if name == "mibi" else config.data_dir())
    return Data(name, ds.train, ds.test, ds.split, ds.tiles)


def machine_labels(name: str, image: np.ndarray) -> tuple[dict, np.ndarray]:
    """The machine-made points and mask of a frame, and the region to train on (the doubtful left out)."""
    regime = points_regime()
    pts_key, mask_key = (i.key for i in regime.inputs)
    labels = autolabel(image, AUTOLABEL, source=name)
    return {pts_key: labels.points, mask_key: labels.foreground}, labels.trusted()


def _cut(labels: dict, sy: slice, sx: slice, pts_key: str) -> dict:
    out = {}
    for key, v in labels.items():
        if v is None:
            out[key] = None
        elif key == pts_key:          # the points inside the tile, in its coordinates
            p = np.asarray(v, np.float64).reshape(-1, 3)
            y0, x0 = sy.start or 0, sx.start or 0
            y1 = sy.stop if sy.stop is not None else np.inf
            x1 = sx.stop if sx.stop is not None else np.inf
            pix = np.floor(p[:, :2] + 0.5)
            keep = (pix[:, 0] >= y0) & (pix[:, 0] < y1) & (pix[:, 1] >= x0) & (pix[:, 1] < x1)
            out[key] = p[keep] - np.array([y0, x0, 0.0])
        else:
            out[key] = v[sy, sx]
    return out


def training_items(ds: Data, method: str) -> tuple[list[LazyAnnotations], dict]:
    regime = points_regime()
    pts_key = regime.inputs[0].key
    fg = foreground_regime()
    tiles, rois = [], []
    for k, (name, image, inst) in enumerate(ds.train):
        image = _gray_or_rgb(image)
        roi = None
        if method in POINT_METHODS:
            labels = regime.simulate(inst)
        elif method in ("machine", "selftrain"):
            labels, roi = machine_labels(ds.name, image)
        elif method in points_mixed.METHODS:
            labels = points_mixed.mixed(method, machine_labels(ds.name, image)[0], regime.simulate(inst), inst,
                                        *(i.key for i in regime.inputs))
        elif method == "lazy":
            labels = simulate_lazy_labels(inst, rng=np.random.default_rng([k, 23]), strong=True)
        else:
            labels = simulate_lazy_labels(inst, rng=np.random.default_rng([k, 23]), regimes=[fg], strong=True)
        grid = _tiles(inst.shape, ds.tiles) if ds.tiles > 1 else [(slice(None), slice(None))]
        for t, (sy, sx) in enumerate(grid):
            tiles.append((f"{name}_tile{t:02d}", image[sy, sx], inst[sy, sx], _cut(labels, sy, sx, pts_key)))
            rois.append(None if roi is None else roi[sy, sx])
    items, cost = items_from_tiles(tiles, method)
    for item, roi in zip(items, rois):
        item.roi = roi
    return items, cost


BUDGET = {"quick": Budget(steps=200, batch_size=4, patch_size=96),
          "full": Budget(steps=800, batch_size=8, patch_size=128)}


def score(pairs) -> dict:
    """AP50, mean AP over IoU 0.5..0.9 and pixel Dice, pooled over (prediction, truth) pairs."""
    sweeps = [ap_sweep(p, t, SWEEP) for p, t in pairs]
    inter = sum(int(np.count_nonzero((p > 0) & (t > 0))) for p, t in pairs)
    total = sum(int(np.count_nonzero(p > 0) + np.count_nonzero(t > 0)) for p, t in pairs)
    ap = {th: float(np.mean([s[th] for s in sweeps])) for th in SWEEP}
    return {"ap50": ap[0.5], "ap_mean": float(np.mean(list(ap.values()))), "ap": {f"{k:g}": v for k, v in ap.items()},
            "dice": 2 * inter / max(total, 1)}


def _trained(plan: TrainingPlan):
    run = TrainingRun(plan)
    for _ in run.run():
        pass
    return run.model()


def _kept(plan: TrainingPlan, folder: Path | None):
    """The run's model with the instance settings' defaults: loaded from ``folder`` when an earlier run
    kept it there, else trained (and kept there when a folder is given); the fit is the caller's."""
    if folder is not None and (folder / "config.json").exists():
        return load_model(folder)
    model = _trained(dataclasses.replace(plan, fit_instances=False))
    if folder is not None:
        save_model(model, folder)
    return model


def _refined(model, items: list[LazyAnnotations], regime) -> list[LazyAnnotations]:
    """The items with the model's confident foreground and objects as their labels (one round)."""
    pts_key, mask_key = (i.key for i in regime.inputs)
    out = []
    for item in items:
        seg = segment(model, item.image, device="cpu")
        radius = max(2.0, np.sqrt(max(1, int(np.count_nonzero(seg.instances))) / max(1, seg.n_objects) / np.pi))
        new = refined_labels(item.labels[pts_key], item.labels[mask_key], foreground_probability(seg, model.tasks),
                             seg.instances, radius=radius)
        roi = new.trusted if item.roi is None else new.trusted & item.roi
        out.append(dataclasses.replace(item, labels={pts_key: new.points, mask_key: new.mask}, roi=roi))
    return out


def kept_machine_models(models: Path, datasets, seeds, done=()):
    """``(set, seed, folder)`` of each model of the method ``machine`` kept in ``models`` (a ``--models``
    folder), but those whose ``set/seedN`` is in ``done``."""
    for name in datasets:
        for seed in seeds:
            folder = models / run_key(name, "machine", seed).replace("/", "_")
            if f"{name}/seed{seed}" not in done and (folder / "config.json").exists():
                yield name, seed, folder


def run_key(dataset: str, method: str, seed: int) -> str:
    """A run's key: the classical pipeline trains nothing and has one run; a trained method one per seed
    (seed 0 keeps the key of the records made before seeds were run)."""
    return f"{dataset}/{method}" if method == "classical" or seed == 0 else f"{dataset}/{method}/seed{seed}"


def run_one(ds: Data, method: str, b: Budget, log, seed: int = 0, models: Path | None = None) -> dict:
    t0 = time.perf_counter()
    if method == "classical":
        pairs = []
        for _, image, truth in ds.test:
            labels = autolabel(_gray_or_rgb(image), AUTOLABEL, source=ds.name)
            pairs.append((classical_instances(labels.points, labels.foreground), truth))
        n_train, steps, cost = 0, 0, {}
    else:
        items, cost = training_items(ds, method)
        regime = points_regime()
        config = TrainConfig(steps=b.steps, batch_size=b.batch_size, patch_size=b.patch_size, device="cpu",
                             checkpoint_every=10**9, seed=seed)
        if method in POINT_METHODS or method in ("machine", "selftrain", *points_mixed.METHODS):
            opts = regime.options(**ABLATIONS.get(method, {}))
            plan = TrainingPlan(items, network=preset("cpu"), config=config, regimes=[regime],
                                options={regime.name: opts})
            if method == "selftrain":
                plan = dataclasses.replace(plan, items=_refined(_trained(plan), items, regime))
        elif method == "lazy":
            plan = TrainingPlan(items, network=preset("cpu"), config=config, regimes=lazy_regimes())
        else:
            plan = TrainingPlan(items, network=preset("cpu"), config=config, regimes=[foreground_regime()])
        # Trained without the fit, which is made here as the end of a run makes it (fit_on_labels), so the
        # test images are scored with the defaults and the fitted settings on the same probabilities.
        model = _kept(plan, None if models is None else models / run_key(ds.name, method, seed).replace("/", "_"))
        fit = fit_on_labels(model, plan.items) if plan.fit_instances else None
        fitted = model.postprocess if fit is None else dataclasses.replace(model.postprocess, instances=fit.instances)
        probs = [segment(model, _gray_or_rgb(image), device="cpu").probabilities for _, image, _ in ds.test]
        pairs = [(segmentation_from_probabilities(p, model.tasks, fitted).instances, truth)
                 for p, (_, _, truth) in zip(probs, ds.test)]
        unfitted = score([(segmentation_from_probabilities(p, model.tasks, model.postprocess).instances, truth)
                          for p, (_, _, truth) in zip(probs, ds.test)])
        n_train, steps = len(items), b.steps * (2 if method == "selftrain" else 1)
    wall = time.perf_counter() - t0
    s = score(pairs)
    record = {"key": run_key(ds.name, method, seed), "dataset": ds.name, "method": method, "seed": seed,
              "n_train": n_train,
              "steps": steps, "wall_s": round(wall, 1), **s, "cost": cost, "split": ds.split,
              "n_objects": int(sum(len(np.unique(t[t > 0])) for _, t in pairs))}
    if steps:
        record["unfitted"] = {k: unfitted[k] for k in ("ap50", "ap_mean", "dice")}
        record["instance_fit"] = None if fit is None else fit.to_dict()
    log(f"{record['key']:22s} AP50 {s['ap50']:.3f} AP[.5:.9] {s['ap_mean']:.3f} Dice {s['dice']:.3f} [{wall:.0f} s]"
        + (f" (defaults' AP50 {unfitted['ap50']:.3f})" if steps else ""))
    return record


def by_setting(records: list[dict]) -> dict[str, dict]:
    """The records of each data set and method (key ``dataset/method``) pooled over their seeds: the means
    of AP50, AP 0.5:0.9 and Dice, with ``ap50_seeds`` (one AP50 per seed) and ``seeds``."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(f"{r['dataset']}/{r['method']}", []).append(r)
    out = {}
    for key, rs in groups.items():
        rs = sorted(rs, key=lambda r: r.get("seed", 0))
        out[key] = {**rs[0], "key": key, "seeds": [r.get("seed", 0) for r in rs],
                    "ap50_seeds": [r["ap50"] for r in rs],
                    "defaults_ap50_seeds": [r["unfitted"]["ap50"] for r in rs if r.get("unfitted")],
                    **{m: float(np.mean([r[m] for r in rs])) for m in ("ap50", "ap_mean", "dice")}}
    return out


def _spread(r: dict, key: str = "ap50_seeds") -> str:
    """AP50 as mean +- standard deviation over the seeds (the mean alone for one seed; "-" for none)."""
    a = r.get(key) or []
    if not a:
        return "-"
    return mean_sd_text(a)


def targets(records: list[dict]) -> list[str]:
    by = by_setting(records)
    lines = []
    for ds in ("synthetic", "hela"):
        p, lazy = by.get(f"{ds}/points"), by.get(f"{ds}/lazy")
        if p and lazy:
            gap = p["ap50"] - lazy["ap50"]
            lines.append(f"- {ds}: points + exact foreground AP50 {p['ap50']:.3f} vs lazy at 10 % masks "
                         f"{lazy['ap50']:.3f} ({gap:+.3f}): **{'met' if gap >= -0.05 else 'missed'}** "
                         "(target: within 0.05)")
    for ds in dict.fromkeys(r["dataset"] for r in records):
        c = by.get(f"{ds}/classical")
        for method in ("machine", "selftrain"):
            m = by.get(f"{ds}/{method}")
            if m and c:
                gain = m["ap50"] - c["ap50"]
                worst = min(m["ap50_seeds"]) - c["ap50"]
                seeds = f"{len(m['seeds'])} seed{'s' if len(m['seeds']) > 1 else ''}"
                lines.append(f"- {ds}: {METHOD_NAMES[method]} AP50 {_spread(m)} ({seeds}) vs the classical pipeline "
                             f"{c['ap50']:.3f} ({gain:+.3f}; worst seed {worst:+.3f}): "
                             f"**{'met' if gain >= 0.10 else 'missed'}** (target: >= +0.10 on every set)"
                             + (_ceiling(by, ds, c["ap50"]) if method == "machine" else ""))
    return lines


#: The runs on exact labels that bound what machine-made labels can reach (same data, network and budget).
CEILINGS = ("points", "full")


def _ceiling(by: dict, ds: str, classical: float) -> str:
    """What exact labels reach on ``ds`` (the points regime with points at the true centroids and the exact
    foreground, and full supervision), and whether the target lies above both ("" without such runs)."""
    runs = [(k, by[f"{ds}/{k}"]) for k in CEILINGS if f"{ds}/{k}" in by]
    if not runs:
        return ""
    text = "; exact labels: " + ", ".join(f"{METHOD_NAMES[k]} {_spread(r)}" for k, r in runs)
    best = max(r["ap50"] for _, r in runs)
    if best < classical + 0.10:
        text += (f" (under the target's {classical + 0.10:.3f}: even exact labels do not reach it "
                 "at this budget)")
    return text


def _row(r: dict) -> str:
    c = {} if r["method"] in ("machine", "selftrain") else r["cost"]       # the machine made them
    return (f"| {METHOD_NAMES[r['method']]} | {_spread(r)} | {_spread(r, 'defaults_ap50_seeds')} | "
            f"{len(r['seeds']) if r['steps'] else '-'} | "
            f"{r['ap_mean']:.3f} | {r['dice']:.3f} | "
            f"{c.get('points_clicked', 0)} | {c.get('painted_pixels', 0)} | {c.get('objects_traced', 0)} |")


def _provenance(records: list[dict], command: str) -> str:
    """What made the records and this block: the commands the records keep (``command``, in the order
    first seen; records made before they kept one are counted), then ``command`` itself."""
    made = list(dict.fromkeys(r["command"] for r in records if r.get("command")))
    if not made:
        return f"the last invocation was `{command}`"
    older = sum(1 for r in records if not r.get("command"))
    return ("the records were made by " + ", ".join(f"`{c}`" for c in made)
            + (f" and {older} earlier record(s) by commands not kept" if older else "")
            + f"; this block by `{command}`")


def markdown(records: list[dict], command: str, machine_text: str, b: Budget,
             marks: tuple[str, str] = MARKS["quick"]) -> str:
    by = by_setting(records)
    n_seeds = max((len(r["seeds"]) for r in by.values() if r["steps"]), default=1)
    out = [marks[0], "", f"Generated by `python benchmarks/accuracy.py --suite points --threads 1 --steps "
           f"{b.steps}` (which runs or skips every setting; {_provenance(records, command)}) on {machine_text}. "
           f"Every trained run: {b.steps} steps, batch {b.batch_size} x {b.patch_size}x{b.patch_size} px, the `cpu` "
           f"preset, up to {n_seeds} training seed(s) (AP50 as mean ± standard deviation over them; the other "
           "columns are means); AP pooled over the test images. A trained run's instance settings are fitted at its end "
           "(to its exact masks or, without them, its points; no test data); *AP50, instance defaults* scores the same "
           "model's probabilities with the settings' defaults. Machine-made labels cost no click and no stroke "
           "(0 in the cost columns).", "", "### Targets", "", *targets(records), ""]
    for ds in dict.fromkeys(r["dataset"] for r in records):
        rows = sorted((r for r in by.values() if r["dataset"] == ds), key=lambda r: METHODS.index(r["method"]))
        out += [f"### {ds}", "", f"Data: {rows[0]['split']}; {rows[0]['n_objects']} test objects.", "",
                "| method | AP50 | AP50, instance defaults | seeds | AP 0.5:0.9 | Dice | points clicked | painted px | "
                "objects traced |", "|---|---|---|---|---|---|---|---|---|", *(_row(r) for r in rows), ""]
    out.append(marks[1])
    return "\n".join(out)


def main(argv=None, config: BenchConfig | None = None) -> int:
    ap = argparse.ArgumentParser(prog="accuracy.py --suite points", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="800 steps of batch 8 x 128 px (default: 200 of 4 x 96)")
    ap.add_argument("--datasets", nargs="*", default=None,
                    help="some of synthetic, mibi, ecoli, " + ", ".join(REAL_SETS))
    ap.add_argument("--methods", nargs="*", choices=METHODS, default=None)
    ap.add_argument("--steps", type=int, default=None, help="override the steps")
    ap.add_argument("--synthetic-images", type=int, default=8, help="training images of the synthetic set")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0],
                    help="training seeds of the trained methods (default: 0; the classical pipeline runs once)")
    ap.add_argument("--models", type=Path, default=None,
                    help="keep each trained model in a folder here (named after its run) and score a kept one "
                         "instead of training it again (e.g. after a change of the instance fit)")
    suite_options(ap)
    args = ap.parse_args(argv)
    mode = "full" if args.full else "quick"
    start = start_suite(args, config, "points", mode, BUDGET, argv)
    config, b, path, command, log = start.config, start.budget, start.path, start.command, start.log
    if not args.report_only:
        run_suite(path, args.datasets or list(DEFAULT_METHODS),
                  lambda name, done: [(m, seed) for m in (args.methods or DEFAULT_METHODS[name])
                                      for seed in (args.seeds[:1] if m == "classical" else args.seeds)
                                      if run_key(name, m, seed) not in done],
                  lambda name: load(name, args.synthetic_images, config),
                  lambda ds, job: run_one(ds, job[0], b, log, seed=job[1], models=args.models),
                  dict(steps_budget=b.steps, batch=b.batch_size, patch=b.patch_size, command=command), log)
    records = read_results(path, *args.merge)
    for line in targets(records):
        print(line)
    if not args.no_docs and records:
        begin, end = marks = MARKS[mode]
        write_docs(config.docs_file, markdown(records, command, records[-1]["machine"], b, marks),
                   begin=begin, end=end)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
