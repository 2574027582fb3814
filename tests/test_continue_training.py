"""Continue training (``train --init-from``): weights and optimiser state kept where sound, new heads
fresh, the old model folder never written."""

import hashlib

import pytest
import torch

from napari_lazylabels.cli import main
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.simulate import simulate_lazy_labels
from napari_lazylabels.errors import LazyLabelsError, OutputExistsError
from napari_lazylabels.io.modelio import load_model
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

from test_cli import TRAIN, write_dataset


def _train(items, network, config, model_dir, **kw):
    run = TrainingRun(TrainingPlan(items, network=network, config=config, model_dir=model_dir, **kw))
    for _ in run.run():
        pass
    return run


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def first_model(small_lazy_set, tiny_network, quick_config, tmp_path):
    items, _ = small_lazy_set
    _train(items, tiny_network, quick_config, tmp_path / "first")
    return tmp_path / "first"


def test_continue_keeps_weights_and_optimiser_and_never_writes_the_old_model(
        small_lazy_set, tiny_network, quick_config, first_model, tmp_path):
    items, _ = small_lazy_set
    before = _digest(first_model)
    run = TrainingRun(TrainingPlan(items, network=tiny_network, config=quick_config, model_dir=tmp_path / "next",
                                   init_from=first_model))
    old = load_model(first_model).network.state_dict()
    new = run.trainer.network.state_dict()
    assert all(torch.equal(old[k], new[k].cpu()) for k in old)
    info = run.continued
    assert info.optimizer_tensors == info.parameter_tensors > 0 and not info.new_heads
    assert run.trainer.optimizer.state_dict()["state"]                  # Adam's moments are there
    assert run.step == 0                                                 # a new run, a new schedule
    assert [r.step for r in run.run()][-1] == quick_config.steps
    model = load_model(tmp_path / "next")
    assert model.provenance["continued_from"]["model"] == str(first_model)
    assert model.provenance["continued_from"]["optimizer_state_kept"].startswith(f"{info.parameter_tensors} of")
    assert _digest(first_model) == before


def test_a_new_regime_gets_a_fresh_head_and_the_others_keep_theirs(small_lazy_set, tiny_network, quick_config,
                                                                   tmp_path):
    items, truths = small_lazy_set
    strokes = [simulate_lazy_labels(t.instances, rng=i,
                                    regimes=[registry.get("impartial")])["scribbles"] for i, t in enumerate(truths)]
    scribbled = [LazyAnnotations(it.image, {"scribbles": s}, name=it.name) for it, s in zip(items, strokes)]
    first = _train(scribbled, tiny_network, quick_config, tmp_path / "strokes")
    old_heads = first.trainer.network.task_names
    both = [LazyAnnotations(it.image, {**it.labels, "scribbles": s}, name=it.name) for it, s in zip(items, strokes)]
    run = TrainingRun(TrainingPlan(both, network=tiny_network, config=quick_config, model_dir=tmp_path / "all",
                                   init_from=tmp_path / "strokes"))
    info = run.continued
    assert info.kept_heads == old_heads and info.new_heads
    assert set(info.new_heads) | set(old_heads) == set(run.trainer.network.task_names)
    assert 0 < info.optimizer_tensors < info.parameter_tensors
    old = load_model(tmp_path / "strokes").network.state_dict()
    new = run.trainer.network.state_dict()
    for name in old_heads:
        assert torch.equal(old[f"heads.{name}.weight"], new[f"heads.{name}.weight"].cpu())
    assert "new heads started fresh" in info.summary()


def test_continuing_into_the_model_it_reads_is_refused(small_lazy_set, tiny_network, quick_config, first_model):
    items, _ = small_lazy_set
    before = _digest(first_model)
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match="never written"):
            TrainingRun(TrainingPlan(items, network=tiny_network, config=quick_config, model_dir=first_model,
                                     overwrite=overwrite, init_from=first_model))
    with pytest.raises(LazyLabelsError, match="give one"):
        TrainingRun(TrainingPlan(items, network=tiny_network, config=quick_config, model_dir=first_model,
                                 resume=first_model, init_from=first_model))
    assert _digest(first_model) == before


def test_other_classes_are_refused_in_one_line(small_lazy_set, tiny_network, quick_config, first_model, tmp_path):
    items, _ = small_lazy_set
    with pytest.raises(LazyLabelsError, match="--classes 1"):
        TrainingRun(TrainingPlan(items, class_names=["a", "b"], network=tiny_network, config=quick_config,
                                 model_dir=tmp_path / "x", init_from=first_model))
    assert not (tmp_path / "x").exists()


def test_cli_init_from_says_what_was_kept(small_lazy_set, tmp_path, capsys):
    items, _ = small_lazy_set
    data = write_dataset(tmp_path / "data", items[:3])
    assert main(["train", "--data", str(data), "--model", str(tmp_path / "m1")] + TRAIN) == 0
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--model", str(tmp_path / "m2"), "--init-from",
                 str(tmp_path / "m1")] + TRAIN) == 0
    err = capsys.readouterr().err
    assert "continuing from" in err and "optimiser state of" in err
    code = main(["train", "--data", str(data), "--model", str(tmp_path / "m1"), "--init-from",
                 str(tmp_path / "m1"), "--overwrite"] + TRAIN)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "never written" in err and "\n" not in err

