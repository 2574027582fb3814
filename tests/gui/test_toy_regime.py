"""A toy regime registered in a test appears in the widgets: its layer, button, shortcut and summary
column, its task weight, and its curve in the loss plot, with no other file edited."""

from __future__ import annotations

import numpy as np
import pytest


from napari_lazylabels.plugin.layers import label_layer_name, probability_layer_name
from napari_lazylabels.plugin.sample_data import SYNTHETIC_NAME
from napari_lazylabels.plugin.widgets import AnnotationWidget, TrainWidget
from napari_lazylabels.plugin.widgets.loss_plot import LossPlot

pytestmark = pytest.mark.gui


def test_toy_regime_in_the_annotation_widget(toy_regime, synthetic_viewer, qtbot):
    viewer = synthetic_viewer
    w = AnnotationWidget(viewer)
    qtbot.addWidget(w)
    layers = w.add_layers()
    name = label_layer_name(SYNTHETIC_NAME, "rings")
    assert name == f"rings · {SYNTHETIC_NAME}" and layers["rings"] is viewer.layers[name]
    rings = viewer.layers[name]
    assert rings.brush_size == 3 and list(rings.features["class"]) == ["(none)", "ring"]
    assert np.allclose(rings.colormap.map(np.array([1]))[0][:3], (0, 1, 0))
    assert "rings" in w.input_buttons and "Alt-9" in w.input_buttons["rings"].text()
    keys = {str(k): f for k, f in viewer.keymap.items()}
    keys["Alt+9"](viewer)
    assert viewer.layers.selection.active is rings and rings.mode == "paint"
    headers = [w.table.horizontalHeaderItem(c).text() for c in range(w.table.columnCount())]
    assert headers[-1] == "rings"
    rings.data[0, 10:14, 10:40] = 1
    rings.refresh()
    w.refresh_summary()
    row = next(r for r in range(w.table.rowCount()) if w.table.item(r, 0).text().endswith("_000"))
    assert w.table.item(row, len(headers) - 1).text() == "1"           # one ring painted on plane 0
    other = next(r for r in range(w.table.rowCount()) if w.table.item(r, 0).text().endswith("_001"))
    assert w.table.item(other, len(headers) - 1).text() == "-"          # not annotated there


def test_toy_regime_trains_from_the_widget_with_its_weight_and_curve(toy_regime, synthetic_viewer, qtbot,
                                                                     tmp_path, tiny_settings):
    viewer = synthetic_viewer
    AnnotationWidget(viewer).add_layers()
    rings = viewer.layers[label_layer_name(SYNTHETIC_NAME, "rings")]
    rings.data[:, 5:9, 5:60] = 1
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    w.checkpoint_root = str(tmp_path)
    assert "rings" in w.form.weights
    w.form.weights["rings"].value = 0.5
    tiny_settings(w, steps=3)
    w.train_button.click()
    qtbot.waitUntil(lambda: not w.running, timeout=60000)
    assert w.last_finished.error is None, w.last_finished.error
    curves = w.loss_plot.curves()
    assert "rings" in curves and len(curves["rings"][0]) == 3
    assert probability_layer_name(SYNTHETIC_NAME, "rings") not in viewer.layers     # not the main head
    w.model_panel.every_head.setChecked(True)
    assert viewer.layers[probability_layer_name(SYNTHETIC_NAME, "rings")].data[:, 5:9, 5:60].any()
    w.model_panel.every_head.setChecked(False)
    assert probability_layer_name(SYNTHETIC_NAME, "rings") not in viewer.layers
    model = w.model_panel.model()
    assert next(t for t in model.tasks if t.name == "rings").weight == 0.5
    assert LossPlot.colour_of("rings") == toy_regime.colour
