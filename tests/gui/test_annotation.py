"""The lazy annotation widget driven as a user would: layers, shortcuts, class names, summary, GrabCut."""

from __future__ import annotations

import numpy as np
import pytest

from napari_lazylabels.plugin.sample_data import REAL_NAME, SYNTHETIC_NAME, real_instances
from napari_lazylabels.engine.regimes.detection import detection_blobs
from napari_lazylabels.plugin.widgets import AnnotationWidget
from napari_lazylabels.plugin.widgets.fit import ShortButton
from napari_lazylabels.plugin.layers import input_keys, input_spec, label_layer_name

pytestmark = pytest.mark.gui


def test_a_kind_gets_its_layer_when_first_painted_names_colours_brushes_and_shortcuts(real_viewer, qtbot):
    w = AnnotationWidget(real_viewer)
    qtbot.addWidget(w)
    assert w.image_combo.currentText() == REAL_NAME
    w.class_edit.setText("nucleus, mitotic")
    w.apply_class_names()
    assert len(real_viewer.layers) == 1                  # no kind is painted yet: no layer up front
    names = [label_layer_name(REAL_NAME, t) for t in ("detection", "separation", "segmentation")]
    assert names == ["blobs · HeLa nuclei (real)", "interfaces · HeLa nuclei (real)", "masks · HeLa nuclei (real)"]
    # the buttons add the layer of their kind only, and make it the one painted on
    w.input_buttons["detection"].click()
    assert [layer.name for layer in real_viewer.layers] == [REAL_NAME, names[0]]
    blobs = real_viewer.layers[names[0]]
    assert real_viewer.layers.selection.active is blobs and blobs.mode == "paint"
    keys = {str(k): f for k, f in real_viewer.keymap.items()}
    keys["Alt+2"](real_viewer)
    keys["Alt+3"](real_viewer)
    assert [layer.name for layer in real_viewer.layers] == [REAL_NAME, *names]
    image = real_viewer.layers[REAL_NAME]
    for name, task in zip(names, ("detection", "separation", "segmentation")):
        layer = real_viewer.layers[name]
        assert layer.data.shape == image.data.shape and not layer.data.any()
        assert layer.brush_size == input_spec(task).brush_size
    blobs, scribbles, masks = (real_viewer.layers[n] for n in names)
    # each layer has its own colours: class 1 of blobs differs from class 1 of masks
    assert not np.allclose(blobs.colormap.map(np.array([1]))[0], masks.colormap.map(np.array([1]))[0])
    assert not np.allclose(scribbles.colormap.map(np.array([1]))[0], blobs.colormap.map(np.array([1]))[0])
    # two classes: both have colours, the class names show in the layer features
    assert list(blobs.features["class"]) == ["(none)", "nucleus", "mitotic"]
    # pressing again keeps the same layers (and what is painted in them)
    blobs.paint((100, 100), 1)
    w.input_buttons["detection"].click()
    assert len(real_viewer.layers) == 4 and blobs.data[100, 100] == 1
    # the shortcuts switch layers and put them in paint mode
    for key, layer in (("Alt+2", scribbles), ("Alt+3", masks), ("Alt+1", blobs)):
        keys[key](real_viewer)
        assert real_viewer.layers.selection.active is layer and layer.mode == "paint"
    # add_layers (scripts) still adds every kind at once
    w.add_layers()
    assert len(real_viewer.layers) == 1 + len(input_keys()) and blobs.data[100, 100] == 1


def test_the_legend_shows_each_kind_in_its_layer_colour(real_viewer, qtbot):
    w = AnnotationWidget(real_viewer)
    qtbot.addWidget(w)
    text = w.kinds_legend.text()
    for key in input_keys():
        spec = input_spec(key)
        rgb = spec.colours(1)[1]
        assert spec.title.lower() in text and "#{:02x}{:02x}{:02x}".format(*rgb) in text
        assert not w.input_buttons[key].icon().isNull()
    layer = w.select_input("detection")
    painted = np.round(np.asarray(layer.colormap.map(np.array([1]))[0][:3]) * 255).astype(int)
    assert "#{:02x}{:02x}{:02x}".format(*painted) in text         # the legend's colour is the layer's
    assert "background" in text                                      # the fg/bg strokes' second colour


def test_summary_follows_painting(synthetic_viewer, qtbot):
    w = AnnotationWidget(synthetic_viewer)
    qtbot.addWidget(w)
    w.refresh_summary()
    rows = {s.name: s for s in w.summaries}
    assert len(rows) == 8                     # every plane of the sample is painted
    masked = [s for s in rows.values() if "segmentation" in s.annotated]
    assert len(masked) == 1 and 0 < float(masked[0].cells["segmentation"].rstrip(" %")) < 100
    first = rows[f"{SYNTHETIC_NAME}_000"]
    assert int(first.cells["detection"]) > 5 and "detection" in first.annotated
    # painting a new blob far from the others adds one to the count of plane 0
    blobs = synthetic_viewer.layers[label_layer_name(SYNTHETIC_NAME, "detection")]
    blobs.data[0] = 0
    blobs.refresh()
    blobs.brush_size = 3
    blobs.paint((0, 30, 30), 1)
    qtbot.waitUntil(lambda: any(s.name.endswith("_000") and s.cells["detection"] == "1" for s in w.summaries),
                    timeout=3000)
    assert w.table.rowCount() == 8
    assert w.table.item(0, 1).text() == "1"                 # one class: just the count
    assert w.table.item(0, 3).text() == "-"                 # plane 0 has no masks: not annotated


