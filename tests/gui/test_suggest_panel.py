"""The "Annotate here next" panel of Train & predict: boxes as a Shapes layer, Alt-N / Next box moves
the view to each in turn, every image of the session (each plane of a stack) is looked at."""

import warnings

from napari_lazylabels.engine.suggest import SuggestedBox
from napari_lazylabels.plugin.sample_data import SYNTHETIC_NAME
from napari_lazylabels.plugin.widgets.suggest_panel import LAYER_NAME, SuggestPanel, camera_of, session_items
from napari_lazylabels.plugin.widgets.training_widget import TrainWidget


def test_boxes_show_as_shapes_and_the_view_steps_through_them(synthetic_viewer, qtbot, errors):
    viewer = synthetic_viewer
    items, where = session_items(viewer)
    stack = viewer.layers[SYNTHETIC_NAME]
    assert len(items) == stack.data.shape[0] and where[2] == (stack, (2,))
    assert any(it.labels for it in items)                 # what is painted comes along
    panel = SuggestPanel(viewer, lambda: None)
    qtbot.addWidget(panel)
    boxes = [SuggestedBox(1, items[2].name, 2, 10, 20, 32, 32, 0.9, "uncertain", 0.5, 0.0, 0.2),
             SuggestedBox(2, items[0].name, 0, 64, 96, 32, 32, 0.7, "far from any label", 0.1, 0.0, 1.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)       # napari 0.9 deprecates viewer.camera
        warnings.simplefilter("error", FutureWarning)
        panel.show_boxes(boxes, where)
        panel.next_box()
        panel.next_box()
    layer = viewer.layers[LAYER_NAME]
    assert len(layer.data) == 2 and list(layer.features["reason"]) == ["uncertain", "far from any label"]
    assert viewer.dims.current_step[0] == 2                      # the plane of the first box
    assert tuple(round(c) for c in camera_of(viewer).center[-2:]) == (26, 36)
    panel.next_box()
    assert viewer.dims.current_step[0] == 0
    assert tuple(round(c) for c in camera_of(viewer).center[-2:]) == (80, 112)
    panel.show_boxes(boxes[:1], where)                           # replaces the layer
    assert len(viewer.layers[LAYER_NAME].data) == 1 and not errors()


def test_the_train_widget_has_the_panel_and_train_on_needs_a_model(viewer, qtbot, errors):
    widget = TrainWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.suggest_panel.train_on_button.isEnabled()
    widget.suggest_panel.suggest()
    assert errors() and "no model yet" in errors()[-1]
    widget.train_on()
    assert "nothing to train on" in errors()[-1]
