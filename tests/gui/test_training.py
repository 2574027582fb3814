"""The Train & predict widget: train a tiny model in the background, watch, stop, resume, save, predict."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from napari_lazylabels.plugin.sample_data import REAL_NAME, SYNTHETIC_NAME
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.regimes.words import head_words, input_words
from napari_lazylabels.engine.tasks import FOREGROUND
from napari_lazylabels.plugin.layers import label_layer_name, prediction_layer_name, probability_layer_name
from napari_lazylabels.plugin.widgets import TrainWidget
from napari_lazylabels.plugin.widgets.training_widget import TrainingTimings

pytestmark = pytest.mark.gui


def _training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lazylabels-training" and t.is_alive()]


def _wait_finished(w, qtbot, timeout=60000):
    qtbot.waitUntil(lambda: not w.running, timeout=timeout)


def test_train_stream_stop_resume_save_load_predict(synthetic_viewer, qtbot, tmp_path, monkeypatch,
                                                    tiny_settings, layer_arrays):
    viewer = synthetic_viewer
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    w.observer = timings = TrainingTimings()
    w.checkpoint_root = str(tmp_path / "ckpt")
    assert w.selected_image_names() == [SYNTHETIC_NAME]
    painted = {n: a for n, a in layer_arrays(viewer).items() if n != SYNTHETIC_NAME}
    tiny_settings(w, steps=400)
    viewer.dims.set_current_step(0, 2)                 # preview on plane 2 of the stack
    w.train_button.click()
    assert w.running and not w.train_button.isEnabled() and w.stop_button.isEnabled()
    # the prediction layers appear while training runs
    inst_name = prediction_layer_name(SYNTHETIC_NAME, "instances")
    prob_name = probability_layer_name(SYNTHETIC_NAME, registry.regime_with_role(FOREGROUND).task_names[0], main=True)
    qtbot.waitUntil(lambda: inst_name in viewer.layers, timeout=30000)         # at once, empty
    qtbot.waitUntil(lambda: w.previews >= 1, timeout=30000)                   # then the first prediction
    assert w.running and timings.first_preview_s is not None and timings.preview_gui_ms
    assert w.device_label.text().startswith("device: cpu")
    qtbot.waitUntil(lambda: prob_name in viewer.layers, timeout=5000)     # added one per tick
    prob = viewer.layers[prob_name]
    assert prob.data.shape == viewer.layers[SYNTHETIC_NAME].data.shape
    assert prob.data[2].max() > 0 and not prob.data[0].any()      # only the previewed plane is filled
    # the user keeps the same active layer while layers are added
    assert viewer.layers.selection.active is not viewer.layers[inst_name]
    qtbot.waitUntil(lambda: w.progress.value() >= 3, timeout=30000)
    w.stop_button.click()
    _wait_finished(w, qtbot)
    stopped_at = w.last_finished.step
    assert w.last_finished.stopped and 3 <= stopped_at < 400 and w.last_finished.error is None
    assert Path(w.checkpoint, "model.safetensors").is_file()
    assert w.resume_button.isEnabled()
    assert not _training_threads()
    # Resume continues from the checkpoint up to Steps (lowered so the test is short)
    w.form.steps.value = stopped_at + 3
    w.resume_button.click()
    _wait_finished(w, qtbot)
    assert w.last_finished.step == stopped_at + 3 and not w.last_finished.stopped
    assert w.loss_plot.curves()["total"][0].max() == stopped_at + 3   # one curve, continued
    # the user's lazy labels were not touched by training
    for name, before in painted.items():
        assert np.array_equal(viewer.layers[name].data, before)
    # Save the model (the dialog answers a path) and load it back
    target = tmp_path / "my_model"
    monkeypatch.setattr("napari_lazylabels.plugin.widgets.model_panel.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(target), ""))
    w.model_panel.save_button.click()
    assert (target / "config.json").is_file()
    monkeypatch.setattr("napari_lazylabels.plugin.widgets.model_panel.QFileDialog.getExistingDirectory",
                        lambda *a, **k: str(target))
    w.model_panel.load_button.menu().actions()[0].trigger()        # Load model > a model folder...
    assert w.model_panel.model_dir == str(target)
    # Predict on another image layer with the loaded model
    viewer.open_sample("napari-lazylabels", "hela")
    w.model_panel.image_combo.setCurrentText(REAL_NAME)
    w.model_panel.predict_button.click()
    qtbot.waitUntil(lambda: prediction_layer_name(REAL_NAME, "instances") in viewer.layers, timeout=30000)
    cells = viewer.layers[prediction_layer_name(REAL_NAME, "instances")]
    assert cells.data.shape == viewer.layers[REAL_NAME].data.shape
    assert prediction_layer_name(REAL_NAME, "semantic") not in viewer.layers      # shown with every head only
    w.model_panel.every_head.setChecked(True)
    assert viewer.layers[prediction_layer_name(REAL_NAME, "semantic")].data.shape == cells.data.shape


def test_training_error_is_a_notification_and_leaves_layers(synthetic_viewer, qtbot, tmp_path, errors,
                                                            tiny_settings, layer_arrays):
    viewer = synthetic_viewer
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    w.checkpoint_root = str(tmp_path)
    tiny_settings(w)
    key = registry.input_keys()[0]
    blobs = viewer.layers[label_layer_name(SYNTHETIC_NAME, key)]
    blobs.data[3, 10, 10] = 7                      # class 7 of 1: the engine refuses it
    before = layer_arrays(viewer)
    n_layers = len(viewer.layers)
    w.train_button.click()
    _wait_finished(w, qtbot)
    assert any(f"{input_words(key)} contain value 7" in e for e in errors())     # "blobs", not an id
    assert len(viewer.layers) == n_layers
    for name, data in before.items():
        assert np.array_equal(viewer.layers[name].data, data)
    assert w.train_button.isEnabled() and not _training_threads()


def test_error_inside_the_worker_removes_what_it_added(synthetic_viewer, qtbot, tmp_path, monkeypatch,
                                                       errors, tiny_settings, layer_arrays):
    viewer = synthetic_viewer
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    w.checkpoint_root = str(tmp_path)
    tiny_settings(w)
    before = layer_arrays(viewer)

    def explode(self):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr("napari_lazylabels.engine.training.trainer.Trainer._train_step", explode)
    w.train_button.click()
    _wait_finished(w, qtbot)
    assert any("out of memory (simulated)" in e for e in errors())
    assert set(layer.name for layer in viewer.layers) == set(before)     # placeholders removed again
    for name, data in before.items():
        assert np.array_equal(viewer.layers[name].data, data)
    assert "error" in w.status.text() and not _training_threads()


def test_nothing_painted_is_refused_up_front(real_viewer, qtbot, errors):
    w = TrainWidget(real_viewer)
    qtbot.addWidget(w)
    w.train_button.click()
    assert not w.running
    assert any("nothing painted yet: paint blobs" in e for e in errors())


def test_closing_the_viewer_stops_training(make_napari_viewer, qtbot, tmp_path, tiny_settings):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-lazylabels", "synthetic")
    w = TrainWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.checkpoint_root = str(tmp_path)
    tiny_settings(w, steps=100000)
    w.train_button.click()
    qtbot.waitUntil(lambda: w.progress.value() >= 1, timeout=30000)
    job = w.job
    assert _training_threads()
    viewer.close()
    assert not job.is_alive() and not _training_threads()


def test_an_opt_in_regime_trains_from_the_widget(synthetic_viewer, qtbot, tmp_path, tiny_settings):
    """The recursive approximation is a tick box of the form, with its options; the model gets its
    task, its rounds and its post-processing, as from the CLI."""
    from napari_lazylabels.io.modelio import load_artifacts
    viewer = synthetic_viewer
    w = TrainWidget(viewer)
    qtbot.addWidget(w)
    w.checkpoint_root = str(tmp_path)
    tiny_settings(w, steps=4)
    (regime,) = registry.opt_in_regimes()
    box, options = w.form.opt_in[regime.name], w.form.options[regime.name]
    assert not box.value and all(o.native.isHidden() for o in options.values())
    box.value = True
    assert not any(o.native.isHidden() for o in options.values())
    options["rounds"].value = 1
    options["steps_per_round"].value = 2
    w.train_button.click()
    _wait_finished(w, qtbot)
    assert w.last_finished.error is None, w.last_finished.error
    model = w.model_panel.model()
    (extra,) = regime.task_names
    assert extra in model.task_names and model.postprocess == regime.postprocessing(
        regime.options(rounds=1, steps_per_round=2))
    assert model.provenance[regime.name]["rounds_done"] == 1
    assert len([k for k in load_artifacts(w.checkpoint) if k.endswith(".npz")]) == 2


def test_rarely_changed_settings_are_folded_away(qtbot):
    from napari_lazylabels.engine.regimes import registry
    from napari_lazylabels.plugin.widgets.training_form import TrainSettingsForm

    form = TrainSettingsForm()
    qtbot.addWidget(form.native)
    form.native.show()
    assert {"Task weights", "Post-processing (saved with the model)"} <= set(form.sections)
    assert all(not section.isExpanded() for section, _ in form.sections.values())
    _, weights = form.sections["Task weights"]
    assert [w.label for w in weights] == [head_words(t) for t in registry.task_names()]   # in plain words
    folded = form.native.sizeHint().height()
    for section, _ in form.sections.values():
        section.expand(animate=False)
    qtbot.waitUntil(lambda: form.native.sizeHint().height() > folded + 100, timeout=2000)
    form.weights[registry.task_names()[0]].value = 0.0    # folded or not, the values are read
    assert form.settings().weights[registry.task_names()[0]] == 0.0


def test_the_loss_axis_labels_fit_left_of_the_frame(qtbot):
    from qtpy.QtGui import QFont, QFontMetrics

    from napari_lazylabels.plugin.widgets.loss_plot import LossPlot, axis_label_width

    metrics = QFontMetrics(QFont())
    assert axis_label_width(metrics, ["0.0076", "2.9"]) >= metrics.horizontalAdvance("0.0076")
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(300, 120)
    plot.set_history({"total": list(np.geomspace(2.9, 0.0076, 50))})
    image = plot.grab().toImage()            # paints without error, curves and labels drawn
    assert not image.isNull() and image.width() == 300
