"""Mixed regimes: which image carries what (summary and provenance), every regime kept in the
batches, contradicting labels reported with counts."""

import numpy as np
import pytest

from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.mixed import label_conflicts, painted_kinds
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.simulate import simulate_lazy_labels
from napari_lazylabels.engine.synthetic import make_lazy_dataset
from napari_lazylabels.errors import LazyLabelsWarning
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun


@pytest.fixture(scope="module")
def twenty():
    """Nineteen images with blobs, one with fg/bg strokes only."""
    items, truths = make_lazy_dataset(20, seed=5, shape=(64, 64), strong_fraction=0.0)
    out = [LazyAnnotations(it.image, {"detection": it.labels["detection"]}, name=it.name) for it in items[:19]]
    strokes = simulate_lazy_labels(truths[19].instances, rng=0, regimes=[registry.get("impartial")])["scribbles"]
    out.append(LazyAnnotations(items[19].image, {"scribbles": strokes}, name="stroked"))
    return out


def test_which_image_carries_what_is_said_and_recorded(twenty, tiny_network, quick_config, tmp_path):
    run = TrainingRun(TrainingPlan(twenty, network=tiny_network, config=quick_config))
    summary = run.prepared.summary()
    assert "mixed regimes" in summary and "blobs: 19 images; fg/bg scribbles: stroked" in summary
    assert run.model().provenance["painted_per_image"]["stroked"] == ["fg/bg scribbles"]
    assert painted_kinds(twenty)[twenty[0].name] == ["blobs"]


def test_a_regime_on_one_image_in_twenty_keeps_its_share_of_the_batches(twenty, tiny_network, quick_config):
    run = TrainingRun(TrainingPlan(twenty, network=tiny_network, config=quick_config))
    sampler = run.trainer.sampler
    on_strokes = sum(bool(sampler.sample_patch()[2]["scribbles"].any()) for _ in range(200))
    assert on_strokes / 200 > 0.2          # one image in twenty would give 0.05


def test_a_blob_on_a_background_stroke_is_reported_with_its_count(twenty, tiny_network, quick_config):
    strokes = np.asarray(twenty[-1].labels["scribbles"])
    bg = np.argwhere(strokes == 2)[:5]
    blobs = np.zeros_like(strokes)
    blobs[bg[:, 0], bg[:, 1]] = 1
    item = LazyAnnotations(twenty[-1].image, {"scribbles": strokes, "detection": blobs}, name="both")
    assert label_conflicts([item]) == [("both", "blobs on a background stroke", 5)]
    with pytest.warns(LazyLabelsWarning, match="5 px of blobs on a background stroke"):
        TrainingRun(TrainingPlan([item, *twenty[:2]], network=tiny_network, config=quick_config))
    assert label_conflicts(twenty) == []


def test_a_blob_outside_the_exact_masks_is_reported_and_a_rough_foreground_mask_is_not():
    masks = np.zeros((32, 32), np.int32)
    masks[4:12, 4:12] = 1
    blobs = np.zeros_like(masks)
    blobs[6:8, 6:8] = 1                     # inside: fine
    blobs[20:22, 20:23] = 1                 # 6 px outside every traced object
    foreground = np.zeros_like(masks)
    foreground[2:14, 2:14] = 1              # a threshold is rough by nature
    item = LazyAnnotations(np.zeros((32, 32), np.float32),
                           {"segmentation": masks, "detection": blobs, "foreground": foreground}, name="traced")
    assert label_conflicts([item]) == [("traced", "blobs outside the masks", 6)]
