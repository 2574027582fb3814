import numpy as np
import pytest
import torch

from napari_lazylabels.engine.config import NetworkConfig, preset
from napari_lazylabels.engine import device as device_module
from napari_lazylabels.engine import inference
from napari_lazylabels.engine.inference import inference_network, predict_tiled, predict_whole, tile_layout
from napari_lazylabels.engine.model import build_model, fold_batchnorm
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
    tiled = predict_tiled(model, image, tile_size=tile, batch_size=3, amp=False)
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


def test_folded_channels_last_network_computes_the_same_function(model):
    """BatchNorm folded into the convolutions, channels-last: the eval-mode network up to float rounding."""
    x = torch.from_numpy(np.random.default_rng(3).random((2, 1, 64, 48), dtype=np.float32))
    with torch.no_grad():
        ref = model(x)
        net = inference_network(model, torch.device("cpu"))
        out = net(x.contiguous(memory_format=torch.channels_last))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) > 0   # the original is untouched
    for k in ref:
        np.testing.assert_allclose(out[k].numpy(), ref[k].numpy(), atol=1e-5, rtol=1e-5)


def test_fold_batchnorm_of_a_trained_network_in_train_mode_is_a_copy():
    torch.manual_seed(1)
    m = build_model(NetworkConfig(depth=2, base_channels=4, multitask_levels=1), default_tasks(1)).train()
    folded = fold_batchnorm(m)
    assert m.training and not folded.training
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(m.parameters(), folded.parameters()))


def test_reduced_precision_is_chosen_from_the_hardware(monkeypatch):
    assert device_module.reduced_precision(torch.device("cuda")) is torch.float16
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    assert device_module.reduced_precision(torch.device("cpu"), cpu_bf16=True) is torch.bfloat16
    assert device_module.reduced_precision(torch.device("cpu")) is None        # opt-in only
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    assert device_module.reduced_precision(torch.device("cpu"), cpu_bf16=True) is None
    assert device_module.reduced_precision(torch.device("mps"), cpu_bf16=True) is None


def test_the_cpu_default_is_fp32(model):
    image = np.random.default_rng(4).random((1, 80, 80), dtype=np.float32)
    fast = predict_tiled(model, image, tile_size=48)
    exact = predict_tiled(model, image, tile_size=48, amp=False)
    for k in exact:
        np.testing.assert_array_equal(fast[k], exact[k])


@pytest.mark.skipif(not device_module.cpu_has_native_bf16(), reason="the CPU has no native bf16")
def test_opt_in_bf16_stays_close_to_fp32(model, monkeypatch):
    """bf16 autocast on a bf16 CPU: probabilities within bf16 rounding of fp32 (the demo
    model's Dice and AP50 are compared by benchmarks/precision.py)."""
    monkeypatch.setattr(inference, "CPU_BF16", True)
    image = np.random.default_rng(5).random((1, 120, 120), dtype=np.float32)
    fast = predict_tiled(model, image, tile_size=64)
    exact = predict_tiled(model, image, tile_size=64, amp=False)
    for k in exact:
        assert not np.array_equal(fast[k], exact[k])   # bf16 did run
        np.testing.assert_allclose(fast[k], exact[k], atol=0.05)
