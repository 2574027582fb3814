import json

import numpy as np
import pytest

from napari_lazylabels.errors import ModelFileError, OutputExistsError
from napari_lazylabels.io.modelio import CONFIG_FILE, WEIGHTS_FILE, load_model
from napari_lazylabels.engine.training.trainer import Trainer


@pytest.fixture(scope="module")
def trained(small_lazy_set, tmp_path_factory):
    from napari_lazylabels.engine.config import TrainConfig, preset
    items, _ = small_lazy_set
    trainer = Trainer(items, network=preset("tiny"),
                      config=TrainConfig(steps=3, patch_size=32, batch_size=2, device="cpu"))
    list(trainer.run())
    path = tmp_path_factory.mktemp("m") / "model"
    trainer.model().save(path)
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
        model.save(path)
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
