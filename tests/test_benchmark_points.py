"""The points suite's seeds: one run per training seed (the classical pipeline once), the seeds pooled in
the targets and the tables (mean, spread, worst seed)."""

from __future__ import annotations

import pytest

from benchmarks.suites import points


def _record(ds, method, seed, ap50):
    return {"key": points.run_key(ds, method, seed), "dataset": ds, "method": method, "seed": seed, "ap50": ap50,
            "ap_mean": ap50 / 2, "dice": 0.8, "steps": 0 if method == "classical" else 800, "cost": {},
            "split": "a split", "n_objects": 10}


def test_each_seed_is_a_run_of_its_own_and_seed_0_keeps_the_old_key():
    keys = {points.run_key("he", m, s) for m in ("machine", "classical") for s in (0, 1, 2)}
    assert keys == {"he/machine", "he/machine/seed1", "he/machine/seed2", "he/classical"}


def test_the_target_is_judged_on_the_mean_over_seeds_and_names_the_worst():
    recs = [_record("he", "classical", 0, 0.50)] + [_record("he", "machine", s, a)
                                                      for s, a in ((0, 0.65), (1, 0.62), (2, 0.56))]
    pooled = points.by_setting(recs)["he/machine"]
    assert pooled["seeds"] == [0, 1, 2] and abs(pooled["ap50"] - 0.61) < 1e-9
    (line,) = points.targets(recs)
    assert "**met**" in line and "3 seeds" in line and "worst seed +0.060" in line and "± 0.046" in line
    recs[-1] = _record("he", "machine", 2, 0.35)                     # one bad seed pulls the mean under
    assert "**missed**" in points.targets(recs)[0]
    table = points.markdown(recs, "cmd", "a machine", points.BUDGET["full"])
    assert "| machine points + machine foreground | 0.540 ± 0.165 | - | 3 |" in table
    assert "| classical (threshold + LoG seeds + distance watershed) | 0.500 | - | - |" in table


def test_the_target_names_what_exact_labels_reach_and_when_it_lies_above_them():
    recs = [_record("ecoli", "classical", 0, 0.35), _record("ecoli", "machine", 0, 0.22),
            _record("ecoli", "points", 0, 0.30), _record("ecoli", "points", 1, 0.40), _record("ecoli", "full", 0, 0.15)]
    (line,) = points.targets(recs)
    assert "**missed**" in line and "exact labels: points at centroids + exact foreground 0.350 ± 0.071, " \
        "full supervision 0.150" in line
    assert "under the target's 0.450: even exact labels do not reach it at this budget" in line
    recs[3] = _record("ecoli", "points", 1, 0.60)                     # the exact labels reach past the target
    (line,) = points.targets(recs)
    assert "0.450 ± 0.212" in line and "under the target" not in line
    assert "exact labels" not in points.targets(recs[:2])[0]          # no run on exact labels: nothing said


def test_the_table_pairs_the_fitted_settings_with_the_defaults_on_the_same_models():
    recs = [_record("he", "classical", 0, 0.50)] + [_record("he", "machine", s, a) for s, a in ((0, 0.65), (1, 0.55))]
    for r, d in zip(recs[1:], (0.66, 0.35)):
        r["unfitted"] = {"ap50": d, "ap_mean": d / 2, "dice": 0.8}
    table = points.markdown(recs, "cmd", "a machine", points.BUDGET["full"])
    assert "| machine points + machine foreground | 0.600 ± 0.071 | 0.505 ± 0.219 | 2 |" in table


