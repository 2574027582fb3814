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


def test_the_suggestion_is_computed_off_the_gui_thread_at_its_priority(synthetic_viewer, qtbot, errors,
                                                                           monkeypatch):
    import os
    import sys
    import threading

    import napari_lazylabels.plugin.widgets.suggest_panel as module

    seen = {}

    def fake_suggest(model, items, k, box, device="cpu"):
        tid = threading.get_native_id()
        seen.update(thread=tid, nice=os.getpriority(os.PRIO_PROCESS, tid) if hasattr(os, "getpriority") else 0)
        return [SuggestedBox(1, items[0].name, 0, 0, 0, box, box, 0.5, "uncertain", 0.5, 0.0, 0.0)]

    monkeypatch.setattr(module, "suggest", fake_suggest)
    monkeypatch.setattr(module, "check_request", lambda *a: None)
    panel = SuggestPanel(synthetic_viewer, lambda: object())
    qtbot.addWidget(panel)
    gui_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if hasattr(os, "getpriority") else 0
    for nicer in (False, True):          # the default, and the comparison's nicer thread
        panel.lower_priority = nicer
        if LAYER_NAME in synthetic_viewer.layers:
            synthetic_viewer.layers.remove(LAYER_NAME)
        panel.suggest()
        qtbot.waitUntil(lambda: LAYER_NAME in synthetic_viewer.layers and not panel.busy, timeout=10000)
        assert seen["thread"] != threading.get_native_id() and not errors()
        if sys.platform.startswith("linux"):
            assert (seen["nice"] > gui_nice) == nicer
