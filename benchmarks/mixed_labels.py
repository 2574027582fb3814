"""What each part of the machine-made labels costs the network: the table of the points suite's diagnostics.

    python -m benchmarks.mixed_labels --results benchmarks/results/autolabel/points_full_mixed.jsonl \
        benchmarks/results/autolabel/points_full.jsonl --dataset synthetic

The runs themselves are the points suite's (``python -m benchmarks.accuracy --suite points --full --methods
centroids_machine_mask machine_points_exact_mask centroids_of_found machine_points_and_missed ...``; the
mixes are described in ``benchmarks/suites/points_mixed.py``). This prints, for one set, the network trained
on each mix between the machine-made labels and the exact ones: AP50 per seed, mean ± sd, AP 0.5:0.9, Dice.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.harness.results import read_results
from benchmarks.suites.points import METHOD_NAMES
from benchmarks.suites.points_mixed import report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.mixed_labels", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, nargs="+", required=True,
                    help="records files, the first holding a key wins (e.g. the diagnostics', then points_full.jsonl)")
    ap.add_argument("--dataset", default="synthetic")
    args = ap.parse_args(argv)
    missing = [str(p) for p in args.results if not p.exists()]
    if missing:
        raise SystemExit(f"no records file at {', '.join(missing)}")
    print(report(read_results(*args.results), args.dataset, METHOD_NAMES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
