"""Shared fixtures: small synthetic data sets made by the project's generator."""

from __future__ import annotations

import pytest

from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.synthetic import make_lazy_dataset


@pytest.fixture(scope="session")
def small_lazy_set():
    """Six 64x64 synthetic images with blobs and scribbles, exact masks on two."""
    items, truths = make_lazy_dataset(6, seed=3, shape=(64, 64), strong_fraction=0.3)
    return items, truths


@pytest.fixture
def tiny_network():
    return preset("tiny")


@pytest.fixture
def quick_config():
    """A few fast steps on small patches (tests only)."""
    return TrainConfig(steps=6, patch_size=32, batch_size=2, checkpoint_every=3,
                       device="cpu")
