"""The instance step of models trained on machine-made labels, against two steps without seeds: paired, on the
same kept models and the same probabilities.

    nice -n 10 python -m benchmarks.instance_variants --models MODELS --datasets em he hela mibi synthetic phase
    python -m benchmarks.instance_variants --report      # the table, also into docs/benchmarks.md
    python -m benchmarks.instance_variants --models MODELS --datasets ecoli --figure docs/img/F.png

``--figure`` draws the first set's first seed instead: its first test image's seed and interface
probabilities, and its objects without and with the seed join (outlines over the true ones).

``MODELS`` is the ``--models`` folder of a ``benchmarks.accuracy --suite points --full`` run (one folder per
kept model, named after its run: ``em_machine``, ``em_machine_seed1``, ...). For each kept model of the
method ``machine`` the points suite's own fit is made again (to the machine-made points of the training
tiles, as the end of a training makes it), the test images are predicted once, and their instances are
made six ways from the same probabilities:

* **seeds, fitted**: the package's step (seeded watershed) with the fitted settings: what the points suite
  scores;
* **seeds, fitted, seed pull**: the same step and settings with the seed head's probability subtracted
  from the watershed's elevation (``seed_pull=1``; tried on 2026-12-07, not the package's default);
* **seeds, fitted, no join**: the same step and settings with the seed join off (``seed_join_threshold``
  0.5: each piece of the seed head's argmax is a seed, as before 2026-12-07);
* **seeds, defaults**: the same step with the settings' defaults;
* **components**: the connected components of the fitted foreground, pieces under the fitted smallest
  object dropped (no seed, no interface);
* **components cut by interfaces**: the same, with the predicted interfaces (boundary probability over
  the fitted interface threshold) taken out first.

The point agreement the fit maximises (:func:`~napari_lazylabels.engine.instance_fitting_points.
agreement_score`) is given for the seeds and for the components on the training tiles: it says whether
the fit could tell the two apart. One JSON line per (set, seed) goes to ``--results``; a line already
there is skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import gray_or_rgb
from benchmarks.harness.options import kept_model_options
from benchmarks.harness.results import append_record, done_keys, read_results
from benchmarks.harness.stamps import machine
from benchmarks.report.docs import write_docs
from benchmarks.report.tables import mean_sd_text
from benchmarks.suites import points as suite
from napari_lazylabels.engine.instance_fitting import MAX_IMAGES
from napari_lazylabels.engine.instance_fitting_points import agreement_score
from napari_lazylabels.engine.labels import drop_small
from napari_lazylabels.engine.pipeline import segment, segmentation_from_probabilities
from napari_lazylabels.engine.postprocess.instances import instances_from_probabilities
from napari_lazylabels.engine.postprocess.settings import NO_SEED_JOIN
from napari_lazylabels.engine.tasks import BOUNDARIES, SEEDS, heads_by_role
from napari_lazylabels.io.figures import overlay_rgb, pyplot
from napari_lazylabels.io.modelio import load_model
from napari_lazylabels.recipes.instance_fit import fit_on_labels, point_examples

RESULTS = Path(__file__).resolve().parent / "results" / "autolabel" / "instance_variants.jsonl"
#: The block of docs/benchmarks.md the report rewrites.
MARKS = ("<!-- instance-variants:begin -->", "<!-- instance-variants:end -->")
VARIANTS = ("seeds, fitted", "seeds, fitted, seed pull", "seeds, fitted, no join", "seeds, defaults", "components",
            "components cut by interfaces")
SEEDS_FITTED, SEED_PULL, NO_JOIN, SEEDS_DEFAULTS, COMPONENTS, COMPONENTS_CUT = VARIANTS
#: The variants whose point agreement on the training tiles is recorded (what the fit could see).
AGREEMENT_VARIANTS = (SEEDS_FITTED, COMPONENTS, COMPONENTS_CUT)


def components(foreground: np.ndarray, min_size: int, interfaces: np.ndarray | None = None) -> np.ndarray:
    """The 4-connected components of ``foreground`` (minus ``interfaces``), those under ``min_size`` px
    dropped (instance map, ids 1..N)."""
    region = np.asarray(foreground, bool) & (True if interfaces is None else ~np.asarray(interfaces, bool))
    labels = ndi.label(region)[0].astype(np.int32)
    drop_small(labels, min_size)
    return relabel_sequential(labels)[0]


def _variants(probabilities: dict, model, fitted) -> dict[str, np.ndarray]:
    seg = segmentation_from_probabilities(probabilities, model.tasks, fitted)
    heads = heads_by_role(probabilities, model.tasks)
    boundary = heads.get(BOUNDARIES)
    cut = None if boundary is None else np.asarray(boundary)[1] > fitted.instances.interface_threshold
    _, pulled = instances_from_probabilities(heads, fitted.instances, seed_pull=1.0)
    _, joinless = instances_from_probabilities(heads, dataclasses.replace(fitted.instances, seed_join_threshold=NO_SEED_JOIN))
    return {SEEDS_FITTED: seg.instances,
            SEED_PULL: pulled,
            NO_JOIN: joinless,
            SEEDS_DEFAULTS: segmentation_from_probabilities(probabilities, model.tasks, model.postprocess).instances,
            COMPONENTS: components(seg.semantic > 0, fitted.instances.min_size),
            COMPONENTS_CUT: components(seg.semantic > 0, fitted.instances.min_size, cut)}


def _fitted_model(name: str, folder: Path, config: BenchConfig):
    """The set, the kept model, its machine-made training items, and the points suite's fit made again:
    ``(data, model, items, fit or None, the post-processing with the fitted settings)``."""
    ds = suite.load(name, 8, config)
    model = load_model(folder)
    items, _ = suite.training_items(ds, "machine")
    fit = fit_on_labels(model, items)
    fitted = model.postprocess if fit is None else dataclasses.replace(model.postprocess, instances=fit.instances)
    return ds, model, items, fit, fitted


def run_one(name: str, seed: int, folder: Path, config: BenchConfig) -> dict:
    t0 = time.perf_counter()
    ds, model, items, fit, fitted = _fitted_model(name, folder, config)
    made = [_variants(segment(model, gray_or_rgb(image), device="cpu").probabilities, model, fitted)
            for _, image, _ in ds.test]
    truths = [t for _, _, t in ds.test]
    record = {"key": f"{name}/seed{seed}", "dataset": name, "seed": seed, "model": folder.name,
              "n_objects": int(sum(len(np.unique(t[t > 0])) for t in truths)),
              "instance_fit": None if fit is None else fit.to_dict()}
    for v in VARIANTS:
        maps = [m[v] for m in made]
        scores = suite.score(list(zip(maps, truths)))
        record[v] = {"ap50": scores["ap50"], "ap_mean": scores["ap_mean"], "objects": int(sum(m.max() for m in maps))}
    examples = [(image, pts) for image, pts in point_examples(items) if len(pts)][:MAX_IMAGES]
    if fit is not None and examples:
        train = [_variants(segment(model, image, device="cpu").probabilities, model, fitted) for image, _ in examples]
        pts = [p for _, p in examples]
        record["train_agreement"] = {v: agreement_score([t[v] for t in train], pts, fit.median_area)
                                     for v in AGREEMENT_VARIANTS}
    record["wall_s"] = round(time.perf_counter() - t0, 1)
    record["machine"] = machine()
    return record


def figure(name: str, seed: int, folder: Path, config: BenchConfig, path: Path) -> Path:
    """The seed join on one test image: the seed head's and the interface head's probability, and the
    fitted objects without and with the join, outlined in red over the true ones (green)."""
    ds, model, _, _, fitted = _fitted_model(name, folder, config)
    _, image, truth = ds.test[0]
    image = gray_or_rgb(image)
    probabilities = segment(model, image, device="cpu").probabilities
    made = _variants(probabilities, model, fitted)
    heads = heads_by_role(probabilities, model.tasks)
    scores = {v: suite.score([(made[v], truth)])["ap50"] for v in (NO_JOIN, SEEDS_FITTED)}
    ys, xs = np.nonzero(truth)        # drawn: the true objects' box and a margin of 16 px
    win = (slice(max(ys.min() - 16, 0), ys.max() + 17), slice(max(xs.min() - 16, 0), xs.max() + 17))
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(13, 4.2))
    panels = [(np.asarray(heads[SEEDS])[1], "seed head: P(object's core)"),
              (np.zeros(truth.shape) if BOUNDARIES not in heads else np.asarray(heads[BOUNDARIES])[1],
               "interface head: P(interface)")]
    for ax, (prob, title) in zip(axes[:2], panels):
        ax.imshow(prob[win], cmap="magma", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
    for ax, v, words in zip(axes[2:], (NO_JOIN, SEEDS_FITTED), ("without the seed join", "with the seed join")):
        ax.imshow(overlay_rgb(image[win], made[v][win], reference=truth[win]))
        ax.set_title(f"{words}: {int(made[v].max())} objects, AP50 {scores[v]:.2f}", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(f"{name}, seed {seed}: trained on machine-made labels; {len(np.unique(truth[truth > 0]))} "
                 "true objects (green outlines), the objects found (red)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def report(records: list[dict]) -> str:
    """The markdown table: AP50 per variant, mean and standard deviation over the seeds, and the objects made."""
    agreement = "training agreement: " + " / ".join(("seeds", "components", "cut"))
    out = ["| set | seeds | true objects | " + " | ".join(VARIANTS) + f" | {agreement} |",
           "|---" * (len(VARIANTS) + 4) + "|"]
    for name in dict.fromkeys(r["dataset"] for r in records):
        rs = [r for r in records if r["dataset"] == name]
        cells = []
        for v in VARIANTS:
            ap = [r[v]["ap50"] for r in rs if v in r]
            if not ap:  # records made before the variant was
                cells.append("-")
                continue
            cells.append(f"{mean_sd_text(ap)} ({np.mean([r[v]['objects'] for r in rs if v in r]):.0f})")
        agree = [r.get("train_agreement") for r in rs if r.get("train_agreement")]
        tail = " / ".join(f"{np.mean([a[v] for a in agree]):.2f}" if all(v in a for a in agree) else "-"
                          for v in AGREEMENT_VARIANTS) if agree else "-"
        out.append(f"| {name} | {len(rs)} | {rs[0]['n_objects']} | " + " | ".join(cells) + f" | {tail} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.instance_variants", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    kept_model_options(ap, ["em", "he", "hela", "mibi", "synthetic", "phase"], [0], RESULTS)
    ap.add_argument("--report", action="store_true", help="print the table of the results file and stop")
    ap.add_argument("--docs", type=Path, default=BenchConfig().docs_file,
                    help="the Markdown file whose instance-variants block the table replaces")
    ap.add_argument("--no-docs", action="store_true", help="do not write the table into --docs")
    ap.add_argument("--figure", type=Path, help="draw the seed join on the first set's first seed into this PNG")
    args = ap.parse_args(argv)
    if args.figure is not None:
        if args.models is None:
            ap.error("--models is needed for --figure")
        name, seed = args.datasets[0], args.seeds[0]
        folder = args.models / suite.run_key(name, "machine", seed).replace("/", "_")
        print(figure(name, seed, folder, BenchConfig(), args.figure))
        return 0
    if not args.report:
        if args.models is None:
            ap.error("--models is needed to score (or --report)")
        done = done_keys(args.results)
        config = BenchConfig()
        for name, seed, folder in suite.kept_machine_models(args.models, args.datasets, args.seeds, done):
            record = run_one(name, seed, folder, config)
            append_record(args.results, record)
            print(f"{name} seed {seed}: " + ", ".join(f"{v} {record[v]['ap50']:.3f}" for v in VARIANTS), flush=True)
    if not args.results.exists():
        print("no results yet")
        return 0
    table = report(read_results(args.results))
    print(table)
    if not args.no_docs:
        write_docs(args.docs, f"{MARKS[0]}\n\n{table}\n\n{MARKS[1]}", *MARKS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
