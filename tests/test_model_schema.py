"""The model file's schema (issue 9, items 6 and 9): every wrong field of config.json or training_state.pt is one
line naming the field; a resume that does not fit the checkpoint is refused; a model whose weights are not
finite is refused instead of predicting nothing."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from napari_lazylabels.cli import main
from napari_lazylabels.errors import ModelFileError
from napari_lazylabels.io.modelio import CONFIG_FILE, STATE_FILE, WEIGHTS_FILE, load_model

from test_cli import TRAIN, dataset, model_dir, one_line_error  # noqa: F401 (the fixtures)


@pytest.fixture
def data(dataset):
    return dataset


@pytest.fixture
def model(model_dir, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    return copy


def _edit(model, change):
    cfg = json.loads((model / CONFIG_FILE).read_text())
    change(cfg)
    (model / CONFIG_FILE).write_text(json.dumps(cfg))


def _set(path, value):
    def change(cfg):
        *parents, last = path
        node = cfg
        for p in parents:
            node = node[p]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return change


BAD_CONFIGS = [
    (("network",), None, "network must be an object, got None"),
    (("network",), [3, 16], "network must be an object"),
    (("network", "depth"), "4", "network.depth must be a whole number, got '4'"),
    (("network", "depth"), 1, "network: depth must be a whole number >= 2"),
    (("network", "multitask"), "yes", "network.multitask must be true or false"),
    (("network",), KeyError, "network is missing"),
    (("class_names",), 5, "class_names must be a list, got 5"),
    (("class_names",), ["a", 2], "class_names[1] must be text"),
    (("patch_size",), "abc", "patch_size must be a whole number, got 'abc'"),
    (("patch_size",), 4, "patch_size must be a whole number >= 16"),
    (("format_version",), "2", "format_version must be a whole number, got '2'"),
    (("format_version",), 0, "format_version must be 1 or more"),
    (("normalization", "low"), -5, "normalization.low must be a finite number >= 0"),
    (("normalization", "high"), 150, "normalization.high must be a finite number"),
    (("normalization", "high"), 0.5, "normalization.high must be a finite number > 1"),
    (("normalization",), "percentiles", "normalization must be an object"),
    (("tasks",), {"detection": 1}, "tasks must be a list"),
    (("tasks",), [], "tasks is empty"),
    (("tasks", 0, "n_classes"), "2", "tasks[0].n_classes must be a whole number, got '2'"),
    (("tasks", 0, "features"), "wide", "tasks[0]: task 'detection': features must be one of"),
    (("tasks", 0, "weight"), "heavy", "tasks[0].weight must be a number"),
    (("tasks", 0, "loss"), "banana", "tasks[0].loss must be one of"),
    (("tasks", 0, "name"), KeyError, "tasks[0].name is missing"),
    (("tasks", 0, "class_weights"), ["x", 1], "tasks[0].class_weights[0] must be a number"),
    (("postprocess", "method"), "magic", "postprocess: post-processing method must be one of"),
    (("postprocess", "instances", "min_size"), "big", "postprocess.instances.min_size must be a whole number"),
    (("provenance",), [1, 2], "provenance must be an object"),
]


@pytest.mark.parametrize("path, value, message", BAD_CONFIGS,
                         ids=[f"{'.'.join(map(str, p))}={v!r}" for p, v, _ in BAD_CONFIGS])
def test_every_bad_config_field_is_named(model, path, value, message, capsys):
    _edit(model, _set(path, value))
    with pytest.raises(ModelFileError) as err:
        load_model(model)
    text = str(err.value)
    assert text.startswith(f"{model}: config.json: ") and message in text and "\n" not in text, text
    one_line_error(capsys, main(["info", "--model", str(model)]), message)


def test_unknown_fields_are_ignored(model):
    _edit(model, lambda cfg: (cfg.update(future="x"), cfg["network"].update(future=1),
                              cfg["tasks"][0].update(future=2)))
    assert load_model(model).task_names


BAD_STATES = [
    (lambda s: s.update(step="abc"), "training_state.pt: step must be a whole number, got 'abc'"),
    (lambda s: s.update(step=-3), "step must be a whole number >= 0"),
    (lambda s: s.pop("optimizer"), "training_state.pt: optimizer is missing"),
    (lambda s: s.update(optimizer=[1]), "optimizer must be an object"),
    (lambda s: s["optimizer"].pop("param_groups"), "optimizer.param_groups is missing"),
    (lambda s: s["optimizer"]["param_groups"][0].update(params="all"),
     "optimizer.param_groups[0].params must be a list"),
    (lambda s: s.update(history={"total": ["low"]}), "history['total'][0] must be a number"),
]


@pytest.mark.parametrize("damage, message", BAD_STATES, ids=[m for _, m in BAD_STATES])
def test_every_bad_training_state_field_is_named(data, model, damage, message, capsys):
    state = torch.load(model / STATE_FILE, weights_only=True)
    damage(state)
    torch.save(state, model / STATE_FILE)
    code = main(["train", "--data", str(data), "--model", str(model), "--resume"] + TRAIN[:1] + ["5"] + TRAIN[2:])
    one_line_error(capsys, code, str(model), message)


def test_a_training_state_of_another_architecture_is_refused(data, model, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["train", "--data", str(data), "--model", str(other)] + TRAIN + ["--preset", "cpu"]) == 0
    capsys.readouterr()
    shutil.copy(other / STATE_FILE, model / STATE_FILE)
    args = ["train", "--data", str(data), "--model", str(model), "--resume"] + TRAIN
    args[args.index("--steps") + 1] = "5"
    one_line_error(capsys, main(args), "training_state.pt", "another architecture")


def test_resume_with_other_classes_is_refused(data, model, capsys):
    args = ["train", "--data", str(data), "--model", str(model), "--resume", "--classes", "2"] + TRAIN
    args[args.index("--steps") + 1] = "5"
    one_line_error(capsys, main(args), "trained with 1 class", "--classes 1")


def test_a_model_with_non_finite_weights_is_refused(data, model, tmp_path, capsys):
    """predict used to print "0 objects" for a model whose weights are NaN."""
    from safetensors.torch import load_file, save_file
    weights = load_file(str(model / WEIGHTS_FILE))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, str(model / WEIGHTS_FILE))
    out = tmp_path / "p.tif"
    code = main(["predict", "--model", str(model), "--image", str(data.parent / "synthetic_000.tif"),
                 "--out", str(out), "--quiet"])
    one_line_error(capsys, code, "NaN or infinite", name)
    assert not out.exists()


def test_the_schema_reads_the_declared_loss_names_and_the_trainer_has_one_function_each():
    from napari_lazylabels.engine.tasks import LOSS_NAMES
    from napari_lazylabels.engine.training.losses import LOSSES
    from napari_lazylabels.io import model_schema

    assert set(LOSSES) == set(LOSS_NAMES)
    assert "LOSSES" not in vars(model_schema)           # the schema does not read the trainer's table
