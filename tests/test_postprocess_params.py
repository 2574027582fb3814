"""The post-processing a user can tune: each parameter changes the result as its documentation says,
from Python, from the command line (predict; defaults stored by train) and through the model file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from skimage.draw import disk

from napari_lazylabels.cli import main
from napari_lazylabels.engine.pipeline import rescale_factor, segment
from napari_lazylabels.engine.annotations import PixelSize
from napari_lazylabels.engine.postprocess.instances import instances_from_probabilities
from napari_lazylabels.engine.postprocess.settings import InstanceParams, PostProcessing
from napari_lazylabels.engine.tasks import BOUNDARIES, FOREGROUND, SEEDS
from napari_lazylabels.errors import SettingsError
from napari_lazylabels.io.modelio import load_model, save_model

SHAPE = (64, 96)


def _two_halves(p_fg: float = 0.9, p_interface: float = 0.0, seed_radius: int = 4):
    """Two touching disks (one region) with a seed in each and an interface line between them."""
    fg = np.zeros(SHAPE, bool)
    for c in (30, 56):
        fg[disk((32, c), 14, shape=SHAPE)] = True
    seg = np.stack([np.where(fg, 1 - p_fg, 0.95), np.where(fg, p_fg, 0.05)]).astype(np.float32)
    seeds = np.zeros(SHAPE, np.float32)
    for c in (26, 60) if seed_radius else ():
        seeds[disk((32, c), seed_radius, shape=SHAPE)] = 0.9
    sep = np.zeros(SHAPE, np.float32)
    sep[:, 43] = p_interface
    return {FOREGROUND: seg, SEEDS: np.stack([1 - seeds, seeds]), BOUNDARIES: np.stack([1 - sep, sep])}


def _count(probs, **params) -> int:
    return int(instances_from_probabilities(probs, InstanceParams(**params))[1].max())


def test_probability_threshold_decides_what_is_foreground():
    hesitant = _two_halves(p_fg=0.4)          # the model says 40 % "object": argmax says background
    assert _count(hesitant) == 0
    semantic, inst = instances_from_probabilities(hesitant, InstanceParams(probability_threshold=0.3))
    assert inst.max() >= 1 and semantic.sum() == (hesitant[FOREGROUND][1] > 0.3).sum()
    sure = _two_halves(p_fg=0.9)
    assert _count(sure, probability_threshold=0.95) == 0 and _count(sure, probability_threshold=0.5) >= 1


def test_interface_threshold_splits_touching_objects_where_the_boundary_head_is_above_it():
    probs = _two_halves(p_interface=0.4, seed_radius=0)   # an empty seed head: distance seeds only
    merged = _count(probs, interface_threshold=0.5, min_peak_distance=40)
    split = _count(probs, interface_threshold=0.3, min_peak_distance=40)
    assert merged == 1 and split == 2


def test_min_size_and_min_seed_area_drop_small_things():
    probs = _two_halves(p_interface=0.9)
    assert _count(probs) == 2
    assert _count(probs, min_size=700) == 1        # each half is ~600 px: merged into its neighbour... or
    assert _count(probs, min_size=5000) == 0       # ...dropped when nothing is left to merge with
    assert _count(probs, min_seed_area=1000, seed_source="seeds") == 2   # no seed left: region components
    small = _two_halves(p_interface=0.0, seed_radius=2)     # seeds of 13 px, no interface
    assert _count(small, min_seed_area=5) == 2 and _count(small, min_seed_area=20) == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(probability_threshold=1.5), "probability_threshold"),
    (dict(interface_threshold=-0.1), "interface_threshold"),
    (dict(min_size=-1), "min_size"),
    (dict(seed_join_threshold=1.2), "seed_join_threshold"),
])
def test_bad_instance_settings_are_refused(kwargs, match):
    with pytest.raises(SettingsError, match=match):
        InstanceParams(**kwargs)
    with pytest.raises(SettingsError, match="rescale"):
        PostProcessing(rescale=0)


# ----------------------------------------------------------------- rescaling, with a model

@pytest.fixture(scope="module")
def tiny_model(small_lazy_set, tmp_path_factory, train_tiny):
    return save_model(train_tiny(small_lazy_set[0][:3], 4).model(), tmp_path_factory.mktemp("pp") / "model")


def test_rescale_resizes_the_image_for_the_network_and_the_results_back(tiny_model, small_lazy_set, monkeypatch):
    model = load_model(tiny_model)
    image = small_lazy_set[0][4].image
    seen = []
    original = type(model).predict

    def spy(self, img, **kw):
        seen.append(img.shape)
        return original(self, img, **kw)

    monkeypatch.setattr(type(model), "predict", spy)
    plain = segment(model, image)
    big = segment(model, image, postprocess=PostProcessing(rescale=2.0))
    assert seen == [image.shape, (2 * image.shape[0], 2 * image.shape[1])]
    assert big.instances.shape == plain.instances.shape == image.shape
    assert all(p.shape[1:] == image.shape for p in big.probabilities.values())
    ids = np.unique(big.instances[big.instances > 0])
    assert list(ids) == list(range(1, len(ids) + 1))       # ids stay 1..N


def test_rescale_from_pixel_sizes(tiny_model):
    model = load_model(tiny_model)
    assert rescale_factor(model, model.postprocess, PixelSize(1.0, 1.0)) == 1.0     # training pixel size unknown
    model.provenance["pixel_size"] = PixelSize(250, 250, "nanometer").to_dict()
    assert rescale_factor(model, model.postprocess, PixelSize(1.0, 1.0)) == pytest.approx(4.0)
    assert rescale_factor(model, model.postprocess, None) == 1.0
    assert rescale_factor(model, PostProcessing(rescale=0.5), PixelSize(1.0, 1.0)) == 0.5   # set wins


# ----------------------------------------------------------------- the command line and the model file

def test_predict_options_override_the_models_defaults(tiny_model, small_lazy_set, tmp_path, capsys):
    image = small_lazy_set[0][4].image
    tifffile.imwrite(tmp_path / "img.tif", image)
    base = ["predict", "--model", str(tiny_model), "--image", str(tmp_path / "img.tif"), "--quiet"]

    def labels(name, *options):
        out = tmp_path / f"{name}.tif"
        assert main(base + ["--out", str(out), *options]) == 0
        return tifffile.imread(out)

    default = labels("default")
    everything = labels("low", "--probability-threshold", "0.0", "--min-size", "0")
    nothing = labels("high", "--probability-threshold", "1.0")
    assert (everything > 0).sum() == image.size and nothing.max() == 0
    assert (everything > 0).sum() >= (default > 0).sum()
    huge = labels("huge", "--probability-threshold", "0.0", "--min-size", str(image.size + 1))
    assert huge.max() == 0
    code = main(base + ["--out", str(tmp_path / "bad.tif"), "--interface-threshold", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("lazylabels: error:") and "interface_threshold" in err
    assert main(base + ["--out", str(tmp_path / "bad.tif"), "--rescale", "50"]) == 2


def test_train_stores_the_post_processing_defaults(small_lazy_set, tmp_path):
    from test_cli import TRAIN, write_dataset

    manifest = write_dataset(tmp_path / "data", small_lazy_set[0][:2])
    out = tmp_path / "m"
    assert main(["train", "--data", str(manifest), "--model", str(out), "--probability-threshold", "0.3",
                 "--interface-threshold", "0.7", "--min-seed-area", "9"] + TRAIN) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["postprocess"]["instances"]["probability_threshold"] == 0.3
    assert config["postprocess"]["instances"]["interface_threshold"] == 0.7
    assert config["postprocess"]["instances"]["min_seed_area"] == 9
    assert config["postprocess"]["rescale"] is None
    model = load_model(out)
    assert model.postprocess.instances == InstanceParams(probability_threshold=0.3, interface_threshold=0.7,
                                                         min_seed_area=9)
    # a resumed run keeps them when none is given again
    assert main(["train", "--data", str(manifest), "--model", str(out), "--resume", "--steps", "5",
                 "--patch-size", "32", "--batch-size", "2", "--device", "cpu", "--quiet"]) == 0
    assert load_model(out).postprocess.instances.min_seed_area == 9
