"""Continue against scratch after one round of new labels (issue 23: "after a round, continuing
reaches the scratch model's accuracy in <= 25 % of its steps").

    nice -n 10 python -m benchmarks.suites.continue_scratch                 # the run in docs/benchmarks.md
    nice -n 10 python -m benchmarks.suites.continue_scratch --round objects --first-steps 300 --steps 300

On synthetic data (``--images`` training and ``--test`` held-out images of
``--size`` px, the ``cpu`` network preset), a first model trains
``--first-steps`` steps on the labels before the round, and then on the labels
after it:

* ``--round images`` (the default): the simulated lazy labels of
  ``make_lazy_dataset`` (blobs and interface scribbles on every object, exact
  masks on 10 % of the images, at least one) on the first ``--start-images``
  images before (the image with exact masks among them), on every training
  image after (the user labels more images with blobs and scribbles). The
  held-out images are made apart (seed + 1000).
* ``--round objects``: blobs only, on ``--start`` (30 %) of the objects of every
  image before, ``--after`` (60 %) after (the first objects keep theirs). At
  300 steps this model stays too weak to compare (AP50 0, Dice 0.17: blobs on
  a third of the objects teach it that most objects are background).

Then:

* ``scratch``: a new network trained for N/8, N/4, N/2 and N steps (N = ``--steps``);
* ``continue``: the first model continued (``init_from``) for N/8, N/4 and N/2 steps.

Every arm has the same seed, data, patch and batch; each run has its own
warm-up and cosine schedule over its own steps. Each finished run is one JSON
line in ``benchmarks/results/continue_scratch.jsonl`` (AP50 and pixel Dice on
the held-out images); a rerun with the same settings skips the lines that are
there and reuses the first model kept under ``--work``, so an interrupted run
resumes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.regimes import seeds_key, strong_key
from benchmarks.suites.loop import _blobs_of, _keep, _score, _train
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.synthetic import make_lazy_dataset
from napari_lazylabels.io.modelio import load_model

RESULTS = Path(__file__).resolve().parents[1] / "results" / "continue_scratch.jsonl"
FRACTIONS = {"scratch": (8, 4, 2, 1), "continue": (8, 4, 2)}


def labelled_sets(truths, start: float, after: float, seed: int) -> tuple[list[set], list[set]]:
    """The objects with a blob before and after the round: ``after`` contains ``before``."""
    rng = np.random.default_rng([seed, 1])
    before, later = [], []
    for t in truths:
        ids = np.unique(t.instances[t.instances > 0])
        order = rng.permutation(ids)
        n0 = max(1, round(start * len(ids)))
        n1 = max(n0, round(after * len(ids)))
        before.append({int(i) for i in order[:n0]})
        later.append({int(i) for i in order[:n1]})
    return before, later


def planned_runs(steps: int) -> list[tuple[str, int]]:
    """(arm, steps) of every run after the round, cheapest first."""
    runs = [(arm, max(1, steps // f)) for arm, fs in FRACTIONS.items() for f in fs]
    return sorted(runs, key=lambda r: (r[1], r[0]))


def _key(row: dict) -> tuple:
    return row["seed"], row["arm"], row["steps"], row["settings"]


def done_keys(path: Path) -> set[tuple]:
    """The runs recorded in ``path`` (a line cut short by a kill is ignored)."""
    out = set()
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.add(_key(json.loads(line)))
        except (ValueError, KeyError):
            continue
    return out


def strong_first(lazy: list, truths: list) -> tuple[list, list]:
    """The training images with those that carry exact masks first (the first round has them)."""
    order = sorted(range(len(lazy)), key=lambda i: not any(
        v is not None and np.any(v) for k, v in lazy[i].labels.items() if k == strong_key()))
    return [lazy[i] for i in order], [truths[i] for i in order]


def run_seed(seed: int, args, settings: str, done: set[tuple]) -> None:
    lazy, train = strong_first(*make_lazy_dataset(args.images, seed=seed, shape=(args.size, args.size)))
    _, test = make_lazy_dataset(args.test, seed=seed + 1000, shape=(args.size, args.size), strong_fraction=0.0)
    if args.round == "images":
        before, after = list(range(args.start_images)), list(range(args.images))

        def items(which):
            return [lazy[i] for i in which]
    else:
        blobs = [_blobs_of(t.instances, np.random.default_rng([seed, 2, i])) for i, t in enumerate(train)]
        before, after = labelled_sets(train, args.start, args.after, seed)

        def items(sets):
            return [LazyAnnotations(t.image, {seeds_key(): _keep(b, t.instances, p)}, name=f"img{i}",
                                    annotated={seeds_key(): True})
                    for i, (t, b, p) in enumerate(zip(train, blobs, sets))]

    kw = dict(network=args.preset, patch=args.patch, batch=args.batch)
    work = Path(args.work) / settings / f"seed{seed}"
    first = work / "first"
    if not (first / "config.json").exists():
        shutil.rmtree(first, ignore_errors=True)        # an interrupted run's leftovers
        t0 = time.perf_counter()
        _train(items(before), args.first_steps, seed, first, **kw)
        _write({"seed": seed, "arm": "first", "steps": args.first_steps, "settings": settings,
                "labelled": _amount(before), **_score(load_model(first), test),
                "train_s": round(time.perf_counter() - t0, 1)}, done, args.results)
    for arm, n in planned_runs(args.steps):
        row = {"seed": seed, "arm": arm, "steps": n, "settings": settings}
        if _key(row) in done:
            continue
        shutil.rmtree(work / f"{arm}_{n}", ignore_errors=True)
        t0 = time.perf_counter()
        model = _train(items(after), n, seed, work / f"{arm}_{n}", first if arm == "continue" else None, **kw)
        _write({**row, "labelled": _amount(after), **_score(model, test),
                "train_s": round(time.perf_counter() - t0, 1)}, done, args.results)


def _amount(labelled: list) -> int:
    """Images labelled (``--round images``) or blobs painted (``--round objects``)."""
    return sum(len(x) if isinstance(x, set) else 1 for x in labelled)


def _write(row: dict, done: set[tuple], path: Path) -> None:
    if _key(row) in done:
        return
    print(json.dumps(row), flush=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")
    done.add(_key(row))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--test", type=int, default=4)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--round", choices=["images", "objects"], default="images", help="what the round adds")
    ap.add_argument("--start-images", type=int, default=3)
    ap.add_argument("--start", type=float, default=0.3)
    ap.add_argument("--after", type=float, default=0.6)
    ap.add_argument("--first-steps", type=int, default=150)
    ap.add_argument("--steps", type=int, default=160, help="N, the scratch budget")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--results", type=Path, default=RESULTS, help="the JSON lines file (appended to)")
    ap.add_argument("--work", default="/tmp/lazylabels-continue-scratch", help="models kept here (resume)")
    args = ap.parse_args(argv)
    added = (f"{args.start_images}img" if args.round == "images" else f"blobs{args.start}to{args.after}")
    version = "v2-" if args.round == "images" else ""
    settings = version + (f"{args.preset}-{args.images}x{args.size}-test{args.test}-{added}-"
                f"first{args.first_steps}-N{args.steps}-p{args.patch}b{args.batch}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    done = done_keys(args.results)
    for seed in args.seeds:
        run_seed(seed, args, settings, done)


if __name__ == "__main__":
    main()
