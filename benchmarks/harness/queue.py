"""The queue: which runs a suite does, in which order, and the resumable loop that skips the runs its
results file holds already."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from benchmarks.harness.data import HARD, Dataset
from benchmarks.harness.methods import (FIXED_RATIO, RATIO_METHODS, RUN_ORDER, SAME_AT_FULL, TARGET_RATIO, Mode,
                                        ratio_of)
from benchmarks.harness.results import append_record, done_keys
from benchmarks.harness.stamps import machine

Job = tuple[str, str, float, int]          # (family, method, ratio, seed)


def strong_of(method: str, ds: Dataset, ratio: float) -> set[int]:
    """The training images with exact masks for ``method`` at ``ratio``."""
    if FIXED_RATIO.get(method) == 1.0:
        return set(range(len(ds.train)))
    return ds.strong_set(ratio) if method != "wl" else set()


def queue(mode: Mode, families: list[str], methods: list[str], seeds: list[int] | None,
          ratios: list[float] | None) -> list[Job]:
    """Every (family, method, ratio, seed) of a mode, the settings the targets compare first: the hard
    sets at the target ratio and full supervision, every method, seed 0; then the other seeds; then
    the other ratios (seed 0); then the easy sets the same way."""
    out: list[Job] = []
    seeds = list(mode.seeds if seeds is None else seeds)
    hard = [f for f in families if f in HARD]
    easy = [f for f in families if f not in HARD]
    target = TARGET_RATIO if TARGET_RATIO in mode.ratios else mode.ratios[0]
    order = [m for m in RUN_ORDER if m in methods]

    def at_target(fams, seed):
        return [(f, m, ratio_of(m, target), seed) for m in order for f in fams]

    def other_ratios(fams):
        runs = []
        for r in sorted(set(mode.ratios) - {target}):
            for m in order:
                if m not in RATIO_METHODS or (r >= 1.0 and m in SAME_AT_FULL):
                    continue
                runs += [(f, m, r, seeds[0]) for f in fams]
        for f in fams:
            runs += [(f, "mt", r, seeds[0]) for r in mode.sweep.get(f, ()) if r not in mode.ratios and "mt" in order]
        return runs

    for fams in (hard, easy):
        for seed in seeds:
            out += at_target(fams, seed)
        out += other_ratios(fams)
    if ratios is not None:
        out = [q for q in out if q[1] in FIXED_RATIO or any(abs(q[2] - r) < 1e-9 for r in ratios)]
    return list(dict.fromkeys(out))


def run_suite(path: Path, names: Iterable[str], pending: Callable, load: Callable, run: Callable, extra: dict,
              log: Callable[[str], None]) -> None:
    """The resumable loop of a suite: for each data set, the jobs ``pending(name, done_keys)`` not yet in
    the results file are run (``run(dataset, job)`` -> a record with its "key"), each appended as one JSON
    line with ``extra``; the data set is loaded (``load(name)``) only when it has work left."""
    done = done_keys(path)
    for name in names:
        todo = pending(name, done)
        if not todo:
            continue
        ds = load(name)
        log(f"data ready: {name} ({len(ds.train)} frames, {len(ds.test)} test)")
        for job in todo:
            record = run(ds, job)
            record.update(machine=machine(), **extra)
            append_record(path, record)
