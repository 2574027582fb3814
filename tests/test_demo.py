"""The demo pipeline end to end, on a tiny budget (the real demo trains for minutes).

A few steps of a tiny network cannot promise a good score, so the test checks
that the score the demo reports is the score of what it wrote: the metrics
recomputed from the project's test stores, and the predictions of the saved
model reloaded from disk.
"""

import json

import numpy as np
import pytest

from napari_lazylabels.cli import demo
from napari_lazylabels.engine.metrics import aggregate, summarize
from napari_lazylabels.engine.pipeline import segment
from napari_lazylabels.errors import OutputExistsError
from napari_lazylabels.io.modelio import load_model
from napari_lazylabels.io.project import read_project


def test_demo_reports_the_score_of_what_it_wrote(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_TRAIN_IMAGES", 4)
    monkeypatch.setattr(demo, "DEMO_TEST_IMAGES", 2)
    monkeypatch.setattr(demo, "DEMO_SHAPE", (64, 64))
    out = tmp_path / "demo"
    report = demo.run_demo(out, steps=3, device="cpu", quiet=True, network="tiny")
    assert report.strong_images == 1 and len(report.per_image) == 2
    for name in ("overlay.png", "loss.png", "metrics.json", "model/config.json"):
        assert (out / name).is_file()
    stores = read_project(out / "project")
    assert len(stores) == 6
    tests = [s for s in stores if s.metadata.get("split") == "test"]
    assert len(tests) == 2
    summaries = [summarize(s.labels["instances"], s.labels["ground_truth"]) for s in tests]
    again = aggregate(summaries)
    assert report.dice == pytest.approx(float(again["dice"]), abs=1e-9)
    assert report.ap50 == pytest.approx(float(again["ap50"]), abs=1e-9)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["dice"] == pytest.approx(report.dice)
    model = load_model(out / "model")
    for s in tests:
        assert np.array_equal(segment(model, s.image).instances, s.labels["instances"])
    assert "Dice" in report.text() and "AP50" in report.text()
    assert not (tmp_path / "demo.partial").exists()
    with pytest.raises(OutputExistsError):
        demo.run_demo(out, steps=1, device="cpu", quiet=True)
