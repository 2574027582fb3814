"""bioimage.io export: a package that bioimageio.core's test_model passes, that runs without this package
(TorchScript), and that `lazylabels predict` reads back."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import tifffile
import torch

from napari_lazylabels.cli import main
from napari_lazylabels.errors import LazyLabelsError, ModelFileError, OutputExistsError
from napari_lazylabels.io.modelio import load_model

from test_cli import TRAIN, one_line_error, write_dataset

pytest.importorskip("bioimageio.spec", reason="bioimage.io export needs the bioimageio extra")


@pytest.fixture(scope="module")
def exported(small_lazy_set, tmp_path_factory):
    """A tiny model trained by the CLI, and its package written by `lazylabels export`."""
    folder = tmp_path_factory.mktemp("bioimageio")
    manifest = write_dataset(folder / "data", small_lazy_set[0][:3])
    model_dir = folder / "nuclei_model"
    assert main(["train", "--data", str(manifest), "--model", str(model_dir), "--min-size", "12"] + TRAIN) == 0
    out = folder / "nuclei.zip"
    assert main(["export", "--model", str(model_dir), "--out", str(out)]) == 0
    return model_dir, out


def _rdf(package) -> dict:
    import yaml  # noqa: PLC0415 (ruyaml comes with bioimageio.spec; PyYAML with napari)

    with zipfile.ZipFile(package) as zf:
        return yaml.safe_load(zf.read("rdf.yaml"))


def test_package_describes_the_model(exported):
    model_dir, package = exported
    model = load_model(model_dir)
    rdf = _rdf(package)
    assert rdf["type"] == "model" and rdf["format_version"].startswith("0.5")
    assert rdf["name"] == "nuclei_model"
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript"}
    arch = rdf["weights"]["pytorch_state_dict"]["architecture"]
    assert arch["import_from"] == "napari_lazylabels.engine.model" and arch["callable"] == "ProbabilityUNet"
    assert arch["kwargs"]["network"] == model.network_config.to_dict()
    (raw,) = rdf["inputs"]
    assert [a["type"] for a in raw["axes"]] == ["batch", "channel", "space", "space"]
    scale = next(p for p in raw["preprocessing"] if p["id"] == "scale_range")["kwargs"]
    assert (scale["min_percentile"], scale["max_percentile"]) == (model.normalization.low, model.normalization.high)
    assert [o["id"] for o in rdf["outputs"]] == model.task_names
    assert {c["doi"] for c in rdf["cite"]} == {"10.48550/arXiv.1906.12177", "10.48550/arXiv.2005.13053"}
    assert rdf["covers"] and rdf["documentation"]
    ours = rdf["config"]["napari_lazylabels"]
    assert ours["provenance"]["trained_steps"] == model.provenance["trained_steps"]
    assert ours["postprocess"]["instances"]["min_size"] == 12
    with zipfile.ZipFile(package) as zf:
        names = set(zf.namelist())
    assert {"cover.png", "README.md", "lazylabels_config.json", "test_input.npy", "weights.pt",
            "weights_torchscript.pt"} <= names


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("weight_format", ["pytorch_state_dict", "torchscript"])
def test_bioimageio_core_test_model_passes(exported, weight_format):
    core = pytest.importorskip("bioimageio.core", reason="test_model needs bioimageio.core (bioimageio extra)")
    summary = core.test_model(str(exported[1]), weight_format=weight_format)
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status == "failed"]
    assert summary.status == "passed", failed


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_runs_alone_on_other_sizes(exported):
    model_dir, package = exported
    model = load_model(model_dir)
    with zipfile.ZipFile(package) as zf:
        scripted = torch.jit.load(zf.open("weights_torchscript.pt"))
    x = torch.rand(1, 1, 48, 56)
    with torch.no_grad():
        ours = model.network(x)
        theirs = scripted(x)
    for name, probs in zip(model.task_names, theirs):
        assert probs.shape == (1, ours[name].shape[1], 48, 56)
        assert torch.allclose(probs, torch.softmax(ours[name], dim=1), atol=1e-5)


def test_predict_reads_the_package_back(exported, small_lazy_set, tmp_path):
    model_dir, package = exported
    tifffile.imwrite(tmp_path / "img.tif", small_lazy_set[0][5].image)
    for model, name in ((model_dir, "folder"), (package, "package")):
        assert main(["predict", "--model", str(model), "--image", str(tmp_path / "img.tif"),
                     "--out", str(tmp_path / f"{name}.zarr"), "--quiet"]) == 0
    from napari_lazylabels.io.ome_zarr import read_image_store
    a, b = read_image_store(tmp_path / "folder.zarr"), read_image_store(tmp_path / "package.zarr")
    assert np.array_equal(a.labels["instances"], b.labels["instances"])
    for task in a.probabilities:
        np.testing.assert_allclose(a.probabilities[task], b.probabilities[task], atol=1e-6)
    loaded = load_model(package)
    assert loaded.postprocess.instances.min_size == 12 and loaded.class_names == load_model(model_dir).class_names


def test_export_errors(exported, tmp_path, capsys):
    model_dir, package = exported
    code = main(["export", "--model", str(model_dir), "--out", str(package)])
    one_line_error(capsys, code, str(package), "--overwrite")
    code = main(["export", "--model", str(model_dir), "--out", str(tmp_path / "m.tar")])
    one_line_error(capsys, code, "m.tar", ".zip")
    from napari_lazylabels.io.bioimageio import export_bioimageio
    model = load_model(model_dir)
    with pytest.raises(OutputExistsError):
        export_bioimageio(model, package)
    with pytest.raises(LazyLabelsError, match="channel"):
        export_bioimageio(model, tmp_path / "rgb.zip", test_image=np.zeros((64, 64, 3), np.float32))
    assert not (tmp_path / "rgb.zip").exists()
    foreign = tmp_path / "other.zip"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("rdf.yaml", json.dumps({"type": "model"}))
    with pytest.raises(ModelFileError, match="not one written by napari-lazylabels"):
        load_model(foreign)


def _spec_name_check():
    """bioimage.io's own check of a model's name (the ``name`` field of its ModelDescr)."""
    from typing import Annotated

    from bioimageio.spec.model import v0_5 as bio
    from pydantic import TypeAdapter
    field = bio.ModelDescr.model_fields["name"]
    return TypeAdapter(Annotated[field.annotation, *field.metadata]).validate_python


@pytest.mark.parametrize("folder", ["m", "abc", "nuclei_model", "model.v1", "a/b", "é", "..", " x ", "_" * 3,
                                    "my model (v2)", "x" * 200, "résumé du modèle"])
def test_any_folder_name_gives_a_name_bioimageio_takes(folder):
    from napari_lazylabels.io.bioimageio import check_package_name, package_name
    name = package_name(folder)
    assert _spec_name_check()(name) == name == check_package_name(name)
    assert package_name(name) == name                        # a valid name stays as it is


def test_a_short_folder_name_exports_and_a_name_can_be_given(exported, tmp_path, capsys):
    """``--model m`` failed bioimage.io's validation ("name should have at least 5 items"; issue 22)."""
    import shutil
    model_dir, _ = exported
    short = tmp_path / "m"
    shutil.copytree(model_dir, short)
    assert main(["export", "--model", str(short), "--out", str(tmp_path / "m.zip")]) == 0
    assert _rdf(tmp_path / "m.zip")["name"] == "lazylabels m"
    capsys.readouterr()
    code = main(["export", "--model", str(short), "--out", str(tmp_path / "bad.zip"), "--name", "m/1"])
    one_line_error(capsys, code, "'m/1' is not a bioimage.io model name", "--name 'lazylabels m_1'")
    assert not (tmp_path / "bad.zip").exists()
    assert main(["export", "--model", str(short), "--out", str(tmp_path / "named.zip"),
                 "--name", "HeLa nuclei (v2)"]) == 0
    assert _rdf(tmp_path / "named.zip")["name"] == "HeLa nuclei (v2)"
