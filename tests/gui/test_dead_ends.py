"""The dead ends a new user met (issue 24): each fails without its fix."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from qtpy.QtCore import Qt

from napari_lazylabels.engine.config import NetworkConfig
from napari_lazylabels.engine.model import build_model
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.trained_model import LazyLabelsModel
from napari_lazylabels.io.modelio import save_model
from napari_lazylabels.plugin.sample_data import REAL_NAME, SYNTHETIC_NAME
from napari_lazylabels.plugin.widgets import AnnotationWidget, TrainWidget


def _scribble_model() -> LazyLabelsModel:
    """An untrained model with the fg/bg scribbles head: 2 classes x several mixture components."""
    torch.manual_seed(0)
    task = registry.task_template("scribbles")
    assert task.components > 1
    net = build_model(NetworkConfig(depth=2, base_channels=4, multitask_levels=1), [task]).eval()
    return LazyLabelsModel(net, [task], ["cell"])


def test_a_scribble_model_exports_to_bioimageio(tmp_path):
    pytest.importorskip("bioimageio.spec")
    from napari_lazylabels.io.bioimageio import export_bioimageio
    out = export_bioimageio(_scribble_model(), tmp_path / "strokes.zip", name="strokes model",
                            authors=["Ada Lovelace"], tags=["phase-contrast-microscopy"])
    import yaml
    with zipfile.ZipFile(out) as zf:
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
    (output,) = rdf["outputs"]
    assert len(output["axes"][1]["channel_names"]) == 2          # the classes, not classes x components
    assert [a["name"] for a in rdf["authors"]] == ["Ada Lovelace"]
    assert "phase-contrast-microscopy" in rdf["tags"] and "fluorescence-light-microscopy" not in rdf["tags"]


@pytest.mark.parametrize("package", [False, True])
def test_resume_is_offered_after_load_model_folder_or_zip(viewer, qtbot, tmp_path, package):
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    assert not w.resume_button.isEnabled()
    model = _scribble_model()
    if package:
        pytest.importorskip("bioimageio.spec")
        from napari_lazylabels.io.bioimageio import export_bioimageio
        path = export_bioimageio(model, tmp_path / "m.zip", name="tiny model")
    else:
        path = save_model(model, tmp_path / "m")
    assert w.model_panel.load_model(str(path)) is not None
    assert w.resume_button.isEnabled() and w.model_panel.models.count() == 1
    actions = [a.text() for a in w.model_panel.load_button.menu().actions()]
    assert any(".zip" in a for a in actions)


def test_label_layers_follow_the_ticked_image(synthetic_viewer, qtbot):
    viewer = synthetic_viewer
    viewer.open_sample("napari-lazylabels", "hela")
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    w.set_selected_images([SYNTHETIC_NAME])
    row = [w.image_list.item(i).text() for i in range(w.image_list.count())].index(REAL_NAME)
    w.image_list.setCurrentRow(row)                      # highlighted, not ticked
    assert w.label_picker.image_name == SYNTHETIC_NAME
    assert SYNTHETIC_NAME in w.label_picker.title()
    w.image_list.item(row).setCheckState(Qt.CheckState.Checked)     # ticked too: now it is shown
    assert w.label_picker.image_name == REAL_NAME


def test_a_failed_start_replaces_the_last_status(real_viewer, qtbot, errors):
    w = TrainWidget(real_viewer)
    qtbot.addWidget(w)
    w.status.setText("done: 10 steps")                   # what the last run left
    w.train_button.click()                               # nothing painted: refused
    assert errors() and "done" not in w.status.text() and w.status.text().startswith("not started")


def test_the_summary_table_keeps_its_rows(synthetic_viewer, qtbot):
    w = AnnotationWidget(synthetic_viewer)
    qtbot.addWidget(w)
    w.resize(330, 300)
    w.show()
    w.refresh_summary()
    qtbot.wait(50)
    assert w.table.rowCount() > 1
    rows = w.table.verticalHeader().defaultSectionSize()
    assert w.table.height() >= 4 * rows and not w.table.horizontalScrollBar().isVisible()


def test_each_train_keeps_its_own_model(synthetic_viewer, qtbot, tmp_path, tiny_settings):
    w = TrainWidget(synthetic_viewer)
    qtbot.addWidget(w)
    w.checkpoint_root = str(tmp_path)
    tiny_settings(w, steps=2)
    dirs = []
    for _ in range(2):
        w.train_button.click()
        qtbot.waitUntil(lambda: not w.running, timeout=60000)
        assert w.last_finished.error is None, w.last_finished.error
        dirs.append(w.model_panel.model_dir)
    assert dirs[0] != dirs[1] and all(Path(d, "model.safetensors").is_file() for d in dirs)
    assert w.model_panel.models.count() == 2
    w.model_panel.models.setCurrentIndex(0)              # the first model is still there and predicts
    assert w.model_panel.model_dir == dirs[0] and w.resume_button.isEnabled()
    assert "blobs" in w.model_panel.models.itemText(0) or SYNTHETIC_NAME.split()[0] in w.model_panel.models.itemText(0)


def test_the_status_names_what_was_painted(synthetic_viewer, qtbot, tmp_path, tiny_settings):
    w = TrainWidget(synthetic_viewer)
    qtbot.addWidget(w)
    w.checkpoint_root = str(tmp_path)
    tiny_settings(w, steps=1)
    w.train_button.click()
    text = w.status.text()
    qtbot.waitUntil(lambda: not w.running, timeout=60000)
    assert "blobs" in text and "interfaces" in text
    for task_id in ("detection", "separation", "segmentation", "cell_boundaries", "locations"):
        assert task_id not in text


def test_the_settings_come_back_in_the_next_session(qtbot):
    from napari_lazylabels.plugin.widgets.training_form import TrainSettingsForm
    form = TrainSettingsForm()
    qtbot.addWidget(form.native)
    form.set_values(steps=123, preset_name="tiny")
    again = TrainSettingsForm()
    qtbot.addWidget(again.native)
    assert again.steps.value == 123 and again.preset.value == "tiny"


def test_the_docks_fit_a_laptop_screen(synthetic_viewer, qtbot):
    """Both docks are at most DOCK_WIDTH wide and can be short (they scroll); a folded section that opens and
    closes leaves the dock's size as it was."""
    from napari_lazylabels.plugin.widgets.fit import DOCK_WIDTH
    ann, train = AnnotationWidget(synthetic_viewer), TrainWidget(synthetic_viewer)
    for w in (ann, train):
        qtbot.addWidget(w)
        w.show()
    ann.add_layers()
    qtbot.wait(50)
    for w in (ann, train):
        hint = w.minimumSizeHint()
        assert hint.width() <= DOCK_WIDTH and hint.height() <= 330, (type(w).__name__, hint)
        assert w.maximumWidth() == DOCK_WIDTH
    before = train.minimumSizeHint()
    for section, _ in train.form.sections.values():
        section.expand(animate=False)
    qtbot.wait(50)
    for section, _ in train.form.sections.values():
        section.collapse(animate=False)
    qtbot.wait(50)
    assert train.minimumSizeHint() == before


def test_no_task_id_in_what_the_docks_show(synthetic_viewer, qtbot):
    from qtpy.QtWidgets import QAbstractButton, QLabel, QTabWidget
    ann, train = AnnotationWidget(synthetic_viewer), TrainWidget(synthetic_viewer)
    for w in (ann, train):
        qtbot.addWidget(w)
    ids = {t for t in registry.task_names() if t not in {"approximation", "cells", "locations", "scribbles"}}  # words too
    shown = []
    for w in (ann, train):
        shown += [c.text() for c in w.findChildren(QLabel) + w.findChildren(QAbstractButton)]
        shown += [t.tabText(i) for t in w.findChildren(QTabWidget) for i in range(t.count())]
    words = {word.strip("():,").lower() for text in shown for word in text.replace("/", " ").split()}
    assert not words & ids, words & ids
