"""Fg/bg scribbles (ImPartial) in napari: their layer and summary column, the form's options, training
on the painted and the unpainted planes, and the streamed component map."""

from __future__ import annotations

import numpy as np
import pytest


from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.regimes.impartial import simulate_scribbles
from napari_lazylabels.engine.synthetic import make_image
from napari_lazylabels.plugin.layers import (candidate_label_layers, components_role, find_layer, label_layer_name,
                                            probability_layer_name,
                                            prediction_layer_name)
from napari_lazylabels.plugin.widgets import AnnotationWidget, TrainWidget

pytestmark = pytest.mark.gui

NAME = "mibi"
REGIME = registry.get("impartial")
KEY = REGIME.inputs[0].key


@pytest.fixture
def mibi_viewer(viewer):
    truths = [make_image(s, shape=(96, 96), style="mibi") for s in (1, 2)]
    viewer.add_image(np.stack([t.image for t in truths]), name=NAME)
    return viewer, truths


def test_strokes_layer_summary_and_old_interface_layers(mibi_viewer, qtbot):
    viewer, truths = mibi_viewer
    w = AnnotationWidget(viewer)
    qtbot.addWidget(w)
    layers = w.add_layers()
    layer = layers[KEY]
    assert layer.name == f"fg-bg scribbles · {NAME}" == label_layer_name(NAME, KEY)
    assert list(layer.features["class"]) == ["(none)", "cell", "background"]     # "cell" unless the user names it
    green, red = layer.colormap.map(np.array([1, 2]))[:, :3]
    assert green[1] > green[0] and red[0] > red[1]          # objects green, background red
    assert "Alt-4" in w.input_buttons[KEY].text()
    layer.data[0] = simulate_scribbles(truths[0].instances, rng=0, budget=0.3)
    layer.refresh()
    w.refresh_summary()
    col = [w.table.horizontalHeaderItem(c).text() for c in range(w.table.columnCount())].index("fg-bg scribbles")
    row = next(r for r in range(w.table.rowCount()) if w.table.item(r, 0).text().endswith("_000"))
    text = w.table.item(row, col).text()
    assert "cell:" in text and "background:" in text and "px" in text
    # a layer named with the interfaces' old suffix, without our metadata, is still the interfaces'
    viewer.add_labels(np.zeros((2, 96, 96), np.uint8), name="other scribbles")
    assert find_layer(viewer, "other", "separation") is viewer.layers["other scribbles"]
    assert find_layer(viewer, "other", KEY) is None


def test_training_on_strokes_uses_every_plane_and_streams_the_component_map(mibi_viewer, qtbot, tmp_path,
                                                                           tiny_settings):
    viewer, truths = mibi_viewer
    AnnotationWidget(viewer).add_layers()
    strokes = viewer.layers[label_layer_name(NAME, KEY)]
    strokes.data[0] = simulate_scribbles(truths[0].instances, rng=0, budget=0.3)   # plane 1: nothing
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    w.checkpoint_root = str(tmp_path)
    assert set(w.form.regime_options[REGIME.name]) >= {"components", "mixture_weight", "blind_spot"}
    w.form.regime_options[REGIME.name]["components"].value = 3
    tiny_settings(w, steps=3)
    w.model_panel.every_head.setChecked(True)         # the component map is shown with every head
    w.train_button.click()
    assert "2 images" in w.status.text() and "1 without any label" in w.status.text()
    qtbot.waitUntil(lambda: not w.running, timeout=60000)
    assert w.last_finished.error is None, w.last_finished.error
    comp = viewer.layers[prediction_layer_name(NAME, components_role(KEY))]
    assert comp.data.shape == (2, 96, 96) and not comp.visible
    assert 1 <= comp.data[0].min() and comp.data[0].max() <= 2 * 3         # classes x components
    assert comp not in candidate_label_layers(viewer, viewer.layers[NAME])    # not offered for painting
    assert probability_layer_name(NAME, KEY, main=True) in viewer.layers and prediction_layer_name(NAME, "instances") in viewer.layers
    (task,) = w.model_panel.model().tasks
    assert task.name == KEY and task.components == 3
    assert w.model_panel.model().provenance["images"] == [f"{NAME}_000", f"{NAME}_001"]
