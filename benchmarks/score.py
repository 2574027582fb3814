"""Score predicted instance labels against ground truth.

    python benchmarks/score.py PRED.tif GT_labels.tif [PRED2.tif GT2.tif ...]

Prints Dice, AP50, object Dice and object Hausdorff per pair and pooled.
"""

from __future__ import annotations

import json
import sys

import tifffile

from napari_lazylabels.engine.metrics import aggregate, summarize


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or len(args) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    summaries = []
    for pred_path, gt_path in zip(args[::2], args[1::2]):
        s = summarize(tifffile.imread(pred_path), tifffile.imread(gt_path))
        summaries.append(s)
        print(f"{pred_path}: Dice {s['dice']:.3f}  AP50 {s['ap50']:.3f}  object Dice {s['object_dice']:.3f}  "
              f"Hausdorff {s['object_hausdorff']:.1f}  objects {s['n_pred']}/{s['n_gt']}")
    total = aggregate(summaries)
    print(json.dumps({k: total[k] for k in ("dice", "ap50", "object_dice", "object_hausdorff")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
