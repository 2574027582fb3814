import pytest
import torch

from napari_lazylabels.errors import SettingsError

from napari_lazylabels.engine.config import NetworkConfig, preset
from napari_lazylabels.engine.model import MultiTaskBlock, build_model, receptive_radius
from napari_lazylabels.engine.regimes.registry import baseline_tasks, default_tasks
from napari_lazylabels.engine.tasks import TaskSpec


def test_heads_and_shapes():
    model = build_model(preset("tiny"), default_tasks(2))
    out = model(torch.randn(2, 1, 32, 48))
    assert set(out) == {"detection", "separation", "segmentation"}
    assert out["detection"].shape == (2, 3, 32, 48)
    assert out["separation"].shape == (2, 2, 32, 48)
    assert out["segmentation"].shape == (2, 3, 32, 48)


def test_multitask_blocks_share_detection_and_segmentation_weights():
    cfg = NetworkConfig(depth=4, base_channels=4, multitask_levels=2)
    model = build_model(cfg, default_tasks(1))
    blocks = [m for m in model.modules() if isinstance(m, MultiTaskBlock)]
    assert len(blocks) == 2
    # separation path reads the segmentation path: changing the residual sub-block
    # (segmentation only) changes separation and segmentation, not detection
    model.eval()
    x = torch.randn(1, 1, 32, 32)
    before = model(x)
    with torch.no_grad():
        for p in blocks[-1].residual.parameters():
            p.add_(0.5)
    after = model(x)
    assert torch.allclose(before["detection"], after["detection"])
    assert not torch.allclose(before["segmentation"], after["segmentation"])
    assert not torch.allclose(before["separation"], after["separation"])


def test_plain_unet_has_no_multitask_blocks():
    model = build_model(preset("cpu", multitask=False), baseline_tasks())
    assert not any(isinstance(m, MultiTaskBlock) for m in model.modules())
    assert set(model(torch.randn(1, 1, 16, 16))) == {"segmentation"}


def test_extra_task_is_just_another_head():
    tasks = default_tasks(1) + [TaskSpec("extra", 2, "plain")]
    model = build_model(preset("tiny"), tasks)
    assert model(torch.randn(1, 1, 16, 16))["extra"].shape == (1, 2, 16, 16)


def test_receptive_radius_bounds_the_influence_of_a_pixel():
    torch.manual_seed(0)
    model = build_model(preset("tiny"), default_tasks(1)).eval().double()
    r = receptive_radius(model)
    x = torch.randn(1, 1, 96, 96, dtype=torch.float64)
    y = x.clone()
    y[0, 0, 48, 48] += 10.0
    with torch.no_grad():
        a, b = model(x), model(y)
    diff = sum((a[k] - b[k]).abs().amax(1)[0] for k in a)
    ys, xs = torch.nonzero(diff > 0, as_tuple=True)
    reach = int(max((ys - 48).abs().max(), (xs - 48).abs().max()))
    assert 0 < reach <= r


def test_smallest_depth_is_accepted():
    assert NetworkConfig(depth=2, multitask_levels=1).size_multiple == 2


@pytest.mark.parametrize("depth", [1, 9, 2.5])
def test_bad_depth_is_refused(depth):
    with pytest.raises(SettingsError, match="depth must be a whole number >= 2 and <= 8"):
        NetworkConfig(depth=depth)
