"""The Cellpose peer: trained from scratch through its own loop on a tiny synthetic set for a few steps,
it gives an instance map of the image's shape; its budget and bookkeeping; one clear line without it."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from benchmark_support import record
from skimage.draw import disk

from benchmarks.report import tables
from benchmarks.suites import peer_cellpose
from benchmarks.suites.peer_cellpose import PeerBudget


def _scene(seed: int, n: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """Bright disks of 30 px on a dark, noisy background, and their instance map."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.1, 0.02, (n, n)).astype(np.float32)
    labels = np.zeros((n, n), np.int32)
    for k, (y, x) in enumerate((y, x) for y in range(30, n - 20, 56) for x in range(30, n - 20, 56)):
        rr, cc = disk((y + rng.integers(-5, 5), x + rng.integers(-5, 5)), 15, shape=(n, n))
        image[rr, cc], labels[rr, cc] = 0.8, k + 1
    return image, labels


def test_a_budget_is_one_positive_number():
    assert PeerBudget(steps=10).kind == "steps" and PeerBudget(seconds=1.5).kind == "seconds"
    for bad in ({}, {"steps": 1, "epochs": 1}, {"seconds": 0}):
        with pytest.raises(SystemExit, match="one positive number"):
            PeerBudget(**bad)


def test_without_cellpose_the_peer_stops_with_one_line(monkeypatch):
    real_import = builtins.__import__

    def no_cellpose(name, *args, **kwargs):
        if name == "cellpose" or name.startswith("cellpose."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cellpose)
    with pytest.raises(SystemExit) as stop:
        peer_cellpose.require_cellpose()
    assert "bash scripts/setup_peer.sh" in str(stop.value) and "\n" not in str(stop.value)


def test_the_peer_trains_from_scratch_and_segments():
    pytest.importorskip("cellpose")
    scenes = [_scene(i) for i in range(3)]
    training = peer_cellpose.train_cellpose([s[0] for s in scenes[:2]], [s[1] for s in scenes[:2]],
                                            PeerBudget(steps=2), seed=0, milestones=(1, 2))
    assert training.n_used == 2 and training.steps_per_epoch == 1 and training.epochs == 2 == training.steps
    assert training.diameter == pytest.approx(30, abs=2)        # from the training masks
    assert [m["steps"] for m in training.milestones] == [2]      # Cellpose saves from its second epoch on
    assert 0 < training.milestones[0]["train_s"] <= training.train_s
    image, truth = scenes[2]
    masks = peer_cellpose.segment_cellpose(training, image)
    assert masks.shape == truth.shape and masks.dtype == np.int32
    again = peer_cellpose.segment_cellpose(training, image, training.milestones[0]["state"])
    assert again.shape == truth.shape


def test_peer_rows_have_their_own_budget_lines():
    rows = tables.rows_of([record("he", "full", 1.0, 0, 0.9, 0.8, 0.8, steps=800),
                           record("he", "cp", 1.0, 0, 0.9, 0.7, 0.8, steps=30, epochs=2)], "he")
    lines = tables.peer_budget_lines(rows)
    assert any("Cellpose, every mask (120/120)" not in line and "30 steps (2 epochs)" in line and
               "full supervision: 800 steps" in line for line in lines)
