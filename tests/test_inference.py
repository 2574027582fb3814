import numpy as np
import pytest
import torch

from napari_lazylabels.engine.config import NetworkConfig, preset
from napari_lazylabels.engine.inference import predict_tiled, predict_whole, tile_layout
from napari_lazylabels.engine.model import build_model
from napari_lazylabels.engine.regimes.registry import default_tasks


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model(NetworkConfig(depth=3, base_channels=4, multitask_levels=2), default_tasks(1))
    for mod in m.modules():  # non-trivial normalisation statistics
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.mark.parametrize("shape,tile", [((150, 97), 48), ((200, 200), 64), ((64, 300), 40), ((75, 75), 1024)])
def test_tiling_does_not_change_the_prediction(model, shape, tile):
    image = np.random.default_rng(1).random((1,) + shape, dtype=np.float32)
    whole = predict_whole(model, image)
    tiled = predict_tiled(model, image, tile_size=tile, batch_size=3)
    for k in whole:
        assert tiled[k].shape == whole[k].shape == (whole[k].shape[0],) + shape
        np.testing.assert_allclose(tiled[k], whole[k], atol=1e-5)


def test_image_smaller_than_a_patch(model):
    image = np.random.default_rng(2).random((1, 9, 13), dtype=np.float32)
    out = predict_tiled(model, image, tile_size=64)
    assert out["segmentation"].shape == (2, 9, 13)
    np.testing.assert_allclose(out["segmentation"].sum(0), 1, atol=1e-5)


@pytest.mark.parametrize("length,tile,margin", [(2048, 1024, 56), (1000, 256, 56), (104, 48, 16), (33, 64, 8)])
def test_tile_cores_cover_the_axis(length, tile, margin):
    t, starts = tile_layout(length, tile, margin, 8)
    covered = np.zeros(length, bool)
    for i, s in enumerate(starts):
        lo = s if i == 0 else s + margin
        hi = s + t if i == len(starts) - 1 else s + t - margin
        covered[lo:hi] = True
        assert s % 8 == 0 and s + t <= length
    assert covered.all()
