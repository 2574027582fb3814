"""Export to the project's OME-Zarr, reopen with the reader, compare; never overwrite without asking."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qtpy.QtWidgets import QMessageBox

from napari_lazylabels.plugin.reader import napari_get_reader
from napari_lazylabels.plugin.sample_data import REAL_NAME, SYNTHETIC_NAME
from napari_lazylabels.io.project import read_project
from napari_lazylabels.plugin.widgets import ExportWidget, TrainWidget
from napari_lazylabels.plugin.layers import (META, label_layer_name, prediction_layer_name,
                                            probability_layer_name)

pytestmark = pytest.mark.gui
PLUGIN = "napari-lazylabels"


def _answer(monkeypatch, yes: bool, asked: list):
    def question(*args, **kwargs):
        asked.append(args[2] if len(args) > 2 else "")
        return QMessageBox.StandardButton.Yes if yes else QMessageBox.StandardButton.No
    monkeypatch.setattr(QMessageBox, "question", question)


def _export(w, qtbot):
    before = w.last_export
    w.export_button.click()
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    return w.last_export is not before


def test_export_predictions_and_reopen(synthetic_viewer, qtbot, tmp_path, make_napari_viewer, tiny_settings):
    viewer = synthetic_viewer
    # a short training run gives prediction layers for plane 1
    t = TrainWidget(viewer)
    qtbot.addWidget(t)
    t.checkpoint_root = str(tmp_path / "ckpt")
    tiny_settings(t, steps=3)
    viewer.dims.set_current_step(0, 1)
    t.train_button.click()
    qtbot.waitUntil(lambda: not t.running, timeout=60000)
    assert prediction_layer_name(SYNTHETIC_NAME, "instances") in viewer.layers
    w = ExportWidget(viewer)
    qtbot.addWidget(w)
    project = tmp_path / "project"
    w.image_combo.setCurrentText(SYNTHETIC_NAME)
    w.folder_edit.setText(str(project))
    assert _export(w, qtbot)
    info = json.loads((project / "project.json").read_text())
    assert [e["name"] for e in info["images"]] == [f"{SYNTHETIC_NAME}_{i:03d}" for i in range(8)]
    stores = read_project(project)
    assert set(stores[1].probabilities) == {"detection", "separation", "segmentation"}
    assert "instances" in stores[1].labels and "instances" not in stores[0].labels
    assert sum("segmentation" in s.labels for s in stores) == 1     # masks on one plane only
    # reopen in a fresh viewer with the reader: the same stack and layers come back
    other = make_napari_viewer()
    assert napari_get_reader(str(project)) is not None
    other.open(str(project), plugin=PLUGIN)
    cells = prediction_layer_name(SYNTHETIC_NAME, "instances")
    names = [SYNTHETIC_NAME, *(label_layer_name(SYNTHETIC_NAME, k) for k in ("detection", "separation",
                                                                             "segmentation")),
             cells, probability_layer_name(SYNTHETIC_NAME, "segmentation", main=True)]
    assert sorted(layer.name for layer in other.layers) == sorted(layer.name for layer in viewer.layers) == \
        sorted(names)
    for name in names:
        np.testing.assert_array_equal(np.asarray(other.layers[name].data), np.asarray(viewer.layers[name].data),
                                      err_msg=name)
    # every head's probabilities and the class map come back in the cells layer, shown or not
    full, mine = (v.layers[cells].metadata[META] for v in (other, viewer))
    assert set(full["probabilities"]) == set(mine["probabilities"]) == {(1,)}
    for task in ("detection", "separation", "segmentation"):
        np.testing.assert_allclose(full["probabilities"][(1,)][task], mine["probabilities"][(1,)][task])
    np.testing.assert_array_equal(full["semantic"][(1,)], mine["semantic"][(1,)])
    assert other.layers[SYNTHETIC_NAME].metadata[META]["class_names"] == ["nucleus"]


def test_export_never_overwrites_without_asking(real_viewer, qtbot, tmp_path, monkeypatch):
    viewer = real_viewer
    from napari_lazylabels.plugin.widgets import AnnotationWidget
    a = AnnotationWidget(viewer)
    qtbot.addWidget(a)
    blobs = a.add_layers()["detection"]
    blobs.paint((50, 50), 1)
    w = ExportWidget(viewer)
    qtbot.addWidget(w)
    project = tmp_path / "p"
    w.folder_edit.setText(str(project))
    asked: list = []
    _answer(monkeypatch, yes=False, asked=asked)
    assert _export(w, qtbot) and not asked                 # new project: nothing to ask
    store = project / f"{REAL_NAME}.ome.zarr"
    first = read_project(project)[0].labels["detection"]
    blobs.paint((150, 150), 1)
    assert not _export(w, qtbot)                            # asked, answered No: nothing written
    assert len(asked) == 1 and REAL_NAME in asked[0]
    np.testing.assert_array_equal(read_project(project)[0].labels["detection"], first)
    _answer(monkeypatch, yes=True, asked=asked)
    assert _export(w, qtbot)                                # Yes: replaced
    assert len(asked) == 2
    np.testing.assert_array_equal(read_project(project)[0].labels["detection"], blobs.data)
    assert store.is_dir()
    # the reader also opens a single store
    other_layers = napari_get_reader(str(store))(str(store))
    # the painted kind comes back; the kinds never painted get their layers when painted
    assert [kw["name"] for _, kw, _ in other_layers] == [REAL_NAME, label_layer_name(REAL_NAME, "detection")]


def test_reader_declines_other_paths(tmp_path):
    (tmp_path / "x.tif").write_bytes(b"")
    assert napari_get_reader(str(tmp_path / "x.tif")) is None
    assert napari_get_reader(str(tmp_path)) is None
    assert napari_get_reader([str(tmp_path), str(tmp_path)]) is None
