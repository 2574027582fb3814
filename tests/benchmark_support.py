"""What the benchmark tests share: the checkout's root on sys.path (the benchmarks are a package beside
src/, not installed), a record of the lazy suite, and a BenchConfig inside a temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.harness.config import BenchConfig  # noqa: E402
from benchmarks.harness.methods import MODES, run_key  # noqa: E402


def record(family, method, ratio, seed, dice, ap50, obj, n_strong=4, n_train=40, variant="default", **extra) -> dict:
    """A record of the lazy suite at the full budget."""
    budget = MODES["full"].budget
    return {"key": run_key(family, method, ratio, seed, variant, budget), "dataset": family,
            "family": family, "method": method, "ratio": ratio, "seed": seed, "variant": variant,
            "budget": budget, "n_strong": n_strong if method not in ("full", "fullst", "cp") else n_train,
            "n_train": n_train, "train_s": 100.0, "total_s": 120.0, "dice": dice, "ap50": ap50,
            "object_dice": obj, "ap_sweep": ap50 / 2, "mdice": obj, "object_hausdorff": 5.0, "n_gt": 50,
            "cost": {"painted_pixels": 1000, "strokes": 10, "objects_traced": 5}, "variants": {}, **extra}


def config_in(tmp_path: Path) -> BenchConfig:
    """Every place of a run inside ``tmp_path`` (docs, figures, results, cache; no real data)."""
    return BenchConfig(root=tmp_path, results=tmp_path / "results", docs_file=tmp_path / "docs" / "benchmarks.md",
                       img_dir=tmp_path / "docs" / "img", cache=tmp_path / "cache",
                       data_dirs=(tmp_path / "no-data",))
