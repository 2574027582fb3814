"""Train in napari fits the instance settings to the painted exact masks when the panel's are the
defaults, shows the fitted ones in the panel (so Predict uses them), and keeps settings the user set."""

from __future__ import annotations

from napari_lazylabels.engine.postprocess.settings import InstanceParams
from napari_lazylabels.plugin.widgets import TrainWidget
from napari_lazylabels.plugin.widgets.session_models import fitted_words, own_instances


def _train(w, qtbot):
    w.train_button.click()
    qtbot.waitUntil(lambda: not w.running, timeout=120000)
    assert w.last_finished.error is None, w.last_finished.error
    return w.model_panel.model()


def test_defaults_are_fitted_and_shown_set_values_are_kept(synthetic_viewer, qtbot, tmp_path, tiny_settings):
    w = TrainWidget(synthetic_viewer)
    qtbot.addWidget(w)
    w.checkpoint_root = str(tmp_path)
    tiny_settings(w, steps=3)
    model = _train(w, qtbot)
    assert "instance_fit" in model.provenance          # the sample has exact masks on some images
    assert w.form.postprocess().instances == model.postprocess.instances
    if model.provenance["instance_fit"]["changed"]:
        assert "fitted to your exact masks" in w.status.text()

    w.form.set_postprocess(w.form.postprocess())         # the user sets a value of their own
    w.form.instances["min_size"].value = 57
    model = _train(w, qtbot)
    assert "instance_fit" not in model.provenance and model.postprocess.instances.min_size == 57


def test_only_the_defaults_are_left_to_the_fit():
    assert own_instances(InstanceParams()) is None and own_instances(None) is None
    mine = InstanceParams(min_size=80)
    assert own_instances(mine) is mine
    assert fitted_words({"changed": {"min_size": [30, 400]}}) == \
        "instance settings fitted to your exact masks: min size 30 -> 400"
    assert fitted_words({"changed": {}}) == "" and fitted_words(None) == ""
    assert fitted_words({"changed": {"interface_threshold": [0.5, 0.9]}, "target": "points"}) == \
        "instance settings fitted to your points: interface threshold 0.5 -> 0.9"
