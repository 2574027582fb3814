"""What holds the classical pipeline back: its points or its mask. No training.

    python -m benchmarks.classical_bounds --datasets synthetic mibi hela he em ecoli phase

The classical pipeline of the points suite (``classical_instances``: the mask cut between the points by a
seeded watershed of its distance transform) is run on each set's test images four ways: with the
machine-made points and mask (``autolabel`` at its defaults, what the suite scores), with a point at each
true object's centroid (``points_of_instances``, as the suite's exact points) instead of the machine points, with the true foreground instead of the machine
mask, and with both true. AP50 pooled over the test images, as the suite scores it. A network trained on
machine-made labels has to beat the first column; if exact points alone barely move it, the classical
pipeline is held back by its mask, and better points can only help the network.

One JSON line per set goes to ``--results`` (a set already there is skipped); the table is printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import gray_or_rgb
from benchmarks.harness.results import append_record, done_keys, read_results
from benchmarks.harness.stamps import machine
from benchmarks.suites import points as suite
from napari_lazylabels.engine.autolabel import autolabel, classical_instances
from napari_lazylabels.engine.points import points_of_instances

RESULTS = Path(__file__).resolve().parent / "results" / "autolabel" / "classical_bounds.jsonl"
SETS = ("synthetic", "mibi", "hela", "he", "em", "ecoli", "phase")
#: The columns: which points and which mask the pipeline is given.
WAYS = ("machine points, machine mask", "true centroids, machine mask", "machine points, true mask",
        "true centroids, true mask")


def run_one(name: str, config: BenchConfig) -> dict:
    t0 = time.perf_counter()
    ds = suite.load(name, 8, config)
    made: dict[str, list] = {w: [] for w in WAYS}
    for _, image, truth in ds.test:
        truth = np.asarray(truth)
        labels = autolabel(gray_or_rgb(image), suite.AUTOLABEL, source=name)
        exact_points, exact_mask = points_of_instances(truth), (truth > 0).astype(np.uint8)
        for way, (pts, mask) in zip(WAYS, ((labels.points, labels.foreground), (exact_points, labels.foreground),
                                          (labels.points, exact_mask), (exact_points, exact_mask))):
            made[way].append((classical_instances(pts, mask), truth))
    return {"key": name, "dataset": name, **{w: suite.score(made[w])["ap50"] for w in WAYS},
            "n_test": len(ds.test), "wall_s": round(time.perf_counter() - t0, 1), "machine": machine()}


def report(records: list[dict]) -> str:
    out = ["| set | " + " | ".join(WAYS) + " |", "|---" * (len(WAYS) + 1) + "|"]
    for r in records:
        out.append(f"| {r['dataset']} | " + " | ".join(f"{r[w]:.3f}" for w in WAYS) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.classical_bounds", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="*", default=list(SETS), choices=SETS)
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    done = done_keys(args.results)
    config = BenchConfig()
    for name in args.datasets:
        if name not in done:
            append_record(args.results, run_one(name, config))
    records = [r for r in read_results(args.results) if r["dataset"] in args.datasets]
    print(report(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
