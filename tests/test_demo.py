"""The demo pipeline end to end, on a tiny budget (the real demo trains for minutes)."""

import json

import pytest

from napari_lazylabels.recipes import demo
from napari_lazylabels.errors import OutputExistsError
from napari_lazylabels.io.ome_zarr import read_project


def test_demo_writes_everything_and_scores(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_TRAIN_IMAGES", 4)
    monkeypatch.setattr(demo, "DEMO_TEST_IMAGES", 2)
    monkeypatch.setattr(demo, "DEMO_SHAPE", (64, 64))
    out = tmp_path / "demo"
    report = demo.run_demo(out, steps=3, device="cpu", quiet=True, network="tiny")
    assert 0.0 <= report.dice <= 1.0 and 0.0 <= report.ap50 <= 1.0
    assert report.strong_images == 1 and len(report.per_image) == 2
    for name in ("overlay.png", "loss.png", "metrics.json", "model/config.json"):
        assert (out / name).is_file()
    stores = read_project(out / "project")
    assert len(stores) == 6
    test_store = stores[-1]
    assert {"instances", "semantic", "ground_truth"} <= set(test_store.labels)
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3
    assert "Dice" in report.text() and "AP50" in report.text()
    assert not (tmp_path / "demo.partial").exists()
    with pytest.raises(OutputExistsError):
        demo.run_demo(out, steps=1, device="cpu", quiet=True)
