"""Resumable results: one JSON line per finished run, keyed; a CSV beside it.

A line a kill cut short is closed and skipped; two workers sharing a file may both run a setting, and
the first line of a key counts. Older records (and records made elsewhere, e.g. on a lent GPU) are read
as they are: readers use ``record.get`` for every field added later.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path


def append_record(path: Path, record: dict) -> None:
    """One JSON line more in the results file; a line a kill cut short (no newline at its end) is
    closed first, so it stays the only line lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cut = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "a") as fh:
        fh.write(("\n" if cut else "") + json.dumps(record, default=float) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_results(*paths: Path | str) -> list[dict]:
    """The runs of one or more results files, one per key: the first line of a key, files in the order
    given (so a file merged after the run's own adds only keys the run's file lacks)."""
    out: dict[str, dict] = {}
    for path in map(Path, paths):
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:      # a line cut short by a kill
                    continue
                out.setdefault(rec.get("key", f"#{len(out)}"), rec)
    return list(out.values())


def done_keys(path: Path) -> set[str]:
    return {r["key"] for r in read_results(path) if "key" in r}


CSV_COLUMNS = ("key", "dataset", "family", "method", "ratio", "seed", "variant", "budget", "n_strong", "n_train",
               "steps", "epochs", "dice", "object_dice", "ap50", "ap75", "ap_sweep", "mdice", "miou",
               "object_hausdorff", "n_pred", "n_gt", "painted_pixels", "strokes", "objects_traced", "train_s",
               "total_s", "cpu_s", "load_start", "load_end")


def write_csv(path: Path, records: Iterable[dict], cols: tuple[str, ...] = CSV_COLUMNS) -> None:
    """The records as a table (the cost columns flattened)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in records:
            cost = r.get("cost") or {}
            flat = {**r, **{k: cost.get(k, 0) for k in ("painted_pixels", "strokes", "objects_traced")}}
            w.writerow([flat.get(c, "") for c in cols])


def prediction_file(cache: Path, mode: str, key: str) -> Path:
    """Where the overlay crop of a run's first test prediction is kept (in the cache, not the repository)."""
    return Path(cache) / "predictions" / mode / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".npz")
