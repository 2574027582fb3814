"""How well the machine-made labels fit the image, measured without any training.

    nice -n 10 python -m benchmarks.autolabel_quality --tag NAME     # one line per (tag, set, frame)

For each set (synthetic, the MIBI-like noisy mode, HeLa, E. coli, phase, em,
he; the training frames of the points suite, ``benchmarks.suites.points.load``)
``autolabel`` runs at its defaults (``AutolabelConfig()``: nothing set per
set) on each whole training frame, and its labels are scored against the
frame's ground-truth instances:

* point precision: the points that fall inside a true object, at most one per
  object, over all points; point recall: the objects with at least one point;
  points per object;
* mask Dice against the true foreground;
* the estimated object diameter against the true median diameter (of a disc
  of the object's area);
* the threshold method chosen;
* AP50 of the classical pipeline (``classical_instances``: the mask cut
  between the points) on the frame, the baseline a network trained on these
  labels must beat.
* the warnings ``autolabel`` gives about its own labels
  (``MachineLabels.concerns``: a mask over almost the whole image, a single
  point for the size read); the table counts the frames warned about.

Resumable: each frame's record is appended to
``benchmarks/results/autolabel_quality.jsonl`` under the key
``tag/set/frame``; a rerun skips the keys already there. ``--report`` prints
the markdown table of one or more tags (pooled per set: precision and recall
over all points and objects, Dice over all pixels, the median of the
diameters).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import gray_or_rgb
from benchmarks.harness.results import append_record, read_results
from benchmarks.harness.stamps import machine
from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel, classical_instances
from napari_lazylabels.engine.autolabel_mask import disc_diameter
from napari_lazylabels.engine.metrics import average_precision
from napari_lazylabels.errors import LazyLabelsError

SETS = ("synthetic", "mibi", "hela", "ecoli", "phase", "em", "he")
RESULTS = Path(__file__).resolve().parent / "results" / "autolabel_quality.jsonl"


def point_scores(points: np.ndarray, truth: np.ndarray) -> dict:
    """Points against instances: hits (distinct objects with a point), points, objects."""
    ids = np.unique(truth[truth > 0])
    pix = np.floor(np.asarray(points, np.float64).reshape(-1, 3)[:, :2] + 0.5).astype(int)
    pix = pix[(pix[:, 0] >= 0) & (pix[:, 0] < truth.shape[0]) & (pix[:, 1] >= 0) & (pix[:, 1] < truth.shape[1])]
    under = truth[pix[:, 0], pix[:, 1]] if len(pix) else np.zeros(0, truth.dtype)
    hit = np.unique(under[under > 0])
    return {"points": int(len(points)), "objects": int(len(ids)), "hits": int(len(hit))}


def true_diameter(truth: np.ndarray) -> float:
    """The median diameter of a disc of each object's area (0 without objects)."""
    d = disc_diameter(truth)
    return 0.0 if d is None else d


def frame_record(name: str, image: np.ndarray, truth: np.ndarray, config: AutolabelConfig) -> dict:
    t0 = time.perf_counter()
    truth = np.asarray(truth).astype(np.int64)
    try:
        labels = autolabel(gray_or_rgb(image), config, source=name)
    except LazyLabelsError as err:
        obj = len(np.unique(truth[truth > 0]))
        return {"error": str(err), "points": 0, "objects": obj, "hits": 0, "inter": 0,
                "fg_total": int(np.count_nonzero(truth)), "classical_ap50": 0.0,
                "true_diameter": true_diameter(truth), "seconds": round(time.perf_counter() - t0, 1)}
    fg = labels.foreground > 0
    rec = point_scores(labels.points, truth)
    rec.update(inter=int(np.count_nonzero(fg & (truth > 0))),
               fg_total=int(np.count_nonzero(fg) + np.count_nonzero(truth)),
               classical_ap50=float(average_precision(classical_instances(labels.points, labels.foreground), truth)),
               diameter=float(labels.reading.diameter), true_diameter=true_diameter(truth),
               dark=bool(labels.reading.dark), denoise=float(labels.reading.denoise), method=labels.method,
               why=labels.why, describe=labels.describe(), concerns=labels.concerns(),
               seconds=round(time.perf_counter() - t0, 1))
    return rec


