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
    assert "objects · one" in names and "objects · three" in names and "objects · two" not in names
    # the same as Predict on one image
    first = np.array(viewer.layers["objects · one"].data)
    panel.image_combo.setCurrentText("one")
    panel.predict_button.click()
    _wait(panel, qtbot)
    np.testing.assert_array_equal(np.array(viewer.layers["objects · one"].data), first)


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
    # each result opens over its image, as the image's objects
    assert [layer.name for layer in viewer.layers] == ["a", "objects · a", "b", "objects · b"]
    np.testing.assert_array_equal(viewer.layers["a"].data, tifffile.imread(raw / "a.tif"))
    np.testing.assert_array_equal(viewer.layers["objects · a"].data, tifffile.imread(out / "a_labels.tif"))

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
    assert any(layer.name.startswith("objects · a") for layer in viewer.layers)


def test_predict_folder_leaves_out_label_files_and_opens_each_image_with_its_labels(viewer, qtbot, model_dir,
                                                                                   tmp_path, errors, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    tifffile.imwrite(raw / "a.tif", make_image(4, (64, 72)).image)
    tifffile.imwrite(raw / "b.tif", make_image(5, (64, 72)).image.astype(np.float32))
    blobs = np.zeros((64, 72), np.uint16)
    blobs[10:14, 10:14] = 1
    tifffile.imwrite(raw / "a_blobs.tif", blobs)                   # painted by the user, named by the manifest
    (raw / "manifest.csv").write_text("image,detection\na.tif,a_blobs.tif\n")
    panel = _panel(viewer, qtbot, model_dir)
    panel.open_results.setChecked(True)
    panel.predict_folder(str(raw), str(raw))                       # the results beside the images
    _wait(panel, qtbot)
    assert not errors()
    assert sorted(r.image.name for r in panel.folder_results) == ["a.tif", "b.tif"]
    assert {p.name for p in panel.left_out} == {"a_blobs.tif"}
    assert np.array_equal(tifffile.imread(raw / "a_blobs.tif"), blobs)          # untouched
    assert [layer.name for layer in viewer.layers] == ["a", "objects · a", "b", "objects · b"]
    assert viewer.layers["objects · a"].data.shape == viewer.layers["a"].data.shape
    # a second run finds its own results beside the images and leaves them out too
    viewer.layers.clear()
    panel.open_results.setChecked(False)
    monkeypatch.setattr("napari_lazylabels.plugin.widgets.dialogs.QMessageBox.question",
                        lambda *a, **k: __import__("qtpy.QtWidgets").QtWidgets.QMessageBox.StandardButton.Yes)
    panel.predict_folder(str(raw), str(raw))                       # replace the results: yes
    _wait(panel, qtbot)
    assert sorted(r.image.name for r in panel.folder_results) == ["a.tif", "b.tif"]
    assert {p.name for p in panel.left_out} == {"a_blobs.tif", "a_labels.tif", "b_labels.tif"}
    assert not errors()
