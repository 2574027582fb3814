"""Instance settings fitted to the exact masks, against the defaults: paired, on the same models.

    nice -n 10 python -m benchmarks.instance_fit --datasets phase em he --methods full mt --seeds 0 1 2
    python -m benchmarks.instance_fit --report

Each job (set, method, seed) trains the lazy suite's plan of that method at the full mode's budget
(800 steps of 8 x 128 px, the ``cpu`` network; ``mt``: every lazy label and the exact masks on 10 % of
the training tiles, ``full``: on all of them), saves the model in ``--models`` (so a killed run
resumes where it stopped, and the scoring can be rerun), then scores the test frames twice with the
SAME probabilities: with the default instance settings, and with the settings
:func:`~napari_lazylabels.recipes.instance_fit.fit_on_exact_masks` fits to the run's own exact masks
(the strong training tiles: no test data), as ``lazylabels train`` does at the end of a run. One JSON
line per job goes to ``--results``; a job already there is skipped. ``--report`` prints the block of
``docs/benchmarks.md`` (means and seed spreads).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import lazy_dataset
from benchmarks.harness.methods import MODES
from benchmarks.harness.queue import strong_of
from benchmarks.suites.scoring import score
from benchmarks.suites.training_plans import train, train_config, training_plan
from napari_lazylabels.engine.annotations import PaintedImage
from napari_lazylabels.engine.pipeline import segment, segmentation_from_probabilities
from napari_lazylabels.io.modelio import load_model, save_model
from napari_lazylabels.recipes.instance_fit import fit_on_exact_masks

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "instance_fit.jsonl"
METRICS = ("ap50", "ap_sweep", "dice", "object_dice", "mdice")


def _done(results: Path) -> set[str]:
    if not results.exists():
        return set()
    out = set()
    for line in results.read_text().splitlines():
        try:
            out.add(json.loads(line)["job"])
        except (ValueError, KeyError):
            continue            # a line cut short by a kill
    return out


def _trained(family: str, method: str, seed: int, ds, folder: Path) -> tuple[object, dict]:
    """The job's model: loaded from ``folder`` when a previous run saved it, trained otherwise."""
    if (folder / "bench.json").exists():
        return load_model(folder), json.loads((folder / "bench.json").read_text())
    mode = MODES["full"]
    strong = strong_of(method, ds, 0.1)
    config, network = train_config(mode, seed)
    plan, _ = training_plan(method, ds, strong, mode, config, network)
    run, train_s = train(plan)
    model = run.model()
    save_model(model, folder)
    info = {"train_s": round(train_s, 1), "steps": run.step, "strong": sorted(strong)}
    (folder / "bench.json").write_text(json.dumps(info))
    return model, info


def run_job(family: str, method: str, seed: int, ds, models: Path) -> dict:
    model, info = _trained(family, method, seed, ds, models / f"{family}_{method}_s{seed}")
    probs = [segment(model, image).probabilities for _, image, _ in ds.test]
    plain = score([segmentation_from_probabilities(p, model.tasks, model.postprocess).instances for p in probs], ds)
    strong = set(info["strong"])
    t0 = time.perf_counter()
    fit = fit_on_exact_masks(model, [it for i, it in enumerate(_items(ds)) if i in strong])
    fit_s = time.perf_counter() - t0
    post = model.postprocess if fit is None else replace(model.postprocess, instances=fit.instances)
    fitted = score([segmentation_from_probabilities(p, model.tasks, post).instances for p in probs], ds)
    return {"job": f"{family}:{method}:{seed}", "family": family, "method": method, "seed": seed,
            "train_s": info["train_s"], "steps": info["steps"], "strong_images": len(strong),
            "plain": {k: plain[k] for k in METRICS}, "fitted": {k: fitted[k] for k in METRICS},
            "fit": None if fit is None else fit.to_dict(), "fit_s": round(fit_s, 1)}


def _items(ds) -> list[PaintedImage]:
    """The training tiles as painted images (their exact masks and interfaces: what the fit reads)."""
    return [PaintedImage(s.image, dict(s.labels), name=s.name) for s in ds.train]


def report(results: Path) -> str:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    lines = ["| set | method | seeds | AP50 defaults | AP50 fitted | gain | AP 0.5-0.9 defaults | fitted | "
             "Dice defaults | fitted |", "|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["family"], r["method"]) for r in rows})
    for fam, method in keys:
        rs = [r for r in rows if (r["family"], r["method"]) == (fam, method)]

        def cell(side, metric):
            v = np.array([r[side][metric] for r in rs])
            return f"{v.mean():.3f}" + (f" ± {v.std():.3f}" if len(v) > 1 else "")

        gain = np.array([r["fitted"]["ap50"] - r["plain"]["ap50"] for r in rs])
        lines.append(f"| {fam} | {method} | {len(rs)} | {cell('plain', 'ap50')} | {cell('fitted', 'ap50')} | "
                     f"{gain.mean():+.3f} (min {gain.min():+.3f}) | {cell('plain', 'ap_sweep')} | "
                     f"{cell('fitted', 'ap_sweep')} | {cell('plain', 'dice')} | {cell('fitted', 'dice')} |")
    return "\n".join(lines)


def write_block(docs: Path, table: str) -> None:
    """Replace the text between the ``instance-fit`` markers of ``docs`` with ``table``."""
    begin, end = "<!-- instance-fit:begin -->", "<!-- instance-fit:end -->"
    text = docs.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{docs}: no {begin} ... {end} block")
    head, rest = text.split(begin, 1)
    docs.write_text(head + begin + "\n" + table + "\n" + end + rest.split(end, 1)[1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--datasets", nargs="+", default=["phase", "em", "he"])
    ap.add_argument("--methods", nargs="+", default=["full", "mt"], choices=["full", "mt", "sl"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--data", type=Path, default=None, help="the real sets (default: ../shared/data)")
    ap.add_argument("--models", type=Path, default=BenchConfig().cache / "instance_fit_models",
                    help="where the trained models are kept (resume, rescoring)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--report", action="store_true", help="print the table of --results and stop")
    ap.add_argument("--write-docs", action="store_true",
                    help="with --report: also put the table into its block of docs/benchmarks.md")
    args = ap.parse_args(argv)
    if args.report:
        table = report(args.results)
        print(table)
        if args.write_docs:
            write_block(BenchConfig().docs_file, table)
        return 0
    torch.set_num_threads(args.threads)
    data = args.data or BenchConfig().data_dir()
    done = _done(args.results)
    args.models.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for family in args.datasets:
            ds = None
            for method in args.methods:
                if f"{family}:{method}:{seed}" in done:
                    continue
                ds = ds or lazy_dataset(family, "full", data, pseudo=False)
                t0 = time.perf_counter()
                rec = run_job(family, method, seed, ds, args.models)
                rec["wall_s"] = round(time.perf_counter() - t0, 1)
                with args.results.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(f"{rec['job']}: AP50 {rec['plain']['ap50']:.3f} -> {rec['fitted']['ap50']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