def _shows_as(record: dict) -> str:
    """How the labels read the objects: by their texture, or brighter or darker than the background."""
    return "texture" if "texture" in record.get("describe", "") else "dark" if record["dark"] else "bright"


def pooled(records: list[dict]) -> dict:
    pts = sum(r["points"] for r in records)
    obj = sum(r["objects"] for r in records)
    hits = sum(r["hits"] for r in records)
    d = [r["diameter"] for r in records if "diameter" in r]
    methods = sorted({r.get("method", "error") for r in records})
    return {"precision": hits / max(pts, 1), "recall": hits / max(obj, 1), "per_object": pts / max(obj, 1),
            "dice": 2 * sum(r["inter"] for r in records) / max(sum(r["fg_total"] for r in records), 1),
            "diameter": float(np.median(d)) if d else float("nan"),
            "true_diameter": float(np.median([r["true_diameter"] for r in records])),
            "polarity": "/".join(sorted({_shows_as(r) for r in records if "dark" in r})),
            "method": "/".join(methods), "classical_ap50": float(np.mean([r["classical_ap50"] for r in records])),
            "errors": sum("error" in r for r in records), "frames": len(records),
            "warned": sum(bool(r.get("concerns")) for r in records) if all("concerns" in r or "error" in r
                                                                           for r in records) else None}


def table(records: list[dict], tags: list[str]) -> str:
    out = ["| set | labels | frames | points / object | point precision | point recall | mask Dice | "
           "diameter (true) px | polarity | threshold | classical AP50 | frames warned |", "|---" * 12 + "|"]
    for ds in SETS:
        for tag in tags:
            rs = [r for r in records if r.get("tag") == tag and r.get("dataset") == ds]
            if not rs:
                continue
            p = pooled(rs)
            err = f" ({p['errors']} failed)" if p["errors"] else ""
            out.append(f"| {ds} | {tag} | {p['frames']}{err} | {p['per_object']:.2f} | {p['precision']:.2f} | "
                       f"{p['recall']:.2f} | {p['dice']:.2f} | {p['diameter']:.0f} ({p['true_diameter']:.0f}) | "
                       f"{p['polarity']} | {p['method']} | {p['classical_ap50']:.3f} | "
                       f"{'-' if p['warned'] is None else p['warned']} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.autolabel_quality", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tag", default="current", help="name of this version of the labels (the records' key)")
    ap.add_argument("--datasets", nargs="*", default=list(SETS), choices=SETS)
    ap.add_argument("--synthetic-images", type=int, default=4, help="training images of the synthetic set")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the JSON-lines file")
    ap.add_argument("--report", nargs="*", default=None, metavar="TAG",
                    help="print the table of these tags (none given: every tag in the file) and stop")
    args = ap.parse_args(argv)
    if args.report is not None:
        records = read_results(args.results)
        tags = args.report or list(dict.fromkeys(r["tag"] for r in records))
        print(table(records, tags))
        return 0
    from benchmarks.suites.points import load
    done = {r["key"] for r in read_results(args.results)}
    config, bench = AutolabelConfig(), BenchConfig()
    stamp = {"machine": machine(), "load": os.getloadavg()[0]}
    for ds in args.datasets:
        data = load(ds, args.synthetic_images, bench)
        for name, image, truth in data.train:
            key = f"{args.tag}/{ds}/{name}"
            if key in done:
                continue
            rec = frame_record(name, image, truth, config)
            append_record(args.results, {"key": key, "tag": args.tag, "dataset": ds, "frame": name, **rec, **stamp})
            print(f"{key:40s} {rec['points']:5d} pts {rec['objects']:4d} obj {rec['hits']:4d} hit "
                  f"d {rec.get('diameter', 0):5.1f} ({rec['true_diameter']:5.1f}) AP50 {rec['classical_ap50']:.3f} "
                  f"{rec.get('method', rec.get('error', ''))} [{rec['seconds']} s]", file=sys.stderr, flush=True)
    print(table(read_results(args.results), [args.tag]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
