"""The optional augmentations (stain jitter, blur, elastic deformation) and test-time flips."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from napari_lazylabels.cli.main import build_parser
from napari_lazylabels.cli.predict import postprocess_from
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.config import AugmentConfig, NetworkConfig, TrainConfig
from napari_lazylabels.engine.model import build_model
from napari_lazylabels.engine.pipeline import segment
from napari_lazylabels.engine.postprocess.settings import PostProcessing
from napari_lazylabels.engine.regimes.registry import default_tasks
from napari_lazylabels.engine.simulate import simulate_lazy_labels
from napari_lazylabels.engine.tasks import FOREGROUND
from napari_lazylabels.engine.trained_model import LazyLabelsModel
from napari_lazylabels.engine.training import augment
from napari_lazylabels.engine.training.sampling import PatchSampler, _warp, patch_warp, prepare as prepare_image
from napari_lazylabels.errors import SettingsError
from napari_lazylabels.recipes.train import TrainingPlan, prepare

#: Every default augmentation off: only the optional one under test changes a patch.
PLAIN = AugmentConfig(flips=False, rot90=False, scale_range=(1.0, 1.0), gain_range=(1.0, 1.0),
                      offset_range=(0.0, 0.0), noise_std=0.0)


def _rgb(seed=0, shape=(3, 32, 32)):
    return np.random.default_rng(seed).uniform(0.2, 0.9, shape).astype(np.float32)


def test_stain_jitter_changes_the_colours_of_rgb_only():
    rgb = _rgb()
    out = augment.stain_jitter(rgb, 0.05, np.random.default_rng(1))
    assert out.shape == rgb.shape and out.dtype == np.float32
    assert 0 < np.abs(out - rgb).mean() < 0.2
    # the same random numbers give the same patch
    np.testing.assert_array_equal(out, augment.stain_jitter(rgb, 0.05, np.random.default_rng(1)))
    # a vanishing jitter is the identity (unmixing and mixing back are inverse)
    np.testing.assert_allclose(augment.stain_jitter(rgb, 1e-9, np.random.default_rng(1)), rgb, atol=1e-5)
    gray = rgb[:1]
    assert augment.stain_jitter(gray, 0.05, np.random.default_rng(1)) is gray


def test_stain_jitter_keeps_what_the_clipping_cut_off():
    rgb = _rgb()
    rgb[0, :4] = 1.7                                  # above the normalised range
    rgb[1, :4] = -0.3
    out = augment.stain_jitter(rgb, 1e-9, np.random.default_rng(0))
    np.testing.assert_allclose(out, rgb, atol=1e-5)


def test_blur_smooths_every_channel():
    noise = _rgb(2)
    out = augment.blur(noise, 1.5)
    assert out.shape == noise.shape
    assert all(out[c].std() < 0.5 * noise[c].std() for c in range(3))
    np.testing.assert_allclose(out.mean(), noise.mean(), atol=0.02)


def test_elastic_field_is_smooth_and_remaps_labels_to_their_values():
    rng = np.random.default_rng(0)
    mx, my = augment.elastic_field(64, 3.0, 4, rng)
    yy, xx = np.mgrid[0:64, 0:64]
    dx, dy = mx - xx, my - yy
    assert 0.5 < np.abs(dx).mean() < 10 and np.abs(np.diff(dx, axis=1)).max() < 1.0
    labels = np.zeros((64, 64), np.int16)
    labels[10:30, 10:30], labels[35:60, 30:50] = 3, 7
    warped = augment.remap(labels, (mx, my), nearest=True)
    assert warped.dtype == labels.dtype and set(np.unique(warped)) <= {0, 3, 7}
    assert not np.array_equal(warped, labels)
    # no displacement: the identity
    ident = augment.remap(labels, (xx.astype(np.float32), yy.astype(np.float32)), nearest=True)
    np.testing.assert_array_equal(ident, labels)


@pytest.mark.parametrize("field,value", [("stain_jitter", 0.8), ("stain_jitter", -0.1), ("blur_probability", 1.5),
                                         ("elastic_alpha", -1.0), ("elastic_grid", 1), ("blur_sigma", (0.0, 1.0))])
def test_bad_augmentation_settings_are_refused(field, value):
    with pytest.raises(SettingsError):
        AugmentConfig(**{field: value})


def test_augmentations_default_off_and_round_trip():
    a = AugmentConfig()
    assert a.stain_jitter == a.blur_probability == a.elastic_alpha == 0
    cfg = TrainConfig(augment=replace(a, stain_jitter=0.05, blur_probability=0.3, elastic_alpha=2.0))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def _one_object_sampler(aug: AugmentConfig, seed: int = 0):
    """A sampler over one image whose intensity is its exact mask (1 inside, 0 outside)."""
    mask = np.zeros((96, 96), np.int32)
    mask[20:60, 25:70] = 1
    mask[66:90, 10:40] = 2
    labels = {k: v for k, v in simulate_lazy_labels(mask, rng=np.random.default_rng(0), strong=True).items()
              if v is not None}
    item = LazyAnnotations((mask > 0).astype(np.float32) * 200 + 20, labels=labels, name="boxes")
    prepared = prepare(TrainingPlan([item]))
    config = TrainConfig(patch_size=48, augment=aug)
    ims = [prepare_image(it, prepared.tasks, config.normalization, np.random.default_rng(0))
           for it in prepared.items]
    return PatchSampler(ims, prepared.tasks, config, np.random.default_rng(seed)), prepared.tasks


def test_elastic_deformation_moves_image_and_labels_together():
    sampler, tasks = _one_object_sampler(replace(PLAIN, elastic_alpha=3.0))
    plain, _ = _one_object_sampler(PLAIN)
    moved = 0
    for _ in range(12):
        image, targets, valid, _ = sampler.sample_patch()
        ref_image, *_ = plain.sample_patch()
        inside = image[0] > 0.5                        # the object, from the deformed image
        moved += not np.array_equal(inside, ref_image[0] > 0.5)
        fg = next(t.name for t in tasks if t.role == FOREGROUND)   # the exact mask's task
        v = valid[fg]
        assert v.any()
        assert np.mean((targets[fg][v] > 0) == inside[v]) > 0.97
    assert moved >= 6                                   # it did deform


def test_stain_jitter_and_blur_in_the_sampler():
    sampler, _ = _one_object_sampler(replace(PLAIN, blur_probability=1.0))
    image, *_ = sampler.sample_patch()
    values = np.unique(np.round(image, 3))
    assert len(values) > 10                            # blurred edges between the two levels
    plain, _ = _one_object_sampler(PLAIN)
    image, *_ = plain.sample_patch()
    assert len(np.unique(np.round(image, 3))) <= 2


# --- test-time flips ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def model():
    """An untrained network (random weights: not flip-symmetric) as a model."""
    torch.manual_seed(0)
    tasks = default_tasks(1)
    return LazyLabelsModel(build_model(NetworkConfig(depth=3, base_channels=4, multitask_levels=2), tasks).eval(),
                           tasks, ["cell"])


def _symmetric(seed=0, size=40):
    q = np.random.default_rng(seed).random((size // 2, size // 2)).astype(np.float32)
    top = np.concatenate([q, q[:, ::-1]], axis=1)
    return np.concatenate([top, top[::-1]], axis=0)


def test_flip_averaged_prediction_of_a_symmetric_image_is_symmetric(model):
    image = _symmetric()
    plain = model.predict(image)
    averaged = model.predict(image, flips=True)
    for k, p in averaged.items():
        assert p.shape == plain[k].shape
        np.testing.assert_allclose(p, p[:, ::-1, :], atol=1e-5)
        np.testing.assert_allclose(p, p[:, :, ::-1], atol=1e-5)
        np.testing.assert_allclose(p.sum(0), plain[k].sum(0), atol=1e-4)     # still probabilities
    # the network itself is not flip-symmetric: without flips the same image is not predicted symmetric
    assert any(np.abs(p - p[:, ::-1, :]).max() > 1e-3 for p in plain.values())


def test_flip_averaged_prediction_follows_a_flip_of_the_image(model):
    image = np.random.default_rng(3).random((37, 52)).astype(np.float32)
    out = model.predict(image, flips=True)
    flipped = model.predict(np.ascontiguousarray(image[:, ::-1]), flips=True)
    for k in out:
        np.testing.assert_allclose(flipped[k], out[k][:, :, ::-1], atol=1e-5)
    # tiled the same as whole
    tiled = model.predict(image, flips=True, tile_size=32)
    for k in out:
        np.testing.assert_allclose(tiled[k], out[k], atol=1e-4)


def test_flips_through_segment_and_the_cli(model):
    image = np.random.default_rng(4).random((48, 48)).astype(np.float32)
    on = segment(model, image, postprocess=replace(model.postprocess, flips=True))
    off = segment(model, image)
    ref = model.predict(image, flips=True)
    for k, p in on.probabilities.items():
        np.testing.assert_allclose(p, ref[k], atol=1e-5)
    assert any(not np.allclose(on.probabilities[k], off.probabilities[k]) for k in on.probabilities)
    assert PostProcessing.from_dict({**model.postprocess.to_dict(), "flips": True}).flips
    args = build_parser().parse_args(["predict", "--model", "m", "--image", "a.tif", "--out", "o", "--flips"])
    assert postprocess_from(args, model).flips
    args = build_parser().parse_args(["predict", "--model", "m", "--image", "a.tif", "--out", "o"])
    assert not postprocess_from(args, model).flips


# --- the patch warp: cut, scale, turn and mirror in one affine map ------------------------------

@pytest.mark.parametrize("k", [0, 1, 2, 3])
@pytest.mark.parametrize("flip", [False, True])
def test_patch_warp_equals_a_crop_turned_and_mirrored(k, flip):
    """At scale 1 the warp is exactly the window of the image, np.rot90'd k times, then mirrored."""
    rng = np.random.default_rng(k)
    image = rng.integers(0, 1000, (40, 50, 3)).astype(np.int16)
    out = np.empty((16, 16, 3), np.int16)
    _warp(image, patch_warp(5, 7, 16, 16, k, flip), out, nearest=True)
    want = np.rot90(image[5:21, 7:23], k, axes=(0, 1))
    want = want[:, ::-1] if flip else want
    np.testing.assert_array_equal(out, want)


def test_patch_warp_scales_as_resize_and_fills_zero_outside():
    image = np.random.default_rng(1).random((64, 64, 1)).astype(np.float32)
    out = np.empty((16, 16, 1), np.float32)
    _warp(image, patch_warp(8, 8, 32, 16), out, nearest=False)           # a 32 px window halved
    np.testing.assert_allclose(out[..., 0], cv2.resize(image[8:40, 8:40, 0], (16, 16)), atol=1e-5)
    _warp(image, patch_warp(-8, -8, 16, 16), out, nearest=False)         # half outside the image
    assert np.all(out[:7, :7] == 0) and np.allclose(out[8:, 8:, 0], image[:8, :8, 0])
