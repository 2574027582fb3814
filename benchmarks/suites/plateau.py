"""The plateau suite: ONE run per setting, trained to the largest milestone, scored at each milestone.

    python benchmarks/accuracy.py --milestones 400 800 1600 --datasets he --methods full mt --seeds 0

At each milestone (a number of steps) the model as it is then is scored on the test frames (plain
prediction: no flips, no tuning) and the run records the steps, the training wall seconds so far
(scoring excluded), AP50, AP 0.5-0.9 and Dice. Our learning rate warms up and then follows a cosine
over the run's steps (``engine.training.trainer.learning_rate_at``), here the LARGEST milestone: a
milestone is an intermediate point of that run, not the end of a shorter run (whose rate would have
decayed by then). The peer (cp, cp10) gets the same: Cellpose's weights are kept at the epochs that
reach each milestone (its own steps: batches of 8 x 224 px; its schedule is by epochs).

Records go to ``plateau_<mode>.jsonl`` (key: the lazy suite's key + ``/m<milestones>``).
"""

from __future__ import annotations

import copy
import time

from benchmarks.harness.data import Dataset
from benchmarks.harness.methods import Mode, run_key
from benchmarks.harness.queue import strong_of
from benchmarks.harness.stamps import load_average
from benchmarks.suites.peer import peer_fields, train_peer
from benchmarks.suites.peer_cellpose import PeerBudget, segment_cellpose
from benchmarks.suites.scoring import run_record, score
from benchmarks.suites.training_plans import train, train_config, training_plan
from napari_lazylabels.engine.pipeline import segment

#: What a milestone records of the scores.
MILESTONE_METRICS = ("ap50", "ap_sweep", "dice", "ap75", "object_dice")


def plateau_key(key: str, milestones: tuple[int, ...]) -> str:
    return f"{key}/m{'-'.join(map(str, milestones))}"


def _point(steps: int, train_s: float, scores: dict, **extra) -> dict:
    return {"steps": steps, "train_s": round(train_s, 1), **{k: scores[k] for k in MILESTONE_METRICS}, **extra}


def run_ours(method: str, ds: Dataset, ratio: float, mode: Mode, log, seed: int, milestones: tuple[int, ...],
             variant: str = "default") -> dict:
    """One run of our ``method`` to the largest milestone, scored at each."""
    strong = strong_of(method, ds, ratio)
    config, network = train_config(mode, seed, variant, steps=max(milestones))
    plan, cost = training_plan(method, ds, strong, mode, config, network)
    points = []

    def at_milestone(run, train_s):
        model = copy.deepcopy(run.model())
        preds = [segment(model, image, device=mode.device).instances for _, image, _ in ds.test]
        points.append(_point(run.step, train_s, score(preds, ds)))
        log(f"  {ds.name}/{method} s{seed} at {run.step} steps ({train_s:.0f} s): AP50 {points[-1]['ap50']:.3f}")

    load0, t0 = load_average(), time.perf_counter()
    run, train_s = train(plan, at_milestone, iter(milestones))
    return _record(ds, method, ratio, seed, variant, mode, strong, milestones, points, cost, train_s, t0, load0,
                   steps=run.step)


def run_peer(method: str, ds: Dataset, ratio: float, mode: Mode, log, seed: int, milestones: tuple[int, ...]) -> dict:
    """One run of the peer to the largest milestone (its own steps), scored at each."""
    load0, t0 = load_average(), time.perf_counter()
    budget = PeerBudget(steps=max(milestones))
    training, tiles, cost = train_peer(method, ds, ratio, budget, mode, seed, milestones, log)
    points = []
    for m in training.milestones:
        preds = [segment_cellpose(training, image, m["state"]) for _, image, _ in ds.test]
        points.append(_point(m["steps"], m["train_s"], score(preds, ds), epochs=m["epochs"]))
        log(f"  {ds.name}/{method} s{seed} at {m['steps']} steps ({m['train_s']:.0f} s): AP50 {points[-1]['ap50']:.3f}")
    record = _record(ds, method, ratio, seed, "default", mode, set(tiles), milestones, points, cost,
                     training.train_s, t0, load0)
    record.update(peer_fields(training, budget, "milestones"))
    return record


def _record(ds, method, ratio, seed, variant, mode, strong, milestones, points, cost, train_s, t0, load0, **extra):
    key = run_key(ds.name, method, ratio, seed, variant, mode.budget)
    record = run_record(ds, method, ratio, seed, variant, mode, strong, **extra)
    record.update({"key": plateau_key(key, milestones), "milestones": list(milestones), "points": points,
                   "train_s": round(train_s, 1), "total_s": round(time.perf_counter() - t0, 1), "cost": cost,
                   "schedule": "cosine over the largest milestone" if method not in ("cp", "cp10") else
                   "cellpose train_seg's schedule over the epochs of the largest milestone",
                   "load_start": load0, "load_end": load_average()})
    return record
