"""CPU inference in ONNX Runtime (the ``onnx`` extra): the same probabilities as PyTorch, whatever the
tile and image shape; exported once per weights; switched off by LAZYLABELS_ONNX=0; a failed export
falls back to PyTorch with a warning."""

import numpy as np
import pytest
import torch

from napari_lazylabels.engine import onnx_backend
from napari_lazylabels.engine.config import NetworkConfig
from napari_lazylabels.engine.inference import inference_network, predict_tiled, predict_whole
from napari_lazylabels.engine.model import build_model
from napari_lazylabels.engine.regimes import registry

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def trained_like(seed=0):
    torch.manual_seed(seed)
    net = build_model(NetworkConfig(depth=3, base_channels=8, multitask_levels=1), registry.default_tasks(1))
    for mod in net.modules():    # normalisation statistics like a trained network's
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return net.eval()


def without_onnx(monkeypatch, fn):
    with monkeypatch.context() as m:
        m.setenv(onnx_backend.ENV, "0")
        return fn()


def test_onnx_runtime_gives_pytorchs_probabilities(monkeypatch):
    monkeypatch.setattr(onnx_backend, "MIN_PIXELS", 0)
    net = trained_like()
    image = np.random.default_rng(0).random((1, 150, 97), dtype=np.float32)
    assert isinstance(inference_network(net, torch.device("cpu"), 150 * 97), onnx_backend.OnnxNetwork)
    for run in (lambda: predict_tiled(net, image, tile_size=64, device="cpu"),
                lambda: predict_whole(net, image, device="cpu")):
        ort = run()
        ref = without_onnx(monkeypatch, run)
        assert ort.keys() == ref.keys()
        for k in ref:
            assert ort[k].shape == ref[k].shape
            np.testing.assert_allclose(ort[k], ref[k], atol=1e-5)


def test_exported_once_per_weights_and_again_after_a_change(monkeypatch):
    monkeypatch.setattr(onnx_backend, "MIN_PIXELS", 0)
    net = trained_like(1)
    cpu = torch.device("cpu")
    first = inference_network(net, cpu, 64 * 64)
    assert inference_network(net, cpu, 64 * 64) is first
    with torch.no_grad():
        next(net.parameters()).add_(0.1)     # what an optimiser step does
    second = inference_network(net, cpu, 64 * 64)
    assert isinstance(second, onnx_backend.OnnxNetwork) and second is not first


def test_small_images_without_an_export_run_in_pytorch():
    net = trained_like(2)
    assert not isinstance(inference_network(net, torch.device("cpu"), 256 * 256), onnx_backend.OnnxNetwork)
    assert isinstance(inference_network(net, torch.device("cpu"), onnx_backend.MIN_PIXELS),
                      onnx_backend.OnnxNetwork)
    # once exported, small images use it too
    assert isinstance(inference_network(net, torch.device("cpu"), 16), onnx_backend.OnnxNetwork)


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(onnx_backend.ENV, "0")
    net = trained_like(3)
    assert not onnx_backend.available()
    assert not isinstance(inference_network(net, torch.device("cpu"), 1 << 24), onnx_backend.OnnxNetwork)


def test_a_failed_export_falls_back_to_pytorch_with_one_warning(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no such operator")

    monkeypatch.setattr(onnx_backend.OnnxNetwork, "__init__", broken)
    monkeypatch.setattr(onnx_backend, "_WARNED", [])
    net = trained_like(4)
    image = np.random.default_rng(1).random((1, 40, 40), dtype=np.float32)
    with pytest.warns(RuntimeWarning, match="ONNX Runtime not used"):
        assert not isinstance(inference_network(net, torch.device("cpu"), 1 << 24), onnx_backend.OnnxNetwork)
    out = predict_tiled(net, image, device="cpu")
    assert np.isfinite(out[net.task_names[0]]).all()
