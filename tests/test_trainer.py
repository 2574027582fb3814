import dataclasses

import numpy as np
import pytest

from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.errors import AnnotationError
from napari_lazylabels.io.modelio import load_model, load_training_state
from napari_lazylabels.engine.training.progress import TrainingProgress
from napari_lazylabels.engine.training.trainer import Trainer, learning_rate_at


def test_reports_are_typed_and_complete(small_lazy_set, tiny_network, quick_config):
    items, _ = small_lazy_set
    trainer = Trainer(items, network=tiny_network, config=quick_config, preview_image=items[0].image)
    reports = list(trainer.run())
    assert [r.step for r in reports] == list(range(1, 7))
    last = reports[-1]
    assert isinstance(last, TrainingProgress) and last.done and not last.stopped
    assert set(last.losses) == {"detection", "separation", "segmentation"}
    assert last.patches_per_s > 0 and last.eta_s == pytest.approx(0, abs=1e-6)
    assert last.device.startswith("cpu")
    previews = [r for r in reports if r.preview is not None]
    assert previews and previews[-1].step == 6
    seg = previews[-1].preview["segmentation"]
    assert seg.shape == (2,) + items[0].image.shape
    np.testing.assert_allclose(seg.sum(0), 1, atol=1e-5)


def test_loss_goes_down(small_lazy_set, tiny_network, quick_config):
    items, _ = small_lazy_set
    cfg = dataclasses.replace(quick_config, steps=80, batch_size=4, learning_rate=5e-3, preview_every=1000)
    losses = [r.loss for r in Trainer(items, network=tiny_network, config=cfg).run()]
    assert np.mean(losses[-15:]) < 0.8 * np.mean(losses[:15])


def test_same_seed_same_run(small_lazy_set, tiny_network, quick_config):
    items, _ = small_lazy_set
    runs = [[r.loss for r in Trainer(items, network=tiny_network, config=quick_config).run()] for _ in range(2)]
    assert runs[0] == runs[1]
    other = dataclasses.replace(quick_config, seed=1)
    assert [r.loss for r in Trainer(items, network=tiny_network, config=other).run()] != runs[0]


def test_stop_between_steps_then_resume(small_lazy_set, tiny_network, quick_config, tmp_path):
    items, _ = small_lazy_set
    ckpt = tmp_path / "ckpt"
    trainer = Trainer(items, network=tiny_network, config=quick_config, checkpoint_dir=ckpt)
    for report in trainer.run():
        if report.step == 2:
            trainer.stop()
    assert report.step == 2 and report.stopped and report.checkpoint == str(ckpt)
    assert load_training_state(ckpt)["step"] == 2
    resumed = Trainer(items, network=tiny_network, config=quick_config, resume=ckpt, checkpoint_dir=ckpt)
    assert resumed.step == 2
    steps = [r.step for r in resumed.run()]
    assert steps == [3, 4, 5, 6]
    assert load_model(ckpt).provenance["trained_steps"] == 6
    assert len(resumed.history["total"]) == 6


def test_learning_rate_warms_up_and_decays(quick_config):
    cfg = dataclasses.replace(quick_config, steps=100, warmup_steps=10)
    lrs = [learning_rate_at(s, cfg) for s in range(100)]
    assert lrs[0] < lrs[9] and max(lrs) == pytest.approx(cfg.learning_rate, rel=0.05)
    assert lrs[-1] < 0.1 * cfg.learning_rate


def test_nothing_annotated_is_refused(tiny_network, quick_config):
    empty = [LazyAnnotations(np.zeros((32, 32), np.float32),
                             {"detection": np.zeros((32, 32), np.uint8)}, name="blank")]
    with pytest.raises(AnnotationError, match="no image is annotated"):
        Trainer(empty, network=tiny_network, config=quick_config)


def test_hooks_run_every_n_steps(small_lazy_set, tiny_network, quick_config):
    items, _ = small_lazy_set
    trainer = Trainer(items, network=tiny_network, config=quick_config)
    seen = []
    trainer.add_hook(2, lambda t: seen.append(t.step))
    list(trainer.run())
    assert seen == [2, 4, 6]
