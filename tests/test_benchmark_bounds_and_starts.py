"""benchmarks/classical_bounds.py (the classical pipeline given true points or a true mask) and
benchmarks/instance_starts.py (the instance fit started from other settings): their parts and reports."""

import dataclasses
import json

import numpy as np
import pytest

from benchmarks import classical_bounds, instance_starts
from benchmarks.instance_starts import STARTS
from napari_lazylabels.engine import instance_fitting
from napari_lazylabels.engine.autolabel import classical_instances
from napari_lazylabels.engine.metrics import average_precision
from napari_lazylabels.engine.points import points_of_instances
from napari_lazylabels.engine.postprocess.settings import PostProcessing


def touching_pair() -> np.ndarray:
    truth = np.zeros((40, 60), np.int32)
    yy, xx = np.mgrid[:40, :60]
    truth[(yy - 20) ** 2 + (xx - 20) ** 2 <= 100] = 1
    truth[((yy - 20) ** 2 + (xx - 37) ** 2 <= 100) & (truth == 0)] = 2
    return truth


def test_true_points_split_a_touching_pair_that_one_point_merges():
    truth = touching_pair()
    pts = points_of_instances(truth)        # the true points classical_bounds gives the pipeline
    assert pts.shape == (2, 3) and np.all(pts[:, 2] == 1)
    pix = np.floor(pts[:, :2] + 0.5).astype(int)
    assert sorted(truth[pix[:, 0], pix[:, 1]].tolist()) == [1, 2]
    # the pipeline given them and the true mask finds both objects; given one point, it merges them
    assert average_precision(classical_instances(pts, truth > 0), truth) == 1.0
    assert average_precision(classical_instances(pts[:1], truth > 0), truth) < 1.0


def test_the_bounds_report_has_a_column_per_way():
    rec = {"dataset": "em", **{w: v for w, v in zip(classical_bounds.WAYS, (0.4, 0.45, 0.9, 0.99))}}
    table = classical_bounds.report([rec])
    assert table.splitlines()[0].count("|") == len(classical_bounds.WAYS) + 2
    assert "| em | 0.400 | 0.450 | 0.900 | 0.990 |" in table


def test_the_starts_report_gives_means_spreads_and_each_seed(tmp_path):
    def rec(seed, aps):
        return {"key": f"ecoli/seed{seed}", "dataset": "ecoli", "seed": seed,
                **{k: {"ap50": a, "objects": 20, "train_score": 0.9} for k, a in zip(STARTS, aps)}}
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(rec(s, [0.5 + 0.1 * s] * len(STARTS))) + "\n" for s in (0, 1)))
    table = instance_starts.report([json.loads(line) for line in results.read_text().splitlines()])
    assert "| ecoli | 2 | 0.550 ± 0.071 (0.50, 0.60) |" in table
    assert table.rstrip().endswith("| 0.900 / 0.900 / 0.900 / 0.900 / 0.900 |")
    assert instance_starts.main(["--results", str(results), "--datasets", "ecoli"]) == 0


def test_a_start_leaves_the_fits_joins_as_they_were(monkeypatch):
    """The join a start tries is put back even when the fit fails."""
    before = instance_fitting.SEED_JOINS

    def fails(*_):
        raise RuntimeError("no fit")
    monkeypatch.setattr(instance_starts, "fit_on_labels", fails)

    @dataclasses.dataclass
    class Model:
        postprocess: PostProcessing = dataclasses.field(default_factory=PostProcessing)
    with pytest.raises(RuntimeError):
        instance_starts._fitted_from(Model(), [], {"seed_join_threshold": 0.1})
    assert instance_fitting.SEED_JOINS == before
