"""The one training recipe: settings made consistent, checkpoints, the model written once, stop, resume."""

import dataclasses

import numpy as np
import pytest

from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.errors import LazyLabelsError
from napari_lazylabels.io.modelio import load_model, load_training_state
from napari_lazylabels.recipes import train as recipe
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun, consistent_config, prepare


@pytest.fixture
def count_saves(monkeypatch):
    """Counts the model folders the recipe writes (and still writes them)."""
    saves = []
    real = recipe.save_model

    def counting(model, path, **kw):
        saves.append(int(model.provenance["trained_steps"]))
        return real(model, path, **kw)

    monkeypatch.setattr(recipe, "save_model", counting)
    return saves


def _plan(items, tiny_network, config, **kw):
    return TrainingPlan(items, network=tiny_network, config=config, **kw)


def test_the_model_folder_is_written_once_at_the_end(small_lazy_set, tiny_network, quick_config, tmp_path,
                                                     count_saves):
    items, _ = small_lazy_set
    cfg = dataclasses.replace(quick_config, checkpoint_every=100)
    run = TrainingRun(_plan(items, tiny_network, cfg, model_dir=tmp_path / "m"))
    reports = list(run.run())
    assert count_saves == [6]
    assert [r.checkpoint for r in reports] == [None] * 5 + [str(tmp_path / "m")]
    assert load_model(tmp_path / "m").provenance["trained_steps"] == 6


def test_checkpoints_carry_what_a_resume_needs(small_lazy_set, tiny_network, quick_config, tmp_path,
                                               count_saves):
    items, _ = small_lazy_set
    run = TrainingRun(_plan(items, tiny_network, quick_config, model_dir=tmp_path / "m"))   # every 3 steps
    for report in run.run():
        if report.step == 3:
            state = load_training_state(tmp_path / "m")
            assert state.step == 3 and len(state.history["total"]) == 3 and state.optimizer["state"]
    assert count_saves == [3, 6]


def test_stop_writes_the_model_and_resume_continues(small_lazy_set, tiny_network, quick_config, tmp_path):
    items, _ = small_lazy_set
    cfg = dataclasses.replace(quick_config, checkpoint_every=100)
    run = TrainingRun(_plan(items, tiny_network, cfg, model_dir=tmp_path / "m"))
    for report in run.run():
        if report.step == 2:
            run.stop()
    assert report.stopped and report.checkpoint == str(tmp_path / "m")
    assert load_training_state(tmp_path / "m").step == 2
    again = TrainingRun(_plan(items, tiny_network, cfg, model_dir=tmp_path / "m", resume=tmp_path / "m"))
    assert again.step == 2
    assert [r.step for r in again.run()] == [3, 4, 5, 6]
    assert len(again.trainer.history["total"]) == 6
    assert load_model(tmp_path / "m").provenance["trained_steps"] == 6


def test_an_interruption_writes_the_last_step(small_lazy_set, tiny_network, quick_config, tmp_path, monkeypatch):
    items, _ = small_lazy_set
    cfg = dataclasses.replace(quick_config, checkpoint_every=100)
    run = TrainingRun(_plan(items, tiny_network, cfg, model_dir=tmp_path / "m"))
    real = run.trainer._train_step

    def step_then_interrupt():
        if run.trainer.step == 2:
            raise KeyboardInterrupt
        return real()

    monkeypatch.setattr(run.trainer, "_train_step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        list(run.run())
    assert load_training_state(tmp_path / "m").step == 2


def test_resume_with_other_tasks_is_refused(small_lazy_set, tiny_network, quick_config, tmp_path):
    items, _ = small_lazy_set
    TrainingRun(_plan(items, tiny_network, quick_config, model_dir=tmp_path / "m")).save(tmp_path / "m")
    (opt_in,) = registry.opt_in_regimes()
    with pytest.raises(LazyLabelsError, match="checkpoint has tasks"):
        TrainingRun(_plan(items, tiny_network, quick_config, opt_in={opt_in.name: None}, resume=tmp_path / "m"))


def test_settings_are_made_consistent_for_every_caller():
    net = preset("cpu")                                   # pooling multiple 8
    cfg = consistent_config(TrainConfig(steps=50, patch_size=100, warmup_steps=20), net)
    assert cfg.patch_size == 104 and cfg.warmup_steps == 5
    cfg = consistent_config(TrainConfig(steps=800, patch_size=128), net)
    assert cfg.patch_size == 128 and cfg.warmup_steps == 20     # the defaults are left alone


def test_regimes_come_from_the_data_and_the_switches(small_lazy_set):
    items, _ = small_lazy_set
    base = [t.name for t in prepare(TrainingPlan(items)).tasks]
    assert base == [t.name for t in registry.default_tasks(1)]
    (opt_in,) = registry.opt_in_regimes()
    more = [t.name for t in prepare(TrainingPlan(items, opt_in={opt_in.name: None})).tasks]
    assert more == base + list(opt_in.task_names)
    # the targets of every image are keyed by task, with the annotated flags of its inputs
    prepared = prepare(TrainingPlan(items))
    for item, before in zip(prepared.items, items):
        for key, labels in before.labels.items():
            assert (item.targets[key] is None) == (labels is None)
            if labels is not None:
                assert np.array_equal(item.targets[key], labels)


def test_painted_labels_are_checked_once_and_not_copied_on_the_way_to_the_trainer(small_lazy_set, monkeypatch):
    from napari_lazylabels.engine.annotations import PaintedSet
    from napari_lazylabels.engine.regimes import targets

    items, _ = small_lazy_set
    painted = targets.check_inputs(items, 1)
    assert isinstance(painted, PaintedSet) and targets.check_inputs(painted, 1) is painted
    checks, real = [], targets.check_painted
    monkeypatch.setattr(targets, "check_painted", lambda *a: checks.append(a) or real(*a))
    prepared = prepare(TrainingPlan(painted))                   # a checked set is trusted as it is
    assert checks == []
    for item, before in zip(prepared.items, painted):
        for key, labels in before.labels.items():
            if labels is not None:                              # the checked int32 arrays themselves
                assert item.targets[key] is labels
    # another number of classes is another check
    prepare(TrainingPlan(painted, class_names=["a", "b"]))
    assert len(checks) == len(painted)
