import json

import numpy as np
import pytest

from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.postprocess.settings import GROWTH, WATERSHED
from napari_lazylabels.engine.regimes.registry import default_tasks
from napari_lazylabels.engine.tasks import FEATURE_PATHS
from napari_lazylabels.engine.training.trainer import Trainer
from napari_lazylabels.recipes.train import TrainingPlan, prepare
from napari_lazylabels.errors import ModelFileError, OutputExistsError
from napari_lazylabels.io.modelio import CONFIG_FILE, WEIGHTS_FILE, load_model, save_model


@pytest.fixture(scope="module")
def trained(small_lazy_set, tmp_path_factory):
    items, _ = small_lazy_set
    trainer = Trainer(prepare(TrainingPlan(items)).items, default_tasks(1), network=preset("tiny"),
                      config=TrainConfig(steps=3, patch_size=32, batch_size=2, device="cpu"))
    list(trainer.run())
    path = tmp_path_factory.mktemp("m") / "model"
    save_model(trainer.model(), path)
    return trainer.model(), path, items[0].image


def test_round_trip_gives_the_same_predictions(trained):
    model, path, image = trained
    loaded = load_model(path)
    a, b = model.predict(image), loaded.predict(image)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    cfg = json.loads((path / CONFIG_FILE).read_text())
    assert cfg["provenance"]["trained_steps"] == 3 and "torch" in cfg["provenance"]["versions"]
    assert cfg["network"]["depth"] == 3


def test_existing_model_is_not_overwritten(trained):
    model, path, _ = trained
    before = (path / WEIGHTS_FILE).read_bytes()
    with pytest.raises(OutputExistsError):
        save_model(model, path)
    assert (path / WEIGHTS_FILE).read_bytes() == before


def _copy(path, tmp_path):
    import shutil
    dst = tmp_path / "copy"
    shutil.copytree(path, dst)
    return dst


@pytest.mark.parametrize("damage,message", [
    ("missing", "not found"),
    ("empty", "empty"),
    ("no_config", "no config.json"),
    ("bad_json", "not valid JSON"),
    ("no_weights", "missing"),
    ("truncated", "corrupt"),
    ("wrong_arch", "does not match"),
])
def test_damaged_model_dirs_give_one_line_errors(trained, tmp_path, damage, message):
    _, path, _ = trained
    target = _copy(path, tmp_path)
    if damage == "missing":
        target = tmp_path / "nope"
    elif damage == "empty":
        target = tmp_path / "empty"
        target.mkdir()
    elif damage == "no_config":
        (target / CONFIG_FILE).unlink()
    elif damage == "bad_json":
        (target / CONFIG_FILE).write_text("{not json")
    elif damage == "no_weights":
        (target / WEIGHTS_FILE).unlink()
    elif damage == "truncated":
        data = (target / WEIGHTS_FILE).read_bytes()
        (target / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    elif damage == "wrong_arch":
        cfg = json.loads((target / CONFIG_FILE).read_text())
        cfg["network"]["base_channels"] = 8
        (target / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(target)
    assert "\n" not in str(err.value) and str(target) in str(err.value)


def _as_format_1(target, recursive: dict | None = None) -> None:
    """Rewrite a model folder's config as format 1 wrote it: decoder paths named after the
    tasks, no head roles, no post-processing field (the recursive settings in the provenance)."""
    cfg = json.loads((target / CONFIG_FILE).read_text())
    cfg["format_version"] = 1
    for task in cfg["tasks"]:
        task["features"] = task["name"]
        task.pop("role")
    cfg.pop("postprocess")
    if recursive is not None:
        cfg["provenance"]["recursive"] = recursive
    (target / CONFIG_FILE).write_text(json.dumps(cfg))


def test_format_1_model_is_upgraded_on_load(trained, tmp_path):
    model, path, image = trained
    target = _copy(path, tmp_path)
    _as_format_1(target)
    loaded = load_model(target)
    assert [t.features for t in loaded.tasks] == [t.features for t in model.tasks]
    assert all(f in FEATURE_PATHS for f in (t.features for t in loaded.tasks))
    assert [t.role for t in loaded.tasks] == [t.role for t in model.tasks]
    assert loaded.postprocess.method == WATERSHED
    np.testing.assert_array_equal(loaded.predict(image)[model.tasks[0].name], model.predict(image)[model.tasks[0].name])


def test_format_1_recursive_model_gets_the_final_growth(small_lazy_set, tmp_path, train_tiny):
    from napari_lazylabels.engine.regimes import registry
    recursive = registry.opt_in_regimes()[0]
    run = train_tiny(small_lazy_set[0], 2, opt_in={recursive.name: None})
    target = run.save(tmp_path / "rec")
    _as_format_1(target, recursive={"lambda_final": 3.5, "rounds": 2})
    loaded = load_model(target)
    assert loaded.postprocess.method == GROWTH and loaded.postprocess.lambda_final == 3.5
