"""The accuracy benchmark's bookkeeping: its queue, resuming a killed sweep, the targets' verdicts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
accuracy = pytest.importorskip("accuracy")


def _record(family, method, ratio, seed, dice, ap50, obj, n_strong=4, n_train=40, variant="default"):
    budget = accuracy.MODES["full"].budget
    return {"key": accuracy.run_key(family, method, ratio, seed, variant, budget), "dataset": family,
            "family": family, "method": method, "ratio": ratio, "seed": seed, "variant": variant,
            "budget": budget, "n_strong": n_strong if method not in ("full", "fullst") else n_train,
            "n_train": n_train, "train_s": 100.0, "total_s": 120.0, "dice": dice, "ap50": ap50,
            "object_dice": obj, "ap_sweep": ap50 / 2, "mdice": obj, "object_hausdorff": 5.0, "n_gt": 50,
            "cost": {"painted_pixels": 1000, "strokes": 10, "objects_traced": 5}, "variants": {}}


def test_the_queue_runs_the_compared_settings_first_and_every_one_once():
    mode = accuracy.MODES["full"]
    todo = accuracy.queue(mode, list(mode.datasets), list(accuracy.METHODS), None, None)
    assert len(todo) == len(set(todo))
    hard = [q for q in todo if q[0] in accuracy.HARD]
    assert todo[:len(hard)] == hard                          # the hard sets before the easy ones
    first = todo[:3]
    assert {q[1] for q in first} == {"mt"} and {q[2] for q in first} == {accuracy.TARGET_RATIO}
    # three seeds at the target ratio and full supervision, every method; one seed elsewhere
    for method in accuracy.METHODS:
        ratio = accuracy.ratio_of(method, accuracy.TARGET_RATIO)
        assert {q[3] for q in todo if q[:3] == ("he", method, ratio)} == {0, 1, 2}
    others = [q for q in todo if q[0] == "he" and q[2] not in (accuracy.TARGET_RATIO, 0.0, 1.0)]
    assert others and {q[3] for q in others} == {0}
    assert {q[2] for q in todo if q[1] == "mt"} == {0.025, 0.05, 0.10}     # 100 %: that is "full"


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path, monkeypatch):
    """Each finished run is one line of the results file; a rerun skips those and a line cut short by
    a kill is ignored (that run is done again)."""
    runs = []
    ds = accuracy.Dataset("he", "he", [], [("t", np.zeros((8, 8)), np.zeros((8, 8), np.int32))], "split", [])

    def fake_run(method, d, ratio, mode, log, seed=0, variant="default", tta=True):
        runs.append((method, ratio, seed))
        rec = _record(d.name, method, ratio, seed, 0.9, 0.8, 0.85)
        rec["_predictions"] = [np.zeros((8, 8), np.int32)]
        return rec

    monkeypatch.setattr(accuracy, "run_one", fake_run)
    monkeypatch.setattr(accuracy, "load", lambda fam, mode, pseudo: ds)
    monkeypatch.setattr(accuracy, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(accuracy, "strong_of", lambda method, d, ratio: {method, ratio})
    args = ["--datasets", "he", "--methods", "mt", "full", "sl", "--seeds", "0", "--ratios", "0.1",
            "--results", str(tmp_path), "--no-docs"]
    assert accuracy.main([*args, "--max-runs", "2"]) == 0
    assert runs == [("mt", 0.1, 0), ("full", 1.0, 0)]
    path = tmp_path / "accuracy_full.jsonl"
    with open(path, "a") as f:
        f.write('{"key": "he/sl/0.1/s0/default/800x8x12')            # killed while writing
    assert accuracy.main(args) == 0
    assert runs[2:] == [("sl", 0.1, 0)]
    keys = [r["key"] for r in accuracy.read_results(path)]
    assert len(keys) == 3 == len(set(keys))
    assert accuracy.main(args) == 0 and len(runs) == 3         # nothing left to do
    assert (tmp_path / "accuracy_full.csv").read_text().count("\n") == 4


def test_targets_are_judged_with_the_seed_spread():
    recs = []
    for seed, (d_mt, a_mt) in enumerate([(0.90, 0.80), (0.91, 0.82), (0.89, 0.78)]):
        recs += [_record("he", "mt", 0.1, seed, d_mt, a_mt, 0.80),
                 _record("he", "full", 1.0, seed, 0.92, 0.82, 0.82),
                 _record("he", "sl", 0.1, seed, 0.85, 0.70 + 0.05 * seed, 0.70),
                 _record("he", "mtr", 0.1, seed, 0.90, 0.80, 0.80)]
    lines = accuracy.targets(recs, ["he"], accuracy.MODES["full"].budget)
    text = "\n".join(lines)
    assert "0.978x the Dice of full supervision" in text and "0.976x the AP50" in text
    dice_line, ap_line = lines[0], lines[1]
    assert "**met**" in dice_line and "**met**" in ap_line
    sl = next(line for line in lines if "SL only" in line)
    # AP50 +0.05 but SL's seeds spread by 0.05: not beyond the spread
    assert "**missed**" in sl and "AP50 +0.050" in sl
    assert "no improvement beyond the spread" in text
    rows = accuracy.rows_of(recs, "he")
    mt = next(r for r in rows if r["method"] == "mt")
    assert mt["n"] == 3 and mt["ap50"] == pytest.approx(0.80) and mt["ap50_sd"] == pytest.approx(0.02)
    table = accuracy.table(rows)
    assert any("0.800 ± 0.020" in row for row in table)
    json.dumps(rows, default=float)


@pytest.mark.slow
def test_one_run_end_to_end_scores_every_metric_and_variant():
    """One run of the benchmark on four synthetic images (two training steps): every metric, the
    test-time flips, the tuned instance settings and the recursive model's watershed seeds are scored,
    the cost is counted."""
    method = "mtr"
    ds = accuracy._synthetic(0, n_train=4, n_test=1, pseudo=False, name="synthetic")
    mode = accuracy.Mode("tiny", steps=2, batch_size=2, patch_size=32, rounds=2, datasets=("synthetic",),
                         ratios=(0.5,))
    rec = accuracy.run_one(method, ds, 0.5, mode, log=lambda msg: None)
    for k in ("dice", "object_dice", "ap50", "ap_sweep", "mdice", "object_hausdorff"):
        assert k in rec
    assert 0 <= rec["dice"] <= 1 and len(rec["ap"]) >= 9 and rec["n_gt"] > 0
    assert rec["n_strong"] == 2 and rec["cost"]["objects_traced"] > 0
    assert "flips" in rec["variants"]
    assert "tuned" in rec["variants"] and "watershed_seeds" in rec["variants"]
    assert len(rec["approximation_dice"]) >= 2
    assert rec["_predictions"][0].shape == ds.test[0][2].shape
    json.dumps({k: v for k, v in rec.items() if k != "_predictions"}, default=float)


def test_the_report_writes_the_block_and_the_figures(tmp_path, monkeypatch):
    recs = []
    for seed in (0, 1):
        recs += [_record("he", "mt", 0.1, seed, 0.90, 0.80, 0.80), _record("he", "full", 1.0, seed, 0.92, 0.82, 0.82),
                 _record("he", "sl", 0.1, seed, 0.85, 0.70, 0.70), _record("he", "wl", 0.0, seed, 0.6, 0.3, 0.4)]
    recs.append({**_record("he", "mtr", 0.1, 0, 0.9, 0.81, 0.8), "approximation_dice": [0.4, 0.6, 0.7]})
    recs.append({**_record("he", "mt", 0.1, 0, 0.91, 0.83, 0.8, variant="aug")})
    recs[0]["variants"] = {"flips": {k: recs[0][k] + 0.01 for k in accuracy.METRICS}}
    docs = tmp_path / "docs" / "benchmarks.md"
    docs.parent.mkdir()
    docs.write_text("# Benchmarks\n\nkept\n\n<!-- accuracy-full:begin -->\nold\n<!-- accuracy-full:end -->\n\ntail\n")
    monkeypatch.setattr(accuracy, "ROOT", tmp_path)
    monkeypatch.setattr(accuracy, "DOCS_FILE", docs)
    accuracy.report(recs, accuracy.MODES["full"], "python benchmarks/accuracy.py")
    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nkept") and text.rstrip().endswith("tail") and "\nold\n" not in text
    assert "### Targets" in text and "### he" in text and "With test-time flips" in text
    assert "| he | multi-task 10 % |" in text and "| aug |" in text          # the method change
    for name in ("vs_ratio", "vs_effort", "rounds"):
        assert (tmp_path / "docs" / "img" / f"accuracy_full_{name}.png").stat().st_size > 1000


def test_a_setting_two_workers_both_ran_counts_once(tmp_path):
    path = tmp_path / "accuracy_full.jsonl"
    first, again = _record("he", "mt", 0.1, 0, 0.9, 0.8, 0.8), _record("he", "mt", 0.1, 0, 0.5, 0.4, 0.4)
    for rec in (first, again, _record("he", "mt", 0.1, 1, 0.9, 0.8, 0.8)):
        accuracy.append_record(path, rec)
    recs = accuracy.read_results(path)
    assert [r["seed"] for r in recs] == [0, 1] and recs[0]["dice"] == 0.9
