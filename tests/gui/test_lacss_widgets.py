"""Points + foreground mask in napari: the Points layer, the summary, training items, the machine-made
labels panel (merged without replacing anything, undone, its settings remembered), export and reading
back."""

from __future__ import annotations

import numpy as np
import pytest

from colonies import rod_colony
from napari_lazylabels.engine.regimes.lacss import MASK_KEY, POINTS_KEY
from napari_lazylabels.engine.synthetic import make_image
from napari_lazylabels.plugin.data import training_items
from napari_lazylabels.plugin.reader import read_lazylabels
from napari_lazylabels.plugin.widgets import AnnotationWidget, remembered
from napari_lazylabels.plugin.widgets.autolabel_widget import MODEL_MASK, PREVIEW_MASK, PREVIEW_POINTS
from napari_lazylabels.plugin.widgets.export import stores_for_image, write_stores
from test_autolabel_split_pairs import round_nuclei     # tests/ is on the path (rootdir import)

pytestmark = pytest.mark.gui


def _viewer_with_image(viewer, stack=False):
    im = make_image(11, shape=(96, 96), density=0.15, touching=0.2)
    data = np.stack([im.image, im.image]) if stack else im.image
    viewer.add_image(data, name="cells")
    return im


def test_points_layer_summary_and_training_items(viewer, qtbot):
    im = _viewer_with_image(viewer, stack=True)
    w = AnnotationWidget(viewer)
    qtbot.addWidget(w)
    layers = w.add_layers()
    points, mask = layers[POINTS_KEY], layers[MASK_KEY]
    assert points.__class__.__name__ == "Points" and mask.__class__.__name__ == "Labels"
    keys = {str(k): f for k, f in viewer.keymap.items()}
    keys["Alt+5"](viewer)
    assert viewer.layers.selection.active is points and points.mode == "add"
    points.add(np.array([[1, 20, 30], [1, 50, 60.5]]))
    mask.data[1] = (im.instances > 0)
    w.refresh_summary()
    (row,) = w.summaries
    assert row.name == "cells_001" and row.cells[POINTS_KEY] == "2 points"
    assert row.cells[MASK_KEY].endswith("%")
    (item,) = training_items(viewer, viewer.layers["cells"])
    assert np.array_equal(item.labels[POINTS_KEY], [[20, 30, 1], [50, 60.5, 1]])
    assert item.labels[MASK_KEY].shape == (96, 96)


def test_machine_labels_are_merged_without_replacing_anything_and_undone(viewer, qtbot, tmp_path):
    im = _viewer_with_image(viewer)
    w = AnnotationWidget(viewer)
    qtbot.addWidget(w)
    layers = w.add_layers()
    points, mask = layers[POINTS_KEY], layers[MASK_KEY]
    y, x = np.argwhere(im.instances > 0)[0]
    points.add(np.array([[float(y), float(x)]]))        # the user's click
    mask.data[0:3, 0:3] = 1                              # the user's paint (on the background)
    mask.refresh()
    panel = w.autolabel
    panel.run()
    qtbot.waitUntil(lambda: not panel.busy and panel.pending is not None, timeout=30000)
    # a preview first: nothing written yet
    assert PREVIEW_POINTS in viewer.layers and PREVIEW_MASK in viewer.layers
    assert len(points.data) == 1 and mask.data.sum() == 9 and panel.merge_button.isEnabled()
    assert len(viewer.layers[PREVIEW_POINTS].data) == im.instances.max()      # the image holds 2 nuclei
    panel.accept()
    assert PREVIEW_POINTS not in viewer.layers and PREVIEW_MASK not in viewer.layers
    assert len(points.data) >= 2 and np.allclose(points.data[0], [y, x])
    assert np.all(mask.data[0:3, 0:3] == 1) and mask.data.sum() > 200
    # export, read back: the points come back as a Points layer
    write_stores(tmp_path / "p", stores_for_image(viewer, viewer.layers["cells"]), overwrite=False)
    back = {kw["name"]: (data, kind) for data, kw, kind in read_lazylabels(str(tmp_path / "p"))}
    data, kind = back[points.name]
    assert kind == "points" and np.allclose(data, points.data)
    panel.undo()
    assert len(points.data) == 1 and np.allclose(points.data[0], [y, x])
    assert mask.data.sum() == 9


def test_machine_labels_preview_can_be_discarded_and_take_the_models_foreground(viewer, qtbot):
    im = _viewer_with_image(viewer)
    w = AnnotationWidget(viewer)
    qtbot.addWidget(w)
    layers = w.add_layers()
    points, mask = layers[POINTS_KEY], layers[MASK_KEY]
    panel = w.autolabel
    panel.mask_source.setCurrentText(MODEL_MASK)
    panel.run()                                      # no prediction yet: nothing happens
    assert panel.pending is None and not panel.busy
    predicted = (im.instances > 0).astype(np.int32)
    viewer.add_labels(predicted, name="cells instances",
                      metadata={"lazylabels": {"image": "cells", "role": "instances"}})
    panel.run()
    qtbot.waitUntil(lambda: not panel.busy and panel.pending is not None, timeout=30000)
    labels = panel.pending[-1]
    assert labels.method == "given" and np.array_equal(labels.foreground > 0, predicted > 0)
    panel.discard()
    assert PREVIEW_MASK not in viewer.layers and len(points.data) == 0 and mask.data.sum() == 0


