"""Choosing which Labels layers hold an image's lazy labels (Train & predict)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_lazylabels.plugin.sample_data import REAL_NAME, SYNTHETIC_NAME
from napari_lazylabels.plugin.data import training_set
from napari_lazylabels.plugin.widgets.label_picker import NO_LAYER
from napari_lazylabels.plugin.layers import label_layer_name, label_layers
from napari_lazylabels.plugin.widgets.training_widget import TrainWidget

pytestmark = pytest.mark.gui


def test_picker_shows_the_default_layers_and_only_matching_shapes(synthetic_viewer, qtbot):
    viewer = synthetic_viewer
    viewer.add_labels(np.zeros((32, 32), np.uint8), name="small")          # another shape: not offered
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    picker = w.label_picker
    assert picker.image_name == SYNTHETIC_NAME
    combo = picker.combos["detection"]
    offered = [combo.itemText(i) for i in range(combo.count())]
    assert combo.currentText() == label_layer_name(SYNTHETIC_NAME, "detection")
    assert "small" not in offered and label_layer_name(SYNTHETIC_NAME, "segmentation") in offered


def test_a_layer_painted_elsewhere_is_picked_and_trained_on(synthetic_viewer, qtbot):
    viewer = synthetic_viewer
    image = viewer.layers[SYNTHETIC_NAME]
    default = viewer.layers[label_layer_name(SYNTHETIC_NAME, "detection")]
    before = np.array(default.data)
    mine = viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="my blobs")
    mine.data[0, 100:110, 100:110] = 1
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    w.label_picker.choose("detection", "my blobs")
    assert label_layers(viewer, SYNTHETIC_NAME)["detection"] is mine
    # the default layer is no longer used (not by its metadata, nor by its name), and is untouched
    assert all(layer is not default for layer in label_layers(viewer, SYNTHETIC_NAME).values())
    np.testing.assert_array_equal(default.data, before)
    items = training_set(viewer, [image])
    plane0 = next(it for it in items if it.name.endswith("_000"))
    np.testing.assert_array_equal(plane0.labels["detection"], mine.data[0])
    # the choice survives a new layer being added (the list is rebuilt)
    viewer.add_labels(np.zeros((16, 16), np.uint8), name="unrelated")
    assert w.label_picker.combos["detection"].currentText() == "my blobs"


def test_an_image_without_layers_shows_none(real_viewer, qtbot):
    w = TrainWidget(real_viewer)
    qtbot.addWidget(w)
    assert w.label_picker.image_name == REAL_NAME
    for combo in w.label_picker.combos.values():
        assert combo.currentText() == NO_LAYER and not combo.isEnabled()
