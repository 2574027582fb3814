"""Which frames read as objects that tile the image, on every frame of the real sets (no training).

    nice -n 10 python -m benchmarks.tiling_survey --datasets em he hela phase ecoli
    python -m benchmarks.tiling_survey --report

``autolabel`` runs at its defaults on each whole frame (``*_image.tif`` with its
``*_labels.tif``) of the sets' folders under the data directory: every frame,
not only those of a benchmark's split. For each it records what the tiling
rule reads (``engine/autolabel_tiling.py``): the median distance of a
background pixel to the mask over the object diameter (the gap), the share of
the image the mask covers, its 4-connected pieces, whether the rule fired, and
the classical pipeline's AP50 on the frame. One JSON line per (set, frame)
goes to ``--results``; a frame already there is skipped. ``--report`` prints
the table per set: frames, how many read as tiled, the ranges of the gap and
the cover over the tiled and the other frames.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import gray_or_rgb
from benchmarks.harness.results import append_record, read_results
from benchmarks.harness.stamps import machine
from napari_lazylabels.engine.autolabel import autolabel, classical_instances
from napari_lazylabels.engine.autolabel_tiling import background_gap
from napari_lazylabels.engine.metrics import average_precision
from napari_lazylabels.errors import LazyLabelsError

SETS = ("em", "he", "hela", "phase", "ecoli")
RESULTS = Path(__file__).resolve().parent / "results" / "autolabel" / "tiling_survey.jsonl"


def frame_record(image: np.ndarray, truth: np.ndarray, name: str) -> dict:
    """What the tiling rule reads on one frame, and the classical pipeline's AP50 there."""
    t0 = time.perf_counter()
    try:
        labels = autolabel(gray_or_rgb(image), source=name)
    except LazyLabelsError as err:
        return {"error": str(err), "tiled": False, "classical_ap50": 0.0}
    fg = labels.foreground > 0
    ap = average_precision(classical_instances(labels.points, labels.foreground), np.asarray(truth).astype(np.int64))
    return {"tiled": bool(labels.reading.tiled), "gap": background_gap(fg) / labels.reading.diameter,
            "cover": float(fg.mean()), "pieces": int(ndi.label(fg)[1]), "points": int(len(labels.points)),
            "diameter": float(labels.reading.diameter), "classical_ap50": float(ap),
            "seconds": round(time.perf_counter() - t0, 1)}


def _range(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if values else "-"


def report(records: list[dict]) -> str:
    out = ["| set | frames | tiled | gap, tiled | gap, others | cover, tiled | cover, others | classical AP50 |",
           "|---" * 8 + "|"]
    for ds in dict.fromkeys(r["dataset"] for r in records):
        rs = [r for r in records if r["dataset"] == ds and "gap" in r]
        tiled, other = [r for r in rs if r["tiled"]], [r for r in rs if not r["tiled"]]
        out.append(f"| {ds} | {len(rs)} | {len(tiled)} | {_range([r['gap'] for r in tiled])} | "
                   f"{_range([r['gap'] for r in other])} | {_range([r['cover'] for r in tiled])} | "
                   f"{_range([r['cover'] for r in other])} | {np.mean([r['classical_ap50'] for r in rs]):.3f} |")
    return "\n".join(out)


def main(argv=None, config: BenchConfig | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tiling_survey", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="*", default=list(SETS), help="folders of the data directory")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the JSON-lines file")
    ap.add_argument("--report", action="store_true", help="print the table of the records and stop")
    args = ap.parse_args(argv)
    if not args.report:
        import tifffile
        root = (config or BenchConfig()).data_dir()
        done = {r["key"] for r in read_results(args.results)}
        stamp = {"machine": machine()}
        for ds in args.datasets:
            for path in sorted((root / ds).glob("*_image.tif")):
                name = path.name[:-len("_image.tif")]
                key = f"{ds}/{name}"
                if key in done:
                    continue
                rec = frame_record(tifffile.imread(path), tifffile.imread(path.with_name(f"{name}_labels.tif")), key)
                append_record(args.results, {"key": key, "dataset": ds, "frame": name, **rec, **stamp})
                print(f"{key:24s} {'tiled' if rec['tiled'] else 'blobs'} gap {rec.get('gap', 0):.3f} "
                      f"cover {rec.get('cover', 0):.2f} pieces {rec.get('pieces', 0):4d} "
                      f"classical {rec['classical_ap50']:.3f}", file=sys.stderr, flush=True)
    print(report(read_results(args.results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
