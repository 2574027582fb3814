"""The annotation-economy curve, small: suggested against random boxes over a few rounds of
"annotate inside k boxes, continue training", on one small synthetic set.

    nice -n 10 python -m benchmarks.suites.loop                  # the run in docs/benchmarks.md
    nice -n 10 python -m benchmarks.suites.loop --rounds 4 --steps 120 --images 6 --size 128

A simulated annotator starts from blobs on ``--start`` (10 %) of the objects of
every training image (the other objects unpainted), trains a model, then for
each round: boxes are picked (``suggested``: :func:`napari_lazylabels.engine.suggest.suggest`;
``random``: uniformly at random, non-overlapping), every object whose centre
lies in a box gets its blob (simulated from the ground truth), and training
continues from the last model (``init_from``) for ``--steps`` steps. Effort is
the blobs painted (``engine.simulate.annotation_cost``: blobs and painted
pixels); accuracy is AP50 and pixel Dice on held-out images. Same seed, same
network (``tiny`` preset), same steps for both methods.

Results are printed as one JSON line per (method, round) and appended to
``benchmarks/results/loop_small.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.metrics import average_precision, dice
from napari_lazylabels.engine.pipeline import segment
from benchmarks.harness.regimes import seeds_key, seeds_regime
from napari_lazylabels.engine.simulate import annotation_cost, simulate_lazy_labels
from napari_lazylabels.engine.suggest import suggest
from napari_lazylabels.engine.synthetic import make_lazy_dataset
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

RESULTS = Path(__file__).resolve().parents[1] / "results" / "loop_small.jsonl"


def _blobs_of(truth: np.ndarray, rng) -> np.ndarray:
    return simulate_lazy_labels(truth, rng=rng, regimes=[seeds_regime()])[seeds_key()]


def _keep(blobs: np.ndarray, truth: np.ndarray, ids: set[int]) -> np.ndarray:
    return np.where(np.isin(truth, list(ids)), blobs, 0).astype(blobs.dtype)


def _centres(truth: np.ndarray) -> dict[int, tuple[float, float]]:
    out = {}
    for i in np.unique(truth[truth > 0]):
        ys, xs = np.nonzero(truth == i)
        out[int(i)] = (ys.mean(), xs.mean())
    return out


def _random_boxes(shapes, k, box, rng) -> list[tuple[int, int, int]]:
    boxes: list[tuple[int, int, int]] = []
    for _ in range(1000):
        if len(boxes) == k:
            break
        i = int(rng.integers(len(shapes)))
        y, x = (int(rng.integers(0, s - box + 1)) for s in shapes[i])
        if not any(j == i and abs(y - b) < box and abs(x - c) < box for j, b, c in boxes):
            boxes.append((i, y, x))
    return boxes


def _train(items, steps, seed, model_dir, init_from=None, *, network="tiny", patch=48, batch=4):
    run = TrainingRun(TrainingPlan(items, network=preset(network), model_dir=model_dir, init_from=init_from,
                                   config=TrainConfig(steps=steps, patch_size=patch, batch_size=batch,
                                                      device="cpu", seed=seed)))
    for _ in run.run():
        pass
    return run.model()


def _score(model, test) -> dict:
    aps, dices = [], []
    for t in test:
        pred = segment(model, t.image).instances
        aps.append(average_precision(pred, t.instances, 0.5))
        dices.append(dice(pred > 0, t.instances > 0))
    return {"ap50": float(np.mean(aps)), "dice": float(np.mean(dices))}


def run_method(method: str, args, work: Path) -> list[dict]:
    rng = np.random.default_rng(args.seed)
    items, truths = make_lazy_dataset(args.images + args.test, seed=args.seed, shape=(args.size, args.size))
    train, test = truths[:args.images], truths[args.images:]
    full_blobs = [_blobs_of(t.instances, rng) for t in train]
    centres = [_centres(t.instances) for t in train]
    painted = [set(int(i) for i in rng.choice(list(c), max(1, round(args.start * len(c))), replace=False))
               for c in centres]

    def current():
        return [LazyAnnotations(t.image, {seeds_key(): _keep(b, t.instances, p)}, name=f"img{i}",
                                annotated={seeds_key(): True})
                for i, (t, b, p) in enumerate(zip(train, full_blobs, painted))]

    rows, previous = [], None
    for r in range(args.rounds + 1):
        if r > 0:
            if method == "suggested":
                boxes = [(b.index, b.y, b.x) for b in suggest(previous_model, current(), args.k, args.box)]
            else:
                boxes = _random_boxes([t.instances.shape for t in train], args.k, args.box, rng)
            for i, y, x in boxes:
                painted[i] |= {j for j, (cy, cx) in centres[i].items()
                               if y <= cy < y + args.box and x <= cx < x + args.box}
        t0 = time.perf_counter()
        folder = work / f"{method}_{r}"
        previous_model = _train(current(), args.steps if r else args.first_steps, args.seed, folder, previous)
        previous = folder
        cost = {"strokes": 0, "painted_pixels": 0}      # a blob is one stroke
        for it in current():
            c = annotation_cost(it.labels)
            cost = {k: cost[k] + int(c.get(k, 0)) for k in cost}
        row = {"method": method, "round": r, **cost, **_score(previous_model, test),
               "train_s": round(time.perf_counter() - t0, 1)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--test", type=int, default=2)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--start", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--box", type=int, default=32)
    ap.add_argument("--first-steps", type=int, default=80)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="loop-bench-") as tmp:
        for method in ("suggested", "random"):
            for row in run_method(method, args, Path(tmp)):
                with open(RESULTS, "a") as fh:
                    fh.write(json.dumps({**row, "args": vars(args)}) + "\n")


if __name__ == "__main__":
    main()
