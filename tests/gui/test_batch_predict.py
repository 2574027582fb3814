"""Train & predict on many images: Predict selected (every selected image layer) and Predict folder (the
batch recipe into an output folder, a failing image reported and skipped, results optionally opened)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_lazylabels.engine.synthetic import make_image
from napari_lazylabels.plugin.widgets import TrainWidget

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def model_dir(small_lazy_set, tmp_path_factory, train_tiny):
    folder = tmp_path_factory.mktemp("gui_batch") / "model"
    train_tiny(small_lazy_set[0], 3, model_dir=folder)
    return folder


def _panel(viewer, qtbot, model_dir):
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    w.form.set_values(device="cpu")
    assert w.model_panel.load_model(str(model_dir)) is not None
    return w.model_panel


def _wait(panel, qtbot):
    qtbot.waitUntil(lambda: not panel.busy and panel.predict_folder_button.isEnabled(), timeout=60000)


def test_predict_selected_image_layers(viewer, qtbot, model_dir, errors):
    images = {n: make_image(s, (64, 72)).image for n, s in (("one", 1), ("two", 2), ("three", 3))}
    for name, data in images.items():
        viewer.add_image(data, name=name)
    panel = _panel(viewer, qtbot, model_dir)
    viewer.layers.selection = {viewer.layers["one"], viewer.layers["three"]}
    panel.predict_selected_button.click()
    _wait(panel, qtbot)
    assert not errors()
    names = [layer.name for layer in viewer.layers]
    assert "one instances" in names and "three instances" in names and "two instances" not in names
    # the same as Predict on one image
    first = np.array(viewer.layers["one instances"].data)
    panel.image_combo.setCurrentText("one")
    panel.predict_button.click()
    _wait(panel, qtbot)
    np.testing.assert_array_equal(np.array(viewer.layers["one instances"].data), first)


def test_predict_selected_needs_an_image(viewer, qtbot, model_dir, errors):
    viewer.add_labels(np.zeros((8, 8), np.uint8), name="just labels")
    panel = _panel(viewer, qtbot, model_dir)
    viewer.layers.selection = {viewer.layers["just labels"]}
    panel.predict_selected()
    assert not panel.busy and len(viewer.layers) == 1


def test_predict_folder_skips_a_failing_image_and_opens_results(viewer, qtbot, model_dir, tmp_path, errors,
                                                               monkeypatch):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    tifffile.imwrite(raw / "a.tif", make_image(4, (64, 72)).image)
    np.save(raw / "b.npy", make_image(5, (70, 64)).image)
    (raw / "c.tif").write_bytes(b"not a tiff")
    panel = _panel(viewer, qtbot, model_dir)
    panel.open_results.setChecked(True)
    panel.predict_folder(str(raw), str(out))
    _wait(panel, qtbot)
    assert sorted(p.name for p in out.iterdir()) == ["a_labels.tif", "b_labels.tif"]
    assert [r.ok for r in panel.folder_results] == [True, True, False]
    shown = errors()
    assert len(shown) == 1 and "c.tif" in shown[0]
    assert "a_labels" in viewer.layers and "b_labels" in viewer.layers
    np.testing.assert_array_equal(viewer.layers["a_labels"].data, tifffile.imread(out / "a_labels.tif"))

    # results that exist are replaced only on an explicit Yes
    before = (out / "a_labels.tif").stat().st_mtime_ns
    monkeypatch.setattr("napari_lazylabels.plugin.widgets.dialogs.QMessageBox.question",
                        lambda *a, **k: __import__("qtpy.QtWidgets").QtWidgets.QMessageBox.StandardButton.No)
    panel.predict_folder(str(raw), str(out))
    assert not panel.busy and (out / "a_labels.tif").stat().st_mtime_ns == before

    # OME-Zarr results open as the prediction layers
    panel.folder_format.setCurrentIndex(1)
    zout = tmp_path / "zarr"
    panel.predict_folder(str(raw), str(zout))
    _wait(panel, qtbot)
    assert sorted(p.name for p in zout.iterdir()) == ["a_labels.zarr", "b_labels.zarr"]
    assert any(layer.name.endswith("instances") and layer.name.startswith("a") for layer in viewer.layers)