def test_a_full_report_writes_its_own_block_and_leaves_the_quick_one(tmp_path):
    import json

    from benchmarks.harness.config import BenchConfig
    recs = [_record("he", "classical", 0, 0.50), {**_record("he", "machine", 0, 0.62), "machine": "a machine"}]
    recs[0]["machine"] = "a machine"
    (tmp_path / "points_full.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    docs = tmp_path / "benchmarks.md"
    quick = f"{points.MARK_BEGIN}\nthe quick tables\n{points.MARK_END}"
    docs.write_text(f"# Benchmarks\n\n{quick}\n\n## Full\n\n"
                    f"{points.MARKS['full'][0]}\nthe stale full table\n{points.MARKS['full'][1]}\n\nprose after\n")
    config = BenchConfig(docs_file=docs)
    assert points.main(["--full", "--report-only", "--results", str(tmp_path)], config) == 0
    text = docs.read_text()
    assert quick in text and "stale" not in text and text.endswith("prose after\n")
    assert "| machine points + machine foreground | 0.620 |" in text and "**met**" in text


def test_the_block_names_the_commands_its_records_were_made_by():
    recs = [_record("he", "classical", 0, 0.50), _record("he", "machine", 0, 0.62), _record("em", "machine", 0, 0.2)]
    assert "the last invocation was `report`" in points.markdown(recs, "report", "m", points.BUDGET["full"])
    recs[0]["command"] = recs[1]["command"] = "run he"
    table = points.markdown(recs, "report", "m", points.BUDGET["full"])
    assert ("the records were made by `run he` and 1 earlier record(s) by commands not kept; this block by "
            "`report`") in table



def test_the_mixed_labels_take_one_part_exact_and_the_rest_machine_made():
    import numpy as np

    from benchmarks.suites import points_mixed
    from napari_lazylabels.engine.points import point_pixels
    from napari_lazylabels.engine.synthetic import make_image

    t = make_image(903, (192, 192), touching=0.5)
    regime = points.points_regime()
    keys = tuple(i.key for i in regime.inputs)
    pts_key, mask_key = keys
    machine, _ = points.machine_labels("synthetic", t.image)
    exact = regime.simulate(t.instances)

    def mix(method):
        return points_mixed.mixed(method, machine, exact, t.instances, *keys)

    assert np.array_equal(mix("centroids_machine_mask")[pts_key], exact[pts_key])
    assert np.array_equal(mix("centroids_machine_mask")[mask_key], machine[mask_key])
    assert np.array_equal(mix("machine_points_exact_mask")[pts_key], machine[pts_key])
    assert np.array_equal(mix("machine_points_exact_mask")[mask_key], exact[mask_key])
    assert not np.array_equal(machine[mask_key], exact[mask_key])     # the parts differ, so the test can fail

    def objects(pts):
        pix = point_pixels(pts)
        ids = t.instances[pix[:, 0], pix[:, 1]]
        return set(ids[ids > 0].tolist())

    found, every = objects(machine[pts_key]), set(np.unique(t.instances[t.instances > 0]).tolist())
    assert found < every                     # the detector misses some touching nuclei here
    assert objects(mix("centroids_of_found")[pts_key]) == found
    assert len(mix("centroids_of_found")[pts_key]) == len(found)
    completed = mix("machine_points_and_missed")[pts_key]
    assert objects(completed) == every and len(completed) == len(machine[pts_key]) + len(every - found)
    with pytest.raises(ValueError, match="unknown mixed labels"):
        mix("nothing")


def test_the_mixed_labels_table_puts_each_mix_between_machine_and_exact_labels():
    from benchmarks.suites import points_mixed

    records = [_record("synthetic", "machine", s, v) for s, v in ((0, 0.88), (1, 0.84), (2, 0.83))]
    records += [_record("synthetic", "centroids_machine_mask", 0, 0.96), _record("synthetic", "points", 0, 0.94),
                _record("he", "centroids_machine_mask", 0, 0.5)]
    table = points_mixed.report(records, "synthetic", points.METHOD_NAMES).splitlines()
    assert len(table) == 2 + 3                 # header, rule, and the three rows with records of synthetic
    assert "0.880, 0.840, 0.830" in table[2] and "0.850 ± 0.026" in table[2]
    assert table[3].startswith("| points at centroids + machine foreground |") and "0.960" in table[3]
    assert table[4].startswith("| points at centroids + exact foreground | both |")


def test_the_mixed_labels_command_prints_the_table_and_names_a_missing_file(tmp_path, capsys):
    import json

    from benchmarks import mixed_labels

    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(_record("synthetic", m, 0, v))
                              for m, v in (("machine", 0.88), ("centroids_of_found", 0.9))) + "\n")
    assert mixed_labels.main(["--results", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| centroids of the objects machine points find + machine foreground |" in out
    with pytest.raises(SystemExit, match="no records file"):
        mixed_labels.main(["--results", str(tmp_path / "none.jsonl")])
