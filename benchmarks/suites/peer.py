"""One run of a peer method of the lazy suite (Cellpose, :mod:`suites.peer_cellpose`): trained on the
same training tiles as ours, tested on the same frames, scored by the same :func:`scoring.score`, written
as an ordinary record of ``accuracy_<mode>.jsonl``.

    cp     every exact mask of the training tiles (the tiles of our ``full``)
    cp10   the strong tiles only, at the run's ratio (the ``Dataset.strong_set`` of our ``mt`` and ``sl``)

The budget: by default the training wall time of our ``full`` run of the same set, seed, budget and
device, read from the results (variant ``default``); or given (``--peer-seconds``, ``--peer-steps``,
``--peer-epochs``), which names the record's variant (``sec600``, ``steps100``, ``epochs50``)."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.harness.data import Dataset
from benchmarks.harness.methods import Mode, run_key
from benchmarks.harness.queue import strong_of
from benchmarks.harness.regimes import strong_key
from benchmarks.harness.results import read_results
from benchmarks.harness.stamps import load_average
from benchmarks.suites.peer_cellpose import (SETTINGS, PeerBudget, PeerTraining, cellpose_version, segment_cellpose,
                                             train_cellpose)
from benchmarks.suites.scoring import log_line, run_record, score
from napari_lazylabels.engine.simulate import annotation_cost, total_annotation_cost


def given_budget(seconds: float | None, steps: int | None, epochs: int | None) -> tuple[PeerBudget | None, str]:
    """The budget given on the command line and the variant it names; (None, "default") when none is."""
    if seconds is not None:
        return PeerBudget(seconds=seconds), f"sec{seconds:g}"
    if steps is not None:
        return PeerBudget(steps=steps), f"steps{steps}"
    if epochs is not None:
        return PeerBudget(epochs=epochs), f"epochs{epochs}"
    return None, "default"


def time_of_full(ds: Dataset, seed: int, mode: Mode, results: list[Path]) -> tuple[PeerBudget, str]:
    """The training wall time of our ``full`` run of the same set, seed, budget and device, and its key;
    one clear line when there is none."""
    key = run_key(ds.name, "full", 1.0, seed, "default", mode.budget)
    found = next((r for r in read_results(*results) if r.get("key") == key), None)
    if found is None:
        raise SystemExit(f"the peer's time budget is the training time of {key}, which is not in "
                         f"{', '.join(map(str, results))}: run --methods full first, or give --peer-seconds, "
                         "--peer-steps or --peer-epochs")
    if found.get("device", "cpu") != mode.device:
        raise SystemExit(f"{key} ran on {found.get('device', 'cpu')}, this run on {mode.device}: the peer's time "
                         "budget must come from the same device (or give --peer-seconds)")
    return PeerBudget(seconds=float(found["train_s"])), key


def training_tiles(method: str, ds: Dataset, ratio: float) -> tuple[list[int], dict]:
    """The indices of the tiles the peer trains on (every one for cp, the strong ones for cp10), and
    the cost of their exact masks."""
    strong = sorted(strong_of(method, ds, ratio))
    key = strong_key()
    cost = total_annotation_cost([annotation_cost({key: ds.train[i].labels[key]}, ds.train[i].instances)
                                  for i in strong])
    return strong, cost


def train_peer(method: str, ds: Dataset, ratio: float, budget: PeerBudget, mode: Mode, seed: int,
               milestones: tuple[int, ...] = (), log=None) -> tuple[PeerTraining, list[int], dict]:
    """Train the peer on the tiles of ``method``; the training, the tiles and their cost."""
    tiles, cost = training_tiles(method, ds, ratio)
    training = train_cellpose([ds.train[i].image for i in tiles], [ds.train[i].instances for i in tiles], budget,
                              seed=seed, device=mode.device, milestones=milestones, log=log)
    return training, tiles, cost


def peer_fields(training: PeerTraining, budget: PeerBudget, source: str) -> dict:
    """What a record says about the peer's training."""
    return {"steps": training.steps, "epochs": training.epochs, "steps_per_epoch": training.steps_per_epoch,
            "n_used": training.n_used, "diameter": round(training.diameter, 2),
            "train_s": round(training.train_s, 1), "flows_s": round(training.flows_s, 1),
            "calibration_s": round(training.calibration_s, 1),
            "step_s": None if training.step_s is None else round(training.step_s, 3),
            "peer": {"tool": "cellpose", "version": cellpose_version(), **SETTINGS,
                     "budget": {"kind": budget.kind, "value": budget.seconds or budget.steps or budget.epochs,
                                "source": source}}}


def run_one(method: str, ds: Dataset, ratio: float, mode: Mode, log, seed: int, budget: PeerBudget, variant: str,
            source: str) -> dict:
    """Train and score one peer run; the record has the test predictions under ``_predictions``."""
    load0 = load_average()
    t0, c0 = time.perf_counter(), time.process_time()
    training, tiles, cost = train_peer(method, ds, ratio, budget, mode, seed, log=log)
    predictions = [segment_cellpose(training, image) for _, image, _ in ds.test]
    record = run_record(ds, method, ratio, seed, variant, mode, set(tiles), rounds=0)
    record.update(peer_fields(training, budget, source))
    record.update({"total_s": round(time.perf_counter() - t0, 1), "cpu_s": round(time.process_time() - c0, 1),
                   **score(predictions, ds), "variants": {}, "cost": cost,
                   "load_start": load0, "load_end": load_average()})
    log(log_line(record) + f"  [{record['steps']} steps, {record['epochs']} epochs, train {record['train_s']:.0f} s]")
    record["_predictions"] = predictions
    return record
