"""The lazy suite's data sets of a mode: the synthetic nuclei at the mode's counts, or a real set's
tiles with every label a method may use; and the test frames alone, for a report's overlays."""

from __future__ import annotations

from dataclasses import replace

from benchmarks.harness.config import BenchConfig
from benchmarks.harness.data import Dataset, lazy_dataset, load_frames, synthetic_dataset as _synthetic
from benchmarks.harness.methods import Mode


def synthetic_dataset(seed: int, mode: Mode, pseudo: bool = True) -> Dataset:
    """The synthetic set of a mode (data seed ``seed``)."""
    return _synthetic(seed, mode.synthetic_train, mode.synthetic_test, pseudo,
                      name="synthetic-s0" if mode.name == "quick" else "synthetic")


def dataset_name(family: str, mode: Mode) -> str:
    """The name a family's runs are keyed by in ``mode``."""
    return "synthetic-s0" if family == "synthetic" and mode.name == "quick" else family


def load(family: str, mode: Mode, pseudo: bool, config: BenchConfig) -> Dataset:
    """The data set of ``family`` in ``mode`` (GrabCut pseudo-masks when ``pseudo``)."""
    if family == "synthetic":
        return synthetic_dataset(0, mode, pseudo)
    return lazy_dataset(family, mode.name, config.data_dir(), pseudo, config.cache)


def test_sets(records: list[dict], mode: Mode, config: BenchConfig) -> dict[str, Dataset]:
    """The test images of the sets in ``records`` (for the overlays of a report from the results
    file alone: no labels simulated, no training images)."""
    out = {}
    for fam in dict.fromkeys(r["family"] for r in records):
        if fam == "synthetic":
            out[fam] = synthetic_dataset(0, replace(mode, synthetic_train=1), pseudo=False)
        else:
            fs = load_frames(fam, mode.name, config.data_dir())
            out[fam] = Dataset(fam, fam, [], fs.test, fs.split, [])
    return out
