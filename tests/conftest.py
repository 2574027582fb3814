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


@pytest.fixture(scope="session")
def train_tiny():
    """``train_tiny(items, steps, batch_size=2, **plan)``: the ``tiny`` network trained through the
    training recipe (what every front end runs) on 32 px patches on the CPU; the finished run."""
    from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

    def train(items, steps: int, batch_size: int = 2, **plan) -> TrainingRun:
        run = TrainingRun(TrainingPlan(items, network=preset("tiny"), config=TrainConfig(
            steps=steps, patch_size=32, batch_size=batch_size, device="cpu"), **plan))
        for _ in run.run():
            pass
        return run
    return train


@pytest.fixture
def toy_regime():
    """A regime added the way a plug-in adds one: one Labels input ("rings") with its own task.

    Registered for the test only. Nothing else in the package is edited for it,
    so wherever it shows up (CLI, manifest, widgets, loss plot), the registry
    put it there.
    """
    from napari_lazylabels.engine.regimes import registry
    from napari_lazylabels.engine.regimes.base import LabelInput, Regime
    from napari_lazylabels.engine.tasks import PLAIN

    class Rings(Regime):
        name = "rings"
        title = "rings (a test regime)"
        description = "a ring around each object"
        inputs = (LabelInput(key="rings", title="Rings", suffix="rings", values="1 on a ring around each object",
                             tooltip="Rings: a ring around each object.", class_values=False, value_names=("ring",),
                             palette=((0, 255, 0),), brush_size=3, shortcut="Alt-9"),)
        features = PLAIN
        colour = (10, 200, 10)
        probability_colormap = "green"

    with registry.registered(Rings()) as regime:
        yield regime