def test_machine_labels_take_one_point_per_blob_or_per_piece_of_the_mask(viewer, qtbot):
    _viewer_with_image(viewer)
    w = AnnotationWidget(viewer)
    qtbot.addWidget(w)
    w.add_layers()
    panel = w.autolabel
    assert panel.point_per.currentText() == "auto" and panel.config().tiling == "auto"
    panel.point_per.setCurrentText("blob")
    assert panel.config().tiling == "off"
    panel.point_per.setCurrentText("piece of the mask")      # forced: each piece of the mask takes one point
    assert panel.config().tiling == "on"
    panel.run()
    qtbot.waitUntil(lambda: not panel.busy and panel.pending is not None, timeout=30000)
    labels = panel.pending[-1]
    assert labels.reading.tiled and "one point per piece of the mask" in panel.status.text()
    assert len(viewer.layers[PREVIEW_POINTS].data) == len(labels.points)


def test_a_touching_pair_takes_two_points_by_default_or_one_when_the_user_says_so(viewer, qtbot):
    viewer.add_image(round_nuclei(), name="nuclei")      # five lone round nuclei and a touching pair
    w = AnnotationWidget(viewer)
    qtbot.addWidget(w)
    w.add_layers()
    panel = w.autolabel
    panel.size.setValue(20.0)
    panel.threshold.setCurrentText("fixed")
    panel.value.setValue(0.5)
    assert panel.touching_pair.currentText() == "auto" and panel.config().split_pairs == "auto"
    found = {}
    for choice, setting in (("auto", "auto"), ("one point", "off"), ("two points", "on")):
        panel.touching_pair.setCurrentText(choice)
        assert panel.config().split_pairs == setting
        panel.run()
        qtbot.waitUntil(lambda: not panel.busy and panel.pending is not None, timeout=30000)
        labels = panel.pending[-1]
        on_pair = labels.points[(labels.points[:, 1] > 95) & (np.abs(labels.points[:, 0] - 60) < 8)]
        found[choice] = (len(on_pair), labels.reading.pairs_split, "round objects" in panel.status.text())
        assert labels.reading.pairs_set == (choice == "two points")
        assert len(viewer.layers[PREVIEW_POINTS].data) == len(labels.points)
        panel.discard()
    assert found == {"auto": (2, True, True), "one point": (1, False, False), "two points": (2, True, False)}


def test_machine_labels_that_look_wrong_are_warned_about_with_the_preview(viewer, qtbot):
    im = _viewer_with_image(viewer)
    w = AnnotationWidget(viewer)
    qtbot.addWidget(w)
    w.add_layers()
    panel = w.autolabel
    panel.threshold.setCurrentText("fixed")
    panel.value.setValue(float(im.image.min()) - 1.0)       # under every pixel: the mask is the whole image
    panel.run()
    qtbot.waitUntil(lambda: not panel.busy and panel.pending is not None, timeout=30000)
    text = panel.status.text()
    assert text.startswith("preview:") and "Warning: the mask covers 100 % of the image" in text
    panel.discard()
    panel.threshold.setCurrentText("auto")                  # sound labels: no warning
    panel.run()
    qtbot.waitUntil(lambda: not panel.busy and panel.pending is not None, timeout=30000)
    assert "Warning" not in panel.status.text()


def test_machine_labels_that_look_wrong_are_read_again_unless_unticked(viewer, qtbot):
    viewer.add_image(rod_colony()[0], name="colony")  # the defaults take the bright halo for the objects
    w = AnnotationWidget(viewer)
    qtbot.addWidget(w)
    w.add_layers()
    panel = w.autolabel
    assert panel.read_again.isChecked() and panel.read_again.isEnabled()
    panel.run()
    qtbot.waitUntil(lambda: not panel.busy and panel.pending is not None, timeout=30000)
    assert panel.pending[-1].reading.halo and "read again as dark objects in bright halos" in panel.status.text()
    assert "Warning" not in panel.status.text()
    panel.discard()
    panel.read_again.setChecked(False)                  # the first reading, with its warning
    assert panel.config().second_reading == "off"
    panel.run()
    qtbot.waitUntil(lambda: not panel.busy and panel.pending is not None, timeout=30000)
    assert not panel.pending[-1].reading.halo and "Warning:" in panel.status.text()
    panel.polarity.setCurrentText("dark")               # what the user sets is kept: no second reading offered
    assert not panel.read_again.isEnabled()
    panel.polarity.setCurrentText("auto")
    assert panel.read_again.isEnabled()
    again = AnnotationWidget(viewer).autolabel           # the next session's panel remembers the choice
    qtbot.addWidget(again.parentWidget() or again)
    assert not again.read_again.isChecked() and again.config().second_reading == "off"


def test_the_machine_labels_settings_are_remembered_for_the_next_session(viewer, qtbot):
    _viewer_with_image(viewer)
    first = AnnotationWidget(viewer)
    qtbot.addWidget(first)
    panel = first.autolabel
    panel.size.setValue(24.0)
    panel.threshold.setCurrentText("fixed")
    panel.value.setValue(0.25)
    panel.polarity.setCurrentText("dark")
    panel.point_per.setCurrentText("piece of the mask")
    panel.touching_pair.setCurrentText("one point")
    panel.mask_source.setCurrentText(MODEL_MASK)            # the session's model: not remembered
    again = AnnotationWidget(viewer).autolabel               # the next session's panel
    qtbot.addWidget(again.parentWidget() or again)
    got = again.config()
    assert (got.object_size, got.threshold, got.threshold_value, got.polarity, got.tiling, got.split_pairs) == \
        (24.0, "fixed", 0.25, "dark", "on", "off")
    assert again.mask_source.currentText() != MODEL_MASK
    remembered.save("autolabel", {"threshold": "a removed method", "size": "big", "polarity": "dark"})
    odd = AnnotationWidget(viewer).autolabel                 # what no longer fits keeps its default
    qtbot.addWidget(odd.parentWidget() or odd)
    assert odd.threshold.currentText() == "auto" and odd.size.value() == 0.0 and odd.polarity.currentText() == "dark"
