"""Layers a person can read: few per image after painting and training, names that stay distinct when cut."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtGui import QFontMetrics
from qtpy.QtWidgets import QApplication

from napari_lazylabels.engine.regimes.detection import detection_blobs
from napari_lazylabels.plugin.layers import find_layer, image_of, label_layer_name, prediction_layer_name
from napari_lazylabels.plugin.reader import read_lazylabels
from napari_lazylabels.plugin.sample_data import REAL_NAME, real_instances
from napari_lazylabels.plugin.widgets import AnnotationWidget, TrainWidget

pytestmark = pytest.mark.gui

#: About what napari's layer list and a combo box show of a name at the plugin's dock widths (px).
SHOWN_PX = (110, 150)


def _image_layers(viewer, name: str) -> list:
    return [layer for layer in viewer.layers if layer.name == name or image_of(layer) == name]


def _paint_train_predict(viewer, qtbot, tmp_path, tiny_settings):
    """A user paints blobs, two interface strokes and one exact mask with the buttons, trains briefly,
    then predicts: the widgets' own path, end to end."""
    ann = AnnotationWidget(viewer)
    qtbot.addWidget(ann)
    truth = real_instances()
    blobs = ann.select_input("detection")                # the button's action: its layer appears now
    blobs.data = detection_blobs(truth, rng=np.random.default_rng(0)).astype(blobs.data.dtype)
    interfaces = ann.select_input("separation")
    interfaces.paint((60, 60), 1)
    interfaces.paint((140, 90), 1)
    masks = ann.select_input("segmentation")
    oid = int(truth[128, 128]) or 1
    masks.data = np.where(truth == oid, 1, 0).astype(masks.data.dtype)
    train = TrainWidget(viewer)
    qtbot.addWidget(train)
    train.checkpoint_root = str(tmp_path / "ckpt")
    tiny_settings(train, steps=3)
    train.train_button.click()
    qtbot.waitUntil(lambda: not train.running, timeout=90000)
    assert train.last_finished.error is None, train.last_finished.error
    panel = train.model_panel
    panel.image_combo.setCurrentText(REAL_NAME)
    panel.predict_button.click()
    qtbot.waitUntil(lambda: not panel.busy, timeout=60000)
    return ann, train


def test_at_most_six_layers_per_image_after_painting_training_and_predicting(real_viewer, qtbot, tmp_path,
                                                                           tiny_settings):
    viewer = real_viewer
    ann, train = _paint_train_predict(viewer, qtbot, tmp_path, tiny_settings)
    names = [layer.name for layer in _image_layers(viewer, REAL_NAME)]
    assert len(names) <= 6, names
    assert len(viewer.layers) == len(names)                  # no stray layer of no image
    for key in ("detection", "separation", "segmentation"):
        assert label_layer_name(REAL_NAME, key) in names
    assert prediction_layer_name(REAL_NAME, "instances") in names and f"P(object) · {REAL_NAME}" in names
    cells = find_layer(viewer, REAL_NAME, "instances", "labels")
    assert cells.data.max() > 0
    # no kind the user did not paint has a layer (fg/bg strokes, points, foreground mask come on demand)
    assert not any(w in n for n in names for w in ("scribbles", "points", "foreground"))
    # every head on demand: more layers, each still tied to the image; off again: back to the few
    train.model_panel.every_head.setChecked(True)
    every = [layer.name for layer in _image_layers(viewer, REAL_NAME)]
    assert len(every) > len(names) and prediction_layer_name(REAL_NAME, "semantic") in every
    train.model_panel.every_head.setChecked(False)
    assert [layer.name for layer in _image_layers(viewer, REAL_NAME)] == names


def _elided(text: str, mode, px: int) -> str:
    return QFontMetrics(QApplication.font()).elidedText(text, mode, px)


def test_names_of_one_image_stay_distinct_when_cut(real_viewer, qtbot, tmp_path, tiny_settings):
    viewer = real_viewer
    ann, train = _paint_train_predict(viewer, qtbot, tmp_path, tiny_settings)
    ann.add_layers()                                   # every kind painted...
    train.model_panel.every_head.setChecked(True)      # ...and every head shown: the most layers an image gets
    names = [layer.name for layer in _image_layers(viewer, REAL_NAME)]
    assert len(names) >= 10
    assert len({n[:16] for n in names}) == len(names), names            # a combo box cuts the end
    for px in SHOWN_PX:                                                 # napari's layer list cuts the middle
        for mode in (Qt.TextElideMode.ElideMiddle, Qt.TextElideMode.ElideRight):
            shown = [_elided(n, mode, px) for n in names]
            assert len(set(shown)) == len(names), shown
    # the kind is the first word of every layer but the image: no two differ only at the end
    words = [n.split(" · ")[0] for n in names if n != REAL_NAME]
    assert len(set(words)) == len(words) and all(n.endswith(" · " + REAL_NAME) for n in names if n != REAL_NAME)


def test_an_older_project_layer_name_is_still_found(real_viewer, qtbot):
    viewer = real_viewer
    old = viewer.add_labels(np.zeros((256, 256), np.uint8), name=f"{REAL_NAME} blobs")     # no metadata
    ann = AnnotationWidget(viewer)
    qtbot.addWidget(ann)
    assert ann.select_input("detection") is old and len(viewer.layers) == 2


def test_reader_shows_only_what_was_painted_and_predicted(tmp_path):
    from napari_lazylabels.io.ome_zarr import ImageStore
    from napari_lazylabels.io.project import write_project
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    blobs = np.zeros((32, 32), np.uint8)
    blobs[4:8, 4:8] = 1
    probs = {t: np.stack([np.full((32, 32), 0.4, np.float32), np.full((32, 32), 0.6, np.float32)])
             for t in ("detection", "separation", "segmentation")}
    store = ImageStore(image=image, labels={"detection": blobs, "instances": blobs.astype(np.int32),
                                            "semantic": blobs}, probabilities=probs, name="img")
    project = write_project(tmp_path / "p", [store])
    layers = read_lazylabels(str(project))
    names = [kw["name"] for _, kw, _ in layers]
    assert names == ["img", "P(object) · img", "objects · img", "blobs · img"]
    kept = layers[2][1]["metadata"]["lazylabels"]
    assert set(kept["probabilities"][()]) == set(probs) and kept["semantic"][()].sum() == 16
