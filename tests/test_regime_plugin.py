"""Adding a regime is adding one module: a toy regime registered in a test reaches the CLI, the
manifest reader, the recipe, the model file and the napari reader with no other file edited."""

import dataclasses

import numpy as np
import pytest

from napari_lazylabels.cli import main
from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.regimes.base import Regime
from napari_lazylabels.errors import SettingsError
from napari_lazylabels.io.manifest import load_manifest
from napari_lazylabels.io.modelio import load_model
from napari_lazylabels.io.ome_zarr import ImageStore
from napari_lazylabels.io.project import write_project
from napari_lazylabels.plugin.reader import read_lazylabels
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun, prepare


def _rings(image_shape, truth):
    """A ring (1) around every object: dilation minus the object."""
    from scipy import ndimage as ndi
    fg = truth > 0
    return (ndi.binary_dilation(fg, iterations=2) & ~fg).astype(np.uint8)


def _manifest(tmp_path, items, truths, with_rings: bool):
    keys = list(items[0].labels) + (["rings"] if with_rings else [])
    rows = [",".join(["image", *keys])]
    for i, (it, tr) in enumerate(zip(items, truths)):
        np.save(tmp_path / f"im{i}.npy", it.image)
        cells = [f"im{i}.npy"]
        labels = dict(it.labels, rings=_rings(it.image.shape, tr.instances))
        for key in keys:
            if labels.get(key) is None:
                cells.append("")
            else:
                np.save(tmp_path / f"{key}{i}.npy", labels[key])
                cells.append(f"{key}{i}.npy")
        rows.append(",".join(cells))
    path = tmp_path / ("with.csv" if with_rings else "without.csv")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_toy_regime_is_in_the_cli_help_and_the_manifest(toy_regime, small_lazy_set, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "rings" in text and toy_regime.inputs[0].values in text
    items, truths = small_lazy_set
    loaded = load_manifest(_manifest(tmp_path, items, truths, with_rings=True))
    assert all(it.labels["rings"] is not None and it.labels["rings"].max() == 1 for it in loaded)
    # optional: a manifest without its column is still fine, and trains no such task
    plain = load_manifest(_manifest(tmp_path, items, truths, with_rings=False))
    assert "rings" not in plain[0].labels
    assert "rings" not in [t.name for t in prepare(TrainingPlan(plain)).tasks]


def test_toy_regime_trains_through_the_cli_and_is_in_the_model(toy_regime, small_lazy_set, tmp_path):
    items, truths = small_lazy_set
    manifest = _manifest(tmp_path, items, truths, with_rings=True)
    out = tmp_path / "model"
    assert main(["train", "--data", str(manifest), "--model", str(out), "--steps", "3", "--patch-size", "32",
                 "--batch-size", "2", "--preset", "tiny", "--device", "cpu", "--quiet",
                 "--task-weights", "rings=0.5"]) == 0
    model = load_model(out)
    (rings,) = [t for t in model.tasks if t.name == "rings"]
    assert rings.n_classes == 2 and rings.weight == 0.5
    assert "rings" in model.predict(items[0].image)


def test_toy_regime_round_trips_through_a_project_and_the_reader(toy_regime, small_lazy_set, tmp_path):
    items, truths = small_lazy_set
    it, tr = items[0], truths[0]
    labels = {k: v for k, v in it.labels.items() if v is not None}
    labels["rings"] = _rings(it.image.shape, tr.instances)
    project = write_project(tmp_path / "p", [ImageStore(image=it.image, labels=labels, name="a")])
    loaded = load_manifest(project)
    assert np.array_equal(loaded[0].labels["rings"], labels["rings"])
    layers = {kw["name"]: (data, kind) for data, kw, kind in read_lazylabels(str(project))}
    assert "rings · a" in layers and layers["rings · a"][1] == "labels"
    assert np.array_equal(layers["rings · a"][0], labels["rings"])


def test_a_clashing_regime_is_refused(toy_regime):
    class Again(Regime):
        name = "again"
        inputs = toy_regime.inputs
    with pytest.raises(SettingsError, match="clashes with regime 'rings' on rings"):
        registry.register(Again())
    assert "again" not in [r.name for r in registry.regimes()]


def test_the_toy_regime_is_gone_after_the_test():
    assert "rings" not in [r.name for r in registry.regimes()]
    assert "rings" not in registry.input_keys()


# -- declared capabilities: typed options, post-processing, machine-made inputs ---------------------

def _capable_regime(toy_regime, postprocess=None):
    """The toy regime with typed options of its own and, optionally, a post-processing it declares."""
    from dataclasses import dataclass, field

    from napari_lazylabels.engine.postprocess.settings import PostProcessing
    from napari_lazylabels.engine.regimes.base import LabelInput

    @dataclass(frozen=True)
    class HaloOptions:
        classes: int = field(default=2, metadata={"help": "classes of the halo head", "metavar": "N"})

    seen = []

    class Halo(Regime):
        name = "halo"
        inputs = (LabelInput(key="halo", title="Halo", suffix="halo", values="1 on a halo", tooltip="a halo",
                             class_values=False, value_names=("halo",)),)
        options = HaloOptions
        features = toy_regime.features

        def tasks(self, n_classes, options):
            seen.append(options)
            (task,) = super().tasks(n_classes, options)
            return [dataclasses.replace(task, n_classes=options.classes)]

        def targets(self, item, done, tasks, options):
            seen.append(options)
            return super().targets(item, done, tasks, options)

        def postprocessing(self, options):
            return postprocess

    return Halo(), HaloOptions, seen


def test_a_regime_gets_its_typed_options_resolved_once(toy_regime, small_lazy_set):
    regime, options, seen = _capable_regime(toy_regime)
    with registry.registered(regime):
        assert regime.configure().options == options()                 # the defaults, never None
        assert regime.configure(options(classes=3)).tasks(1)[0].n_classes == 3
        with pytest.raises(SettingsError, match="takes HaloOptions options, got dict"):
            regime.configure({"classes": 3})
        with pytest.raises(SettingsError, match="has no options"):
            toy_regime.configure(options())
        items, truths = small_lazy_set
        painted = [dataclasses.replace(it, labels={**it.labels, "halo": _rings(it.image.shape, tr.instances)})
                   for it, tr in zip(items, truths)]
        seen.clear()
        prepared = prepare(TrainingPlan(painted, weights={"halo": 0.25}, options={"halo": options(classes=2)}))
        (halo,) = [t for t in prepared.tasks if t.name == "halo"]
        assert halo.weight == 0.25                                      # weights applied once, by the recipe
        assert len(seen) == 1 + len(painted)                             # tasks once, targets per image
        assert all(o == options(classes=2) for o in seen)


def test_two_regimes_that_set_the_post_processing_are_refused(toy_regime, small_lazy_set):
    from napari_lazylabels.engine.postprocess.settings import PostProcessing

    regime, _, _ = _capable_regime(toy_regime, postprocess=PostProcessing(flips=True))
    items, truths = small_lazy_set
    painted = [dataclasses.replace(it, labels={**it.labels, "halo": _rings(it.image.shape, tr.instances)})
               for it, tr in zip(items, truths)]
    with registry.registered(regime):
        assert prepare(TrainingPlan(painted)).postprocess == PostProcessing(flips=True)
        with pytest.raises(SettingsError, match="regimes recursive and halo both set the post-processing"):
            prepare(TrainingPlan(painted, opt_in={"recursive": None}))


def test_machine_made_labels_fill_the_inputs_that_declare_them(monkeypatch):
    from napari_lazylabels.engine.regimes.base import MACHINE_MASK, MACHINE_POINTS, POINTS, LabelInput

    points, mask = registry.machine_label_inputs()
    assert (points.machine_made, mask.machine_made) == (MACHINE_POINTS, MACHINE_MASK)
    assert registry.regime_of_input(points.key).name == "lacss"

    def regime_with(declared: bool) -> Regime:
        class Clicks(Regime):
            name = "clicks"
            inputs = (LabelInput(key="clicks", title="Clicks", suffix="clicks", values="points", tooltip="",
                                 layer_type=POINTS, machine_made=MACHINE_POINTS if declared else None),
                      LabelInput(key="area", title="Area", suffix="area", values="mask", tooltip="", binary=True,
                                 machine_made=MACHINE_MASK if declared else None))
        return Clicks()

    # the same shapes (a points input and a mask) are not enough: the regime must declare them
    monkeypatch.setattr(registry, "regimes", lambda: (regime_with(False),))
    assert registry.machine_label_inputs() is None
    monkeypatch.setattr(registry, "regimes", lambda: (regime_with(True),))
    assert [i.key for i in registry.machine_label_inputs()] == ["clicks", "area"]
    with pytest.raises(SettingsError, match="machine-made points fill a points input only"):
        LabelInput(key="x", title="X", suffix="x", values="", tooltip="", machine_made=MACHINE_POINTS)
