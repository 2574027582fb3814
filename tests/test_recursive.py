"""The recursive approximation regime: its task, its rounds through the recipe, resume, the CLI."""

import dataclasses
import json

import numpy as np
import pytest

from napari_lazylabels.cli import main
from napari_lazylabels.engine.config import TrainConfig
from napari_lazylabels.engine.pipeline import segment
from napari_lazylabels.engine.postprocess.growth import final_growth
from napari_lazylabels.engine.postprocess.settings import GROWTH
from napari_lazylabels.engine.regimes.recursive import APPROXIMATION, REGIME, RecursiveConfig
from napari_lazylabels.engine.regimes.registry import default_tasks
from napari_lazylabels.engine.tasks import PARTIAL, PLAIN, heads_by_role
from napari_lazylabels.errors import SettingsError
from napari_lazylabels.io.modelio import load_artifacts, load_model
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun


def test_config_validation_and_round_steps():
    assert RecursiveConfig(rounds=4).round_steps(100) == 20
    assert RecursiveConfig(rounds=4, steps_per_round=7).round_steps(100) == 7
    for bad in ({"lambda_train": -1}, {"rounds": -1}, {"lambda_final": float("nan")}, {"steps_per_round": 0}):
        with pytest.raises(SettingsError):
            RecursiveConfig(**bad)
    cfg = RecursiveConfig(rounds=3, lambda_final=4.0)
    assert RecursiveConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_task_follows_the_classes_and_needs_blobs_and_a_foreground():
    (task,) = REGIME.configure().tasks(2, {APPROXIMATION: 0.5})
    assert task.name == APPROXIMATION and task.n_classes == 3 and task.features == PLAIN
    assert task.role == PARTIAL and task.weight == 0.5
    REGIME.check(default_tasks(2) + [task])
    with pytest.raises(SettingsError, match="needs a blobs task"):
        REGIME.check([task])


def _plan(items, network, config, **kw):
    return TrainingPlan(items, network=network, config=config, **kw)


def test_two_rounds_through_the_recipe_then_resume(small_lazy_set, tiny_network, quick_config, tmp_path):
    items, _ = small_lazy_set
    cfg = dataclasses.replace(quick_config, steps=6, checkpoint_every=100)
    opts = RecursiveConfig(rounds=2, steps_per_round=2, lambda_train=2.0)
    run = TrainingRun(_plan(items, tiny_network, cfg, opt_in={REGIME.name: opts}, model_dir=tmp_path / "m"))
    assert APPROXIMATION in [t.name for t in run.tasks]
    assert APPROXIMATION not in run.trainer.sampler.active_tasks      # rides along on every patch
    reports = list(run.run())
    assert reports[-1].step == 6 and not np.isnan(reports[-1].losses[APPROXIMATION])
    rec = run.hooks[REGIME.name]
    assert rec.current_round == 2 and rec.round_steps == [0, 2, 4]
    for i, im in enumerate(run.trainer.sampler.images):
        first, last = rec.rounds[0][i], rec.rounds[-1][i]
        assert np.array_equal(im.targets[APPROXIMATION], last)
        assert np.all(last[first > 0] == first[first > 0])       # blobs kept, with their class
        assert np.array_equal(rec.instances[-1][i] > 0, last > 0)
    # the model folder: written once at the end, with the rounds and the final growth
    model = load_model(tmp_path / "m")
    assert model.postprocess.method == GROWTH and model.postprocess.lambda_final == opts.lambda_final
    assert model.provenance[REGIME.name]["rounds_done"] == 2
    saved = load_artifacts(tmp_path / "m")
    rounds = sorted(k for k in saved if k.endswith(".npz"))
    assert rounds == [f"approximations/round_{r:02d}.npz" for r in range(3)]
    assert np.array_equal(saved["approximations/round_02.npz"]["approximation_000"], rec.rounds[2][0])
    assert list(saved["approximations/round_00.npz"]["names"]) == [it.name for it in items]
    # a resumed run continues from the saved round; its centres are a random subset of the painted pixels
    more = dataclasses.replace(cfg, steps=8)
    again = TrainingRun(_plan(items, tiny_network, more, opt_in={REGIME.name: opts}, resume=tmp_path / "m"))
    restored = again.hooks[REGIME.name]
    assert again.step == 6 and restored.current_round == 2
    for im, last in zip(again.trainer.sampler.images, rec.rounds[-1]):
        if last is None:
            continue
        assert np.array_equal(im.targets[APPROXIMATION], last)
        centres = im.centres[APPROXIMATION]
        painted = np.argwhere((last > 0) & im.valid[APPROXIMATION])
        assert set(map(tuple, centres)) <= set(map(tuple, painted)) and len(centres) == min(len(painted), 20000)


