"""One run of one of our methods in the lazy suite: train the plan at the mode's budget, score it with
every variant, count the labels' cost."""

from __future__ import annotations

import os
import time
from dataclasses import asdict

import numpy as np

from benchmarks.harness.data import Dataset
from benchmarks.harness.methods import MULTITASK_METHODS, PARTIAL_METHODS, Mode
from benchmarks.harness.queue import strong_of
from benchmarks.harness.regimes import partial_regime
from benchmarks.harness.stamps import load_average
from benchmarks.suites.scoring import evaluate, log_line, run_record
from benchmarks.suites.training_plans import train, train_config, training_plan
from napari_lazylabels.engine.metrics import dice


def run_one(method: str, ds: Dataset, ratio: float, mode: Mode, log, seed: int = 0, variant: str = "default",
            tta: bool = True) -> dict:
    """Train and score one run; the record has the test predictions under ``_predictions``."""
    strong = strong_of(method, ds, ratio)
    config, network = train_config(mode, seed, variant)
    plan, cost = training_plan(method, ds, strong, mode, config, network)
    load0 = load_average()
    t0, c0 = time.perf_counter(), time.process_time()
    run, train_s = train(plan)
    model = run.model()
    metrics, variants, predictions = evaluate(model, ds, strong, method in MULTITASK_METHODS, tta=tta,
                                                device=mode.device)
    record = run_record(ds, method, ratio, seed, variant, mode, strong, steps=run.step,
                        rounds=mode.rounds if method in PARTIAL_METHODS else 0)
    record.update({
        "train_s": round(train_s, 1), "total_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1), **metrics, "variants": variants, "cost": cost,
        "config": {"augment": asdict(config.augment), "class_weight_cap": config.class_weight_cap,
                   "network": plan.network.to_dict()},
        "load_start": load0, "load_end": round(os.getloadavg()[0], 2),
    })
    rounds = run.hooks.get(partial_regime().name) if method in PARTIAL_METHODS else None
    if rounds is not None:
        curve = []
        for cls_maps in rounds.rounds:
            d = [dice(c > 0, s.instances > 0) for c, s in zip(cls_maps, ds.train) if c is not None and
                 s.has_objects]
            curve.append(float(np.mean(d)))
        record["approximation_dice"] = curve
        record["round_steps"] = list(rounds.round_steps)
    log(log_line(record, variants))
    record["_predictions"] = predictions
    return record
