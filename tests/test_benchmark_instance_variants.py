"""benchmarks/instance_variants.py: the seedless instance steps it compares (the foreground's components,
specks dropped; the same cut by the predicted interfaces) and its report's means and spreads."""

import json

import numpy as np

from benchmarks.instance_variants import (COMPONENTS, COMPONENTS_CUT, MARKS, NO_JOIN, SEED_PULL, SEEDS_FITTED,
                                          VARIANTS, components, main, report)


def test_components_drop_specks_and_cut_at_interfaces():
    fg = np.zeros((20, 40), bool)
    fg[2:18, 2:30] = True            # one large object ...
    fg[0, 0] = fg[5, 35] = True      # ... and two specks, one found first
    cut = np.zeros_like(fg)
    cut[:, 15] = True                # an interface across the object
    assert components(fg, 10).max() == 1
    halves = components(fg, 10, cut)
    assert halves.max() == 2 and halves[10, 5] != halves[10, 25] and halves[5, 35] == 0 == halves[0, 0]


def test_report_gives_means_spreads_and_objects():
    def rec(seed, seeds_ap, cc_ap):
        r = {"dataset": "em", "seed": seed, "n_objects": 230,
             "train_agreement": {SEEDS_FITTED: 0.8, COMPONENTS: 0.5, COMPONENTS_CUT: 0.6}}
        assert len(VARIANTS) == 6
        for v, ap in zip(VARIANTS, (seeds_ap, seeds_ap, seeds_ap, seeds_ap, cc_ap, cc_ap)):
            r[v] = {"ap50": ap, "objects": 100}
        return r
    table = report([rec(0, 0.2, 0.6), rec(1, 0.3, 0.7)])
    assert "| em | 2 | 230 | " + "0.250 ± 0.071 (100) | " * 4 + "0.650 ± 0.071 (100) | 0.650 ± 0.071 (100) |" in table
    assert table.rstrip().endswith("| 0.80 / 0.50 / 0.60 |")
    # A record made before a variant was: that cell is "-", the others are the records' means.
    old = {k: v for k, v in rec(2, 0.4, 0.8).items() if k not in (SEED_PULL, NO_JOIN)}
    old["train_agreement"] = {SEEDS_FITTED: 0.8, COMPONENTS: 0.5}  # and before the cut's agreement was kept
    table = report([old])
    assert "| em | 1 | 230 | 0.400 (100) | - | - | 0.400 (100) | 0.800 (100) | 0.800 (100) |" in table
    assert table.rstrip().endswith("| 0.80 / 0.50 / - |")


def test_report_replaces_its_block_of_the_docs(tmp_path):
    results, docs = tmp_path / "r.jsonl", tmp_path / "b.md"
    rec = {"key": "em/seed0", "dataset": "em", "seed": 0, "n_objects": 230,
           **{v: {"ap50": 0.5, "objects": 9} for v in VARIANTS}}
    results.write_text(json.dumps(rec) + "\n")
    docs.write_text(f"before\n{MARKS[0]}\nold\n{MARKS[1]}\nafter\n")
    assert main(["--report", "--results", str(results), "--docs", str(docs)]) == 0
    text = docs.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert "| em | 1 | 230 | 0.500 (9) |" in text