def _paint_blobs(viewer):
    """A user's blobs on the real image (simulated from its ground truth), and one mask painted by hand."""
    w = AnnotationWidget(viewer)
    layers = w.add_layers()
    truth = real_instances()
    blobs = detection_blobs(truth, rng=np.random.default_rng(0))
    layers["detection"].data = blobs.astype(layers["detection"].data.dtype)
    return w, layers, truth


def test_grabcut_drafts_only_into_empty_pixels_and_undo(real_viewer, qtbot):
    w, layers, truth = _paint_blobs(real_viewer)
    qtbot.addWidget(w)
    masks = layers["segmentation"]
    # the user has painted one exact mask (value 1) already, and a stray pixel of background
    own = truth == truth[128, 128] if truth[128, 128] else truth == 1
    masks.data = np.where(own, 1, 0).astype(masks.data.dtype)
    before = np.array(masks.data)
    with qtbot.waitSignal(w.grabcut.button.clicked, timeout=1000):
        w.grabcut.button.click()
    qtbot.waitUntil(lambda: w.grabcut.last_count is not None, timeout=30000)
    assert w.grabcut.last_count > 1000
    after = np.array(masks.data)
    assert np.array_equal(after[before > 0], before[before > 0])       # painted pixels untouched
    drafted = (after > 0) & (before == 0)
    # drafts are reasonable: most drafted pixels are inside true nuclei
    assert (truth[drafted] > 0).mean() > 0.8
    masks.undo()
    assert np.array_equal(masks.data, before)                          # one undo takes it all back
    masks.redo()
    assert np.array_equal(masks.data, after)


def test_grabcut_error_is_a_notification_and_changes_nothing(real_viewer, qtbot, monkeypatch, errors):
    w, layers, _ = _paint_blobs(real_viewer)
    qtbot.addWidget(w)

    def broken(*args, **kwargs):
        raise RuntimeError("cv2 exploded")

    monkeypatch.setattr("napari_lazylabels.plugin.widgets.grabcut_widget.grabcut_drafts", broken)
    before = {layer.name: np.array(layer.data) for layer in real_viewer.layers}
    w.grabcut.button.click()
    qtbot.waitUntil(lambda: w.grabcut.last_count == -1, timeout=10000)
    assert any("cv2 exploded" in e for e in errors())
    for layer in real_viewer.layers:
        assert np.array_equal(layer.data, before[layer.name])
    assert w.grabcut.button.isEnabled()


def test_grabcut_with_only_blobs_painted_makes_the_masks_layer(real_viewer, qtbot, errors):
    w = AnnotationWidget(real_viewer)
    qtbot.addWidget(w)
    w.grabcut.button.click()                                   # nothing painted: one line, no layer
    assert any("paint blobs first" in e for e in errors()) and len(real_viewer.layers) == 1
    blobs = w.select_input("detection")                        # the blobs only: no masks layer yet
    blobs.data = detection_blobs(real_instances(), rng=np.random.default_rng(0)).astype(blobs.data.dtype)
    w.grabcut.button.click()
    qtbot.waitUntil(lambda: w.grabcut.last_count is not None, timeout=30000)
    masks = real_viewer.layers[label_layer_name(REAL_NAME, "segmentation")]
    assert w.grabcut.last_count > 1000 and masks.data.any()
    assert real_viewer.layers.selection.active is blobs       # still painting the blobs


def test_a_kind_button_drops_its_shortcut_from_its_label_where_the_label_would_be_cut(real_viewer, qtbot):
    lone = ShortButton("Fg/bg scribbles (Alt-4)", "Fg/bg scribbles")
    qtbot.addWidget(lone)
    lone.show()
    for width, shown in ((400, "Fg/bg scribbles (Alt-4)"), (120, "Fg/bg scribbles"), (400, "Fg/bg scribbles (Alt-4)")):
        lone.resize(width, 30)
        qtbot.waitUntil(lambda: lone.text() == shown, timeout=3000)       # cut, then back with the room
    w = AnnotationWidget(real_viewer)                                     # the dock, at most 330 px wide
    qtbot.addWidget(w)
    w.show()
    qtbot.wait(100)
    buttons = list(w.input_buttons.values())
    for b in buttons:
        fits = b._needs(b.full_text) <= b.width()
        assert b.text() == (b.full_text if fits else b.full_text.rsplit(" (", 1)[0])
        assert "Alt-" in b.toolTip()                                      # the shortcut stays in the tooltip
    assert sum(b.text() == b.full_text for b in buttons) >= len(buttons) - 2     # most keep their shortcut
