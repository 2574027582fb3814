"""benchmarks/suites/continue_scratch.py: the labels after the round contain those before, the runs
planned (scratch at N/8..N, continue at N/8..N/2), records that resume (a cut line ignored)."""

import json

import numpy as np

from benchmarks.harness.regimes import strong_key
from benchmarks.suites.continue_scratch import done_keys, labelled_sets, planned_runs, strong_first
from napari_lazylabels.engine.synthetic import make_lazy_dataset


def test_the_round_adds_blobs_to_those_before():
    _, truths = make_lazy_dataset(2, seed=0, shape=(96, 96))
    before, after = labelled_sets(truths, 0.3, 0.6, seed=0)
    for t, b, a in zip(truths, before, after):
        n = len(np.unique(t.instances[t.instances > 0]))
        assert b < a and len(b) == max(1, round(0.3 * n)) and len(a) == round(0.6 * n)
    assert labelled_sets(truths, 0.3, 0.6, seed=0) == (before, after)


def test_planned_runs_and_resume(tmp_path):
    assert planned_runs(160) == [("continue", 20), ("scratch", 20), ("continue", 40), ("scratch", 40),
                                 ("continue", 80), ("scratch", 80), ("scratch", 160)]
    path = tmp_path / "r.jsonl"
    row = {"seed": 0, "arm": "scratch", "steps": 20, "settings": "s", "ap50": 0.5}
    path.write_text(json.dumps(row) + "\n" + '{"seed": 0, "arm": "contin')
    assert done_keys(path) == {(0, "scratch", 20, "s")} and done_keys(tmp_path / "none.jsonl") == set()


def test_the_image_with_exact_masks_comes_first():
    lazy, truths = make_lazy_dataset(8, seed=0, shape=(48, 48))      # its exact masks are not on image 0
    ordered, ordered_truths = strong_first(lazy, truths)
    has = [it.labels.get(strong_key()) is not None and it.labels[strong_key()].any() for it in ordered]
    assert has == [True] + [False] * 7 and not (lazy[0].labels.get(strong_key()) is not None
                                                 and lazy[0].labels[strong_key()].any())
    assert all(it.image is t.image for it, t in zip(ordered, ordered_truths))
