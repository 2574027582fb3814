"""How far the instance settings the points cannot fit move the test score: the fit started from other
values, paired on the same kept models and probabilities.

    nice -n 10 python -m benchmarks.instance_starts --models MODELS --datasets ecoli --seeds 0 1 2

``MODELS`` is the ``--models`` folder of a ``benchmarks.accuracy --suite points --full`` run (as for
``benchmarks.instance_variants``). For each kept model of the method ``machine``, the points suite's fit to
the machine-made points of the training tiles is made from the package's defaults and from each start of
:data:`STARTS` (a smallest seed, or a seed join threshold, which the fit then tries against no join), and
the test images are scored with each fitted setting. Where the fit cannot tell the starts apart on the
training tiles (its agreement is the same), the start decides, and the spread over the starts is how much
of a test score rests on a setting no label chose.

One JSON line per (set, seed) goes to ``--results`` (one already there is skipped); the table is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import gray_or_rgb
from benchmarks.harness.options import kept_model_options
from benchmarks.harness.results import append_record, done_keys, read_results
from benchmarks.harness.stamps import machine
from benchmarks.report.tables import mean_sd_text
from benchmarks.suites import points as suite
from napari_lazylabels.engine import instance_fitting
from napari_lazylabels.engine.pipeline import segment, segmentation_from_probabilities
from napari_lazylabels.engine.postprocess.settings import NO_SEED_JOIN
from napari_lazylabels.io.modelio import load_model
from napari_lazylabels.recipes.instance_fit import fit_on_labels

RESULTS = Path(__file__).resolve().parent / "results" / "autolabel" / "instance_starts.jsonl"
#: The starts tried besides the defaults: name -> the instance settings changed.
STARTS = {"defaults": {}, "smallest seed 14 px": {"min_seed_area": 14},
          "smallest seed 28 px": {"min_seed_area": 28}, "join over 0.2": {"seed_join_threshold": 0.2},
          "join over 0.1": {"seed_join_threshold": 0.1}}


def _fitted_from(model, items, change: dict):
    """The post-processing the fit chooses from the model's settings with ``change``, and the fit."""
    start = dataclasses.replace(model.postprocess.instances, **change)
    joins = instance_fitting.SEED_JOINS
    instance_fitting.SEED_JOINS = (start.seed_join_threshold, NO_SEED_JOIN)      # the join tried against none
    try:
        fit = fit_on_labels(dataclasses.replace(model, postprocess=dataclasses.replace(
            model.postprocess, instances=start)), items)
    finally:
        instance_fitting.SEED_JOINS = joins
    params = start if fit is None else fit.instances
    return dataclasses.replace(model.postprocess, instances=params), fit


def run_one(name: str, seed: int, folder: Path, config: BenchConfig) -> dict:
    t0 = time.perf_counter()
    ds = suite.load(name, 8, config)
    model = load_model(folder)
    items, _ = suite.training_items(ds, "machine")
    probabilities = [segment(model, gray_or_rgb(image), device="cpu").probabilities for _, image, _ in ds.test]
    truths = [t for _, _, t in ds.test]
    record = {"key": f"{name}/seed{seed}", "dataset": name, "seed": seed, "model": folder.name}
    for label, change in STARTS.items():
        post, fit = _fitted_from(model, items, change)
        maps = [segmentation_from_probabilities(p, model.tasks, post).instances for p in probabilities]
        record[label] = {"ap50": suite.score(list(zip(maps, truths)))["ap50"],
                         "objects": int(sum(m.max() for m in maps)),
                         "min_seed_area": post.instances.min_seed_area,
                         "seed_join_threshold": post.instances.seed_join_threshold,
                         "train_score": None if fit is None else round(fit.after, 4)}
    record.update(wall_s=round(time.perf_counter() - t0, 1), machine=machine())
    return record


def report(records: list[dict]) -> str:
    """AP50 per start (mean ± sd over the seeds, then each seed's), and the fit's score on the training
    tiles (the same in every column: the fit could not choose)."""
    out = ["| set | seeds | " + " | ".join(STARTS) + " | fit's training score per start |",
           "|---" * (len(STARTS) + 3) + "|"]
    for name in dict.fromkeys(r["dataset"] for r in records):
        rs = sorted((r for r in records if r["dataset"] == name), key=lambda r: r["seed"])
        cells = []
        for label in STARTS:
            ap = [r[label]["ap50"] for r in rs]
            cells.append(f"{mean_sd_text(ap)} ({', '.join(f'{a:.2f}' for a in ap)})")
        train = " / ".join(f"{np.mean([r[label]['train_score'] or 0 for r in rs]):.3f}" for label in STARTS)
        out.append(f"| {name} | {len(rs)} | " + " | ".join(cells) + f" | {train} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.instance_starts", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    kept_model_options(ap, ["ecoli"], [0, 1, 2], RESULTS)
    args = ap.parse_args(argv)
    if args.models is not None:
        done = done_keys(args.results)
        for name, seed, folder in suite.kept_machine_models(args.models, args.datasets, args.seeds, done):
            record = run_one(name, seed, folder, BenchConfig())
            append_record(args.results, record)
            print(f"{name} seed {seed}: " + ", ".join(f"{k} {record[k]['ap50']:.3f}" for k in STARTS), flush=True)
    if not args.results.exists():
        print("no results yet")
        return 0
    print(report([r for r in read_results(args.results) if r["dataset"] in args.datasets]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