def test_restored_centres_are_a_random_subset_when_there_are_many(small_lazy_set, tiny_network, quick_config,
                                                                 tmp_path, monkeypatch):
    from napari_lazylabels.engine.training import sampling
    monkeypatch.setattr(sampling, "MAX_CENTRES", 10)
    items, _ = small_lazy_set
    opts = RecursiveConfig(rounds=1, steps_per_round=2)
    run = TrainingRun(_plan(items, tiny_network, quick_config, opt_in={REGIME.name: opts},
                            model_dir=tmp_path / "m"))
    list(run.run())
    again = TrainingRun(_plan(items, tiny_network, dataclasses.replace(quick_config, steps=8),
                              opt_in={REGIME.name: opts}, resume=tmp_path / "m"))
    im = next(im for im in again.trainer.sampler.images if im.annotated[APPROXIMATION])
    centres = im.centres[APPROXIMATION]
    painted = np.argwhere((im.targets[APPROXIMATION] > 0) & im.valid[APPROXIMATION])
    assert len(centres) == 10 and len(painted) > 10
    assert not np.array_equal(centres, painted[:10])                  # not the first in raster order


def test_cli_train_recursive_then_predict(small_lazy_set, tmp_path):
    import tifffile
    items, _ = small_lazy_set
    keys = list(items[0].labels)
    rows = [",".join(["image", *keys])]
    for i, it in enumerate(items):
        np.save(tmp_path / f"im{i}.npy", it.image)
        cells = [f"im{i}.npy"]
        for key in keys:
            lab = it.labels.get(key)
            if lab is None:
                cells.append("")
            else:
                np.save(tmp_path / f"{key}{i}.npy", lab)
                cells.append(f"{key}{i}.npy")
        rows.append(",".join(cells))
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    model_dir = tmp_path / "model"
    rc = main(["train", "--data", str(tmp_path / "data.csv"), "--model", str(model_dir), "--steps", "6",
               "--patch-size", "32", "--batch-size", "2", "--preset", "tiny", "--device", "cpu", "--quiet",
               "--recursive", "--rounds", "2", "--steps-per-round", "2", "--lambda-train", "1",
               "--lambda-final", "3"])
    assert rc == 0
    model = load_model(model_dir)
    assert APPROXIMATION in model.task_names
    assert RecursiveConfig.from_dict(model.provenance[REGIME.name]) == RecursiveConfig(
        rounds=2, steps_per_round=2, lambda_train=1.0, lambda_final=3.0)
    assert model.postprocess.method == GROWTH and model.postprocess.lambda_final == 3.0
    assert len([k for k in load_artifacts(model_dir) if k.endswith(".npz")]) == 3
    out = tmp_path / "pred.tif"
    assert main(["predict", "--model", str(model_dir), "--image", str(tmp_path / "im0.npy"),
                 "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    assert tifffile.imread(out).shape == items[0].image.shape
    # every caller of pipeline.segment (the CLI, the napari widgets) gets the final growth
    _, expected = final_growth(heads_by_role(model.predict(items[0].image), model.tasks), 3.0)
    np.testing.assert_array_equal(segment(model, items[0].image).instances, expected)
    np.testing.assert_array_equal(tifffile.imread(out), expected)


def test_recursive_options_need_their_switch(small_lazy_set, tmp_path):
    items, _ = small_lazy_set
    with pytest.raises(SettingsError, match="task weight"):
        TrainingRun(TrainingPlan(items, config=TrainConfig(steps=2, patch_size=32, device="cpu"),
                                 weights={APPROXIMATION: 2.0}))
