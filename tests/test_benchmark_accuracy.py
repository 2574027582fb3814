"""The accuracy benchmark's bookkeeping: its queue, resuming a killed sweep, the targets' verdicts, the
report (ours and the peer's rows), all with the places of a run passed in (nothing patched)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from benchmark_support import config_in, record

from benchmarks.harness import methods
from benchmarks.harness.data import HARD, Dataset, synthetic_dataset
from benchmarks.harness.methods import MODES, Mode, ratio_of
from benchmarks.harness.queue import queue
from benchmarks.harness.results import append_record, read_results, write_csv
from benchmarks.report import lazy_block, tables
from benchmarks.suites import lazy, ours


def test_the_queue_runs_the_compared_settings_first_and_every_one_once():
    mode = MODES["full"]
    todo = queue(mode, list(mode.datasets), list(methods.DEFAULT_METHODS), None, None)
    assert len(todo) == len(set(todo))
    hard = [q for q in todo if q[0] in HARD]
    assert todo[:len(hard)] == hard                          # the hard sets before the easy ones
    first = todo[:3]
    assert {q[1] for q in first} == {"mt"} and {q[2] for q in first} == {methods.TARGET_RATIO}
    # three seeds at the target ratio and full supervision, every method; one seed elsewhere
    for method in methods.DEFAULT_METHODS:
        ratio = ratio_of(method, methods.TARGET_RATIO)
        assert {q[3] for q in todo if q[:3] == ("he", method, ratio)} == {0, 1, 2}
    others = [q for q in todo if q[0] == "he" and q[2] not in (methods.TARGET_RATIO, 0.0, 1.0)]
    assert others and {q[3] for q in others} == {0}
    assert {q[2] for q in todo if q[1] == "mt"} == {0.025, 0.05, 0.10}     # 100 %: that is "full"
    assert not any(q[1] in methods.PEER_METHODS for q in todo)             # the peers run on request


def test_the_peers_queue_after_full_at_its_ratios():
    mode = MODES["full"]
    todo = queue(mode, ["he"], ["cp10", "cp", "full", "mt"], [0], None)
    order = [q[1] for q in todo if q[2] in (0.1, 1.0)]
    assert order.index("full") < order.index("cp")                # cp's time budget is full's
    assert ("he", "cp", 1.0, 0) in todo and ("he", "cp10", 0.1, 0) in todo
    assert {q[2] for q in todo if q[1] == "cp10"} == {0.025, 0.05, 0.1}   # at 100 % cp10 is cp
    assert [q[2] for q in todo if q[1] == "cp"] == [1.0]
    assert methods.run_key("he", "cp10", 0.1, 0, "steps100", mode.budget) == "he/cp10/0.1/s0/steps100/800x8x128r10"


def _fake_runner(runs: list):
    def run(method, ds, ratio, seed, variant):
        runs.append((method, ratio, seed))
        rec = record(ds.name, method, ratio, seed, 0.9, 0.8, 0.85, variant=variant)
        rec["_predictions"] = [np.zeros((8, 8), np.int32)]
        return rec
    return run


def test_a_killed_sweep_resumes_where_it_stopped(tmp_path):
    """Each finished run is one line of the results file; a rerun skips those and a line cut short by
    a kill is ignored (that run is done again)."""
    config = config_in(tmp_path)
    runs: list = []
    ds = Dataset("he", "he", [], [("t", np.zeros((8, 8)), np.zeros((8, 8), np.int32))], "split", [])
    mode = MODES["full"]
    path = config.results / "accuracy_full.jsonl"
    todo = queue(mode, ["he"], ["mt", "full", "sl"], [0], [0.1])

    def sweep(**kw):
        return lazy.run_queue(todo, mode, path, config, lambda fam: ds, _fake_runner(runs), lambda msg: None,
                              after_each=lambda recs: write_csv(path.with_suffix(".csv"), recs), **kw)

    assert sweep(max_runs=2) == 2
    assert runs == [("mt", 0.1, 0), ("full", 1.0, 0)]
    with open(path, "a") as f:
        f.write('{"key": "he/sl/0.1/s0/default/800x8x12')            # killed while writing
    assert sweep() == 1 and runs[2:] == [("sl", 0.1, 0)]
    keys = [r["key"] for r in read_results(path)]
    assert len(keys) == 3 == len(set(keys))
    assert sweep() == 0 and len(runs) == 3                            # nothing left to do
    assert path.with_suffix(".csv").read_text().count("\n") == 4
    assert all(r["commit"] == "" and r["machine"] for r in read_results(path))   # tmp_path is no checkout
    assert len(list((config.cache / "predictions" / "full").glob("*.npz"))) == 3


def test_the_peer_takes_the_training_time_of_full_from_the_results(tmp_path):
    from benchmarks.suites import peer
    ds = Dataset("he", "he", [], [], "split", [])
    mode = MODES["full"]
    path = tmp_path / "accuracy_full.jsonl"
    with pytest.raises(SystemExit, match="run --methods full first"):
        peer.time_of_full(ds, 0, mode, [path])
    append_record(path, {**record("he", "full", 1.0, 0, 0.9, 0.8, 0.8), "train_s": 321.5, "device": "cpu"})
    budget, source = peer.time_of_full(ds, 0, mode, [path])
    assert budget.seconds == 321.5 and source == "he/full/1/s0/default/800x8x128r10"
    with pytest.raises(SystemExit, match="same device"):
        peer.time_of_full(ds, 0, Mode(**{**mode.__dict__, "device": "cuda"}), [path])
    assert peer.given_budget(None, 100, None)[1] == "steps100"
    assert peer.given_budget(None, None, None) == (None, "default")


def test_targets_are_judged_with_the_seed_spread():
    recs = []
    for seed, (d_mt, a_mt) in enumerate([(0.90, 0.80), (0.91, 0.82), (0.89, 0.78)]):
        recs += [record("he", "mt", 0.1, seed, d_mt, a_mt, 0.80),
                 record("he", "full", 1.0, seed, 0.92, 0.82, 0.82),
                 record("he", "sl", 0.1, seed, 0.85, 0.70 + 0.05 * seed, 0.70),
                 record("he", "mtr", 0.1, seed, 0.90, 0.80, 0.80)]
    lines = tables.targets(recs, ["he"], MODES["full"].budget)
    text = "\n".join(lines)
    assert "0.978x the Dice of full supervision" in text and "0.976x the AP50" in text
    dice_line, ap_line = lines[0], lines[1]
    assert "**met**" in dice_line and "**met**" in ap_line
    sl = next(line for line in lines if "SL only" in line)
    # AP50 +0.05 but SL's seeds spread by 0.05: not beyond the spread
    assert "**missed**" in sl and "AP50 +0.050" in sl
    assert "no improvement beyond the spread" in text
    rows = tables.rows_of(recs, "he")
    mt = next(r for r in rows if r["method"] == "mt")
    assert mt["n"] == 3 and mt["ap50"] == pytest.approx(0.80) and mt["ap50_sd"] == pytest.approx(0.02)
    assert any("0.800 ± 0.020" in row for row in tables.table(rows))
    json.dumps(rows, default=float)
    assert tables.peer_targets(recs, ["he"]) == []                    # no peer ran


def test_the_peer_targets_compare_multitask_with_both_peers():
    recs = []
    for seed in (0, 1):
        recs += [record("he", "mt", 0.1, seed, 0.9, 0.80 + 0.01 * seed, 0.8),
                 record("he", "cp", 1.0, seed, 0.9, 0.75, 0.8, steps=40, epochs=4),
                 record("he", "cp10", 0.1, seed, 0.9, 0.72, 0.8, steps=8, epochs=8)]
    lines = tables.peer_targets(recs, ["he"])
    assert "every exact mask" in lines[0] and "**met**" in lines[0]
    assert "AP50 +0.085" in lines[1] and "**missed**" in lines[1]      # not +0.10


def test_the_report_writes_the_block_and_the_figures_with_the_peer_rows(tmp_path):
    config = config_in(tmp_path)
    recs = []
    for seed in (0, 1):
        recs += [record("he", "mt", 0.1, seed, 0.90, 0.80, 0.80), record("he", "full", 1.0, seed, 0.92, 0.82, 0.82),
                 record("he", "sl", 0.1, seed, 0.85, 0.70, 0.70), record("he", "wl", 0.0, seed, 0.6, 0.3, 0.4),
                 record("he", "cp", 1.0, seed, 0.88, 0.6, 0.7, steps=30, epochs=2)]
    recs.append(record("he", "cp10", 0.1, 0, 0.8, 0.4, 0.6, steps=12, epochs=12))
    recs.append({**record("he", "mtr", 0.1, 0, 0.9, 0.81, 0.8), "approximation_dice": [0.4, 0.6, 0.7]})
    recs.append({**record("he", "mt", 0.1, 0, 0.91, 0.83, 0.8, variant="aug")})
    recs[0]["variants"] = {"flips": {k: recs[0][k] + 0.01 for k in tables.METRICS}}
    docs = config.docs_file
    docs.parent.mkdir()
    docs.write_text("# Benchmarks\n\nkept\n\n<!-- accuracy-full:begin -->\nold\n<!-- accuracy-full:end -->\n\ntail\n")
    lazy_block.report(recs, MODES["full"], "python benchmarks/accuracy.py", config, merged=["elsewhere.jsonl"])
    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nkept") and text.rstrip().endswith("tail") and "\nold\n" not in text
    assert "### Targets" in text and "### he" in text and "With test-time flips" in text
    assert "| he | multi-task 10 % |" in text and "| aug |" in text          # the method change
    assert "| Cellpose, every mask | 40/40 | 2 |" in text and "| Cellpose, strong tiles | 4/40 (10 %) | 1 |" in text
    assert "Peer rows: Cellpose 3.1" in text and "30 steps (2 epochs)" in text
    assert "vs Cellpose on every exact mask" in text and "`elsewhere.jsonl`" in text
    for name in ("vs_ratio", "vs_effort", "rounds"):
        assert (config.img_dir / f"accuracy_full_{name}.png").stat().st_size > 1000


def test_a_setting_two_workers_both_ran_counts_once_and_merged_files_add_keys(tmp_path):
    path, other = tmp_path / "accuracy_full.jsonl", tmp_path / "elsewhere.jsonl"
    first, again = record("he", "mt", 0.1, 0, 0.9, 0.8, 0.8), record("he", "mt", 0.1, 0, 0.5, 0.4, 0.4)
    for rec in (first, again, record("he", "mt", 0.1, 1, 0.9, 0.8, 0.8)):
        append_record(path, rec)
    recs = read_results(path)
    assert [r["seed"] for r in recs] == [0, 1] and recs[0]["dice"] == 0.9
    append_record(other, record("he", "mt", 0.1, 0, 0.1, 0.1, 0.1))           # the run's own file wins
    append_record(other, record("em", "full", 1.0, 0, 0.9, 0.7, 0.8))
    merged = read_results(path, other)
    assert len(merged) == 3 and merged[0]["dice"] == 0.9 and merged[2]["family"] == "em"


@pytest.mark.slow
def test_one_run_end_to_end_scores_every_metric_and_variant():
    """One run of the benchmark on four synthetic images (two training steps): every metric, the
    test-time flips, the tuned instance settings and the recursive model's watershed seeds are scored,
    the cost is counted."""
    ds = synthetic_dataset(0, n_train=4, n_test=1, pseudo=False, name="synthetic")
    mode = Mode("tiny", steps=2, batch_size=2, patch_size=32, rounds=2, datasets=("synthetic",), ratios=(0.5,))
    rec = ours.run_one("mtr", ds, 0.5, mode, log=lambda msg: None)
    for k in ("dice", "object_dice", "ap50", "ap_sweep", "mdice", "object_hausdorff"):
        assert k in rec
    assert 0 <= rec["dice"] <= 1 and len(rec["ap"]) >= 9 and rec["n_gt"] > 0
    assert rec["n_strong"] == 2 and rec["cost"]["objects_traced"] > 0
    assert "flips" in rec["variants"]
    assert "tuned" in rec["variants"] and "watershed_seeds" in rec["variants"]
    assert len(rec["approximation_dice"]) >= 2
    assert rec["_predictions"][0].shape == ds.test[0][2].shape
    json.dumps({k: v for k, v in rec.items() if k != "_predictions"}, default=float)
