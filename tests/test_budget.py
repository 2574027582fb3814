"""The automatic budget (steps fixed from the time of the first ones) and the loss-trend stopping signal."""

from __future__ import annotations

import dataclasses

import numpy as np

from napari_lazylabels.cli import main
from napari_lazylabels.engine.training import budget
from napari_lazylabels.engine.training.budget import choose_steps, loss_trend
from napari_lazylabels.io.modelio import load_model
from test_cli import write_dataset


def test_the_budget_fills_the_time_limit_within_its_bounds():
    b = choose_steps(20, 10.0, 100.0)            # 0.5 s a step, 90 s left
    assert b.steps == 200 and not b.capped and "200 steps" in b.summary() and "0.50 s a step" in b.summary()
    fast = choose_steps(20, 0.2, 3600.0)         # a GPU: 10 ms a step
    assert fast.steps == budget.MAX_AUTO_STEPS and fast.capped and "the most it gives" in fast.summary()
    slow = choose_steps(20, 100.0, 60.0)         # slower than the limit allows: the least it gives
    assert slow.steps == budget.MIN_AUTO_STEPS


def test_the_loss_trend_tells_a_falling_loss_from_a_plateau():
    falling = loss_trend(np.linspace(1.0, 0.2, 400))
    assert falling.still_learning and "more steps" in falling.summary()
    flat = loss_trend(np.r_[np.linspace(1.0, 0.3, 200), 0.3 + 0.01 * np.random.default_rng(0).standard_normal(200)])
    assert not flat.still_learning and "plateau" in flat.summary()
    assert loss_trend([1.0] * 10) is None and loss_trend([float("nan")] * 100) is None


def test_a_run_with_a_time_limit_fixes_its_steps_after_the_probe(small_lazy_set, tiny_network, quick_config):
    from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

    items, _ = small_lazy_set
    cfg = dataclasses.replace(quick_config, steps=5000, time_limit_s=2.0, checkpoint_every=10**6)
    run = TrainingRun(TrainingPlan(items, network=tiny_network, config=cfg, fit_instances=False))
    reports = list(run.run())
    chosen = run.trainer.auto_budget
    assert chosen is not None and reports[-1].step == chosen.steps == run.config.steps < 5000
    assert all(r.total_steps == 5000 for r in reports[:budget.PROBE_STEPS - 1])
    assert all(r.total_steps == chosen.steps for r in reports[budget.PROBE_STEPS:])
    assert run.model().provenance["auto_budget"]["steps"] == chosen.steps


def test_cli_budget_auto_says_what_it_chose(small_lazy_set, tmp_path, capsys):
    items, _ = small_lazy_set
    data = write_dataset(tmp_path / "d", items[:3])
    code = main(["train", "--data", str(data), "--model", str(tmp_path / "m"), "--preset", "tiny", "--patch-size",
                 "32", "--batch-size", "2", "--device", "cpu", "--budget", "auto", "--time-limit", "0.05",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 0 and "automatic budget:" in err, err
    model = load_model(tmp_path / "m")
    assert model.provenance["auto_budget"]["time_limit_s"] == 3.0
    assert main(["train", "--data", str(data), "--model", str(tmp_path / "n"), "--time-limit", "1"]) == 2
    assert "--time-limit goes with --budget auto" in capsys.readouterr().err
