import numpy as np
import torch
import torch.nn.functional as F

from napari_lazylabels.engine.training.losses import auto_class_weights, partial_cross_entropy, total_loss
from napari_lazylabels.engine.regimes.registry import default_tasks


def test_unannotated_images_and_invalid_pixels_give_no_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    target = torch.randint(0, 2, (2, 8, 8))
    valid = torch.zeros(2, 8, 8, dtype=torch.bool)
    valid[0, :4] = True
    annotated = torch.tensor([True, False])
    loss = partial_cross_entropy(logits, target, valid, annotated)
    loss.backward()
    # only image 0's valid half has gradient
    g = logits.grad.abs().sum(1)
    assert g[1].sum() == 0 and g[0, 4:].sum() == 0 and g[0, :4].sum() > 0
    expected = F.cross_entropy(logits[:1, :, :4], target[:1, :4])
    assert torch.allclose(loss, expected)


def test_no_annotated_image_gives_none():
    logits = torch.randn(1, 2, 4, 4)
    assert partial_cross_entropy(logits, torch.zeros(1, 4, 4), torch.ones(1, 4, 4, dtype=torch.bool),
                                 torch.tensor([False])) is None


def test_class_weights_scale_the_rare_class():
    logits = torch.zeros(1, 2, 4, 4)
    target = torch.ones(1, 4, 4, dtype=torch.long)
    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    ann = torch.tensor([True])
    plain = partial_cross_entropy(logits, target, valid, ann)
    weighted = partial_cross_entropy(logits, target, valid, ann, torch.tensor([1.0, 5.0]))
    assert torch.allclose(weighted, plain * 5)


def test_auto_class_weights_are_capped():
    w = auto_class_weights(np.array([10000, 1, 0]), cap=10)
    assert w[0] == 1 and w[1] == 10 and w[2] == 1


def test_total_loss_weights_tasks_and_reports_missing_ones():
    tasks = default_tasks(1, {"detection": 2.0})
    out = {t.name: torch.zeros(1, t.n_classes, 4, 4) for t in tasks}
    ones = torch.ones(1, 4, 4, dtype=torch.bool)
    batch = {"targets": {t.name: torch.zeros(1, 4, 4, dtype=torch.long) for t in tasks},
             "valid": {t.name: ones for t in tasks},
             "annotated": {"detection": torch.tensor([True]), "separation": torch.tensor([False]),
                           "segmentation": torch.tensor([True])}}
    total, parts = total_loss(out, batch, tasks, {})
    assert np.isnan(parts["separation"])
    assert np.isclose(float(total), 3 * np.log(2), atol=1e-6)
