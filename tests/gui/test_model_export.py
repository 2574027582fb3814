"""Train & predict: the post-processing fields (stored in the model, used by Predict, filled from a loaded
model), the Export model button, and a 2-channel store opened, annotated and trained on in napari."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from napari_lazylabels.engine.annotations import PixelSize
from napari_lazylabels.io.modelio import load_model
from napari_lazylabels.io.ome_zarr import write_image_store
from napari_lazylabels.plugin.data import training_items
from napari_lazylabels.plugin.layers import ensure_label_layers, label_layers, prediction_layer_name
from napari_lazylabels.plugin.sample_data import SYNTHETIC_NAME
from napari_lazylabels.plugin.widgets import TrainWidget

pytestmark = pytest.mark.gui


def _wait(w, qtbot):
    qtbot.waitUntil(lambda: not w.running, timeout=60000)


def test_postprocessing_fields_and_export_button(synthetic_viewer, qtbot, tmp_path, monkeypatch, tiny_settings,
                                                 errors):
    pytest.importorskip("bioimageio.spec", reason="Export model needs the bioimageio extra")
    viewer = synthetic_viewer
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    w.checkpoint_root = str(tmp_path / "ckpt")
    tiny_settings(w, steps=3)
    w.form.instances["min_size"].value = 11
    w.form.instances["probability_threshold"].value = 0.4
    w.train_button.click()
    _wait(w, qtbot)
    assert w.last_finished.error is None, w.last_finished.error
    model = load_model(w.checkpoint)
    assert model.postprocess.instances.min_size == 11 and model.postprocess.instances.probability_threshold == 0.4

    # Predict takes the form's settings: everything is an object at threshold 0, nothing at 1
    w.model_panel.image_combo.setCurrentText(SYNTHETIC_NAME)
    w.form.instances["min_size"].value = 0
    for threshold, expect_objects in ((1.0, False), (0.0, True)):
        w.form.instances["probability_threshold"].value = threshold
        w.model_panel.predict_button.click()
        qtbot.waitUntil(lambda: not w.model_panel.busy and w.model_panel.predict_button.isEnabled(), timeout=30000)
        inst = viewer.layers[prediction_layer_name(SYNTHETIC_NAME, "instances")].data
        assert bool(inst.any()) == expect_objects, threshold
    w.form.instances["probability_threshold"].value = 0.0   # 0 in the form: automatic (argmax)
    assert w.form.postprocess().instances.probability_threshold is None

    # Export model: a bioimage.io package, written in the background
    target = tmp_path / "exported.zip"
    monkeypatch.setattr("napari_lazylabels.plugin.widgets.model_panel.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(target), ""))
    assert w.model_panel.export_button.isEnabled()
    w.model_panel.export_button.click()
    qtbot.waitUntil(lambda: target.is_file() and not w.model_panel.busy, timeout=60000)
    assert not errors()
    with zipfile.ZipFile(target) as zf:
        assert "rdf.yaml" in zf.namelist() and "weights_torchscript.pt" in zf.namelist()

    # a loaded model shows its post-processing in the form
    w.form.instances["min_size"].value = 99
    w.model_panel.load_model(w.checkpoint)
    assert w.form.instances["min_size"].value == 11
    assert w.form.instances["probability_threshold"].value == pytest.approx(0.4)


def test_two_channel_store_is_annotated_and_trained_in_napari(viewer, small_lazy_set, tmp_path):
    item = small_lazy_set[0][0]
    image = np.stack([item.image, item.image[::-1]], axis=-1).astype(np.float32)      # YXC, 2 channels
    path = write_image_store(tmp_path / "two.ome.zarr", image,
                             {"detection": np.asarray(item.labels["detection"]).astype(np.uint8)},
                             pixel_size=PixelSize(0.5, 0.5))
    viewer.open(str(path), plugin="napari-lazylabels")
    layer = viewer.layers["two"]
    assert layer.data.shape == (2, 64, 64) and tuple(layer.scale) == (1.0, 0.5, 0.5)
    layers = ensure_label_layers(viewer, layer, ["nucleus"])      # existing kept, missing added at its scale
    assert all(tuple(lab.scale) == (0.5, 0.5) for lab in layers.values())
    assert all(tuple(lab.data.shape) == (64, 64) for lab in layers.values() if lab.__class__.__name__ == "Labels")
    assert set(label_layers(viewer, "two")) == set(layers)
    (one,) = training_items(viewer, layer)
    assert one.image.shape == (64, 64, 2) and np.array_equal(one.image, image)
    assert one.pixel_size == PixelSize(0.5, 0.5) and one.is_annotated("detection")
