"""The plateau suite: one run to the largest milestone, scored at each; its key, its report."""

from __future__ import annotations

import pytest
from benchmark_support import config_in

from benchmarks.harness.data import synthetic_dataset
from benchmarks.harness.methods import Mode
from benchmarks.report import plateau as plateau_report
from benchmarks.suites import plateau


@pytest.fixture(scope="module")
def tiny_run():
    ds = synthetic_dataset(0, n_train=4, n_test=1, pseudo=False, name="synthetic")
    mode = Mode("tiny", steps=4, batch_size=2, patch_size=32, rounds=2, datasets=("synthetic",), ratios=(0.5,))
    return plateau.run_ours("full", ds, 1.0, mode, lambda msg: None, 0, (2, 4))


def test_one_run_is_scored_at_each_milestone(tiny_run):
    rec = tiny_run
    assert rec["key"] == "synthetic/full/1/s0/default/4x2x32r2/m2-4" and rec["milestones"] == [2, 4]
    assert [p["steps"] for p in rec["points"]] == [2, 4] and rec["steps"] == 4
    first, last = rec["points"]
    assert 0 < first["train_s"] <= last["train_s"] <= rec["train_s"]
    for p in rec["points"]:
        assert 0 <= p["ap50"] <= 1 and 0 <= p["ap_sweep"] <= p["ap50"] + 1e-9 and 0 <= p["dice"] <= 1
    assert "cosine over the largest milestone" in rec["schedule"]


def test_the_plateau_report_has_a_row_per_milestone_and_a_figure(tiny_run, tmp_path):
    config = config_in(tmp_path)
    plateau_report.report([tiny_run], "full", "python benchmarks/accuracy.py --milestones 2 4",
                          config.docs_file, config.img_dir)
    text = config.docs_file.read_text()
    assert "<!-- plateau-full:begin -->" in text and "not a shorter run" in text
    assert text.count("| full supervision | 4/4 | 0 | cpu |") == 2
    assert (config.img_dir / "plateau_full.png").stat().st_size > 1000
