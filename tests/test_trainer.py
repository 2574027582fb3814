import dataclasses

import numpy as np
import pytest

from napari_lazylabels.engine.annotations import PaintedImage
from napari_lazylabels.engine.regimes.registry import default_tasks
from napari_lazylabels.engine.training.losses import auto_class_weights
from napari_lazylabels.engine.training.progress import TrainingProgress
from napari_lazylabels.engine.training.trainer import Trainer, learning_rate_at
from napari_lazylabels.errors import AnnotationError
from napari_lazylabels.recipes.train import TrainingPlan, prepare

TASKS = default_tasks(1)


def _training(lazy_set):
    """The training items of a painted set (checked once, targets by task): what the trainer trusts."""
    prepared = prepare(TrainingPlan(lazy_set[0]))
    assert [t.name for t in prepared.tasks] == [t.name for t in TASKS]
    return prepared.items


def test_reports_are_typed_and_complete(small_lazy_set, tiny_network, quick_config):
    items = _training(small_lazy_set)
    trainer = Trainer(items, TASKS, network=tiny_network, config=quick_config)
    reports = list(trainer.run())
    assert [r.step for r in reports] == list(range(1, 7))
    last = reports[-1]
    assert isinstance(last, TrainingProgress) and last.done and not last.stopped
    assert set(last.losses) == {t.name for t in TASKS}
    assert last.patches_per_s > 0 and last.eta_s == pytest.approx(0, abs=1e-6)
    assert last.device.startswith("cpu")


def test_a_report_is_a_snapshot(small_lazy_set, tiny_network, quick_config):
    items = _training(small_lazy_set)
    trainer = Trainer(items, TASKS, network=tiny_network, config=quick_config)
    runner = trainer.run()
    first = next(runner)
    losses = dict(first.losses)
    list(runner)
    assert first.losses == losses and first.step == 1
    assert len(trainer.history["total"]) == 6


def test_loss_goes_down(small_lazy_set, tiny_network, quick_config):
    items = _training(small_lazy_set)
    cfg = dataclasses.replace(quick_config, steps=80, batch_size=4, learning_rate=5e-3)
    losses = [r.loss for r in Trainer(items, TASKS, network=tiny_network, config=cfg).run()]
    assert np.mean(losses[-15:]) < 0.8 * np.mean(losses[:15])


def test_same_seed_same_run(small_lazy_set, tiny_network, quick_config):
    items = _training(small_lazy_set)
    runs = [[r.loss for r in Trainer(items, TASKS, network=tiny_network, config=quick_config).run()]
            for _ in range(2)]
    assert runs[0] == runs[1]
    other = dataclasses.replace(quick_config, seed=1)
    assert [r.loss for r in Trainer(items, TASKS, network=tiny_network, config=other).run()] != runs[0]


def test_stop_between_steps_then_continue_from_the_state(small_lazy_set, tiny_network, quick_config):
    items = _training(small_lazy_set)
    trainer = Trainer(items, TASKS, network=tiny_network, config=quick_config)
    for report in trainer.run():
        if report.step == 2:
            trainer.stop()
    assert report.step == 2 and report.stopped
    state = trainer.training_state()
    resumed = Trainer(items, TASKS, network=trainer.network, config=quick_config, state=state)
    assert resumed.step == 2
    assert [r.step for r in resumed.run()] == [3, 4, 5, 6]
    assert resumed.model().provenance["trained_steps"] == 6
    assert len(resumed.history["total"]) == 6


def test_replaced_targets_move_centres_counts_and_weights(small_lazy_set, tiny_network, quick_config):
    items = _training(small_lazy_set)
    trainer = Trainer(items, TASKS, network=tiny_network, config=quick_config)
    task = TASKS[0]
    i = trainer.sampler.by_task[task.name][0]
    before = trainer.sampler.class_counts(task).copy()
    old = trainer.sampler.images[i].targets[task.name].copy()      # a view of the stack, changed in place
    new = np.zeros_like(old)
    new[:8, :] = 1
    trainer.replace_targets(i, task.name, new)
    im = trainer.sampler.images[i]
    assert np.array_equal(im.targets[task.name], new)
    assert set(map(tuple, im.centres[task.name])) <= set(map(tuple, np.argwhere(new > 0)))
    after = trainer.sampler.class_counts(task)
    valid = im.valid[task.name]
    assert after[1] - before[1] == int((new[valid] == 1).sum()) - int((old[valid] == 1).sum())
    np.testing.assert_allclose(trainer.class_weights[task.name].numpy(),
                               auto_class_weights(after, quick_config.class_weight_cap), rtol=1e-6)


def test_learning_rate_warms_up_and_decays(quick_config):
    cfg = dataclasses.replace(quick_config, steps=100, warmup_steps=10)
    lrs = [learning_rate_at(s, cfg) for s in range(100)]
    assert lrs[0] < lrs[9] and max(lrs) == pytest.approx(cfg.learning_rate, rel=0.05)
    assert lrs[-1] < 0.1 * cfg.learning_rate


def test_nothing_annotated_is_refused_at_the_boundary():
    empty = [PaintedImage(np.zeros((32, 32), np.float32), {"detection": np.zeros((32, 32), np.uint8)}, name="blank")]
    with pytest.raises(AnnotationError, match="no image is annotated"):
        prepare(TrainingPlan(empty))


def test_hooks_run_every_n_steps(small_lazy_set, tiny_network, quick_config):
    items = _training(small_lazy_set)
    trainer = Trainer(items, TASKS, network=tiny_network, config=quick_config)
    seen = []
    trainer.add_hook(2, lambda t: seen.append(t.step))
    list(trainer.run())
    assert seen == [2, 4, 6]


def _batches_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        _batches_equal(a[k], b[k]) if isinstance(a[k], dict) else bool((a[k] == b[k]).all()) for k in a)


def test_prefetched_batches_are_the_batches_drawn_in_turn(small_lazy_set, tiny_network, quick_config):
    """Drawing ahead in a thread changes nothing: the same batches in the same order, also when
    the targets change or a task is excluded while a batch is drawn ahead (it is dropped, the
    generator rewound)."""
    items = _training(small_lazy_set)
    plain = Trainer(items, TASKS, network=tiny_network, config=quick_config).sampler
    ahead = Trainer(items, TASKS, network=tiny_network, config=quick_config).sampler
    task = TASKS[0].name
    new = (plain.images[1].targets[task] > 0).astype(np.int16)

    def script(sampler, prefetch):
        out = []
        for i in range(6):
            out.append(sampler.sample(2))
            if prefetch:
                sampler.prefetch(2)
            if i == 2:
                sampler.set_targets(1, task, new)
            if i == 4:
                sampler.exclude_from_draw(TASKS[1].name)
        out.append(sampler.sample(3))      # another size than the one drawn ahead
        return out

    for a, b in zip(script(plain, False), script(ahead, True)):
        assert _batches_equal(a, b)
    assert ahead._ahead is None


def test_a_failure_while_drawing_ahead_is_raised_by_the_next_sample(small_lazy_set, tiny_network, quick_config):
    items = _training(small_lazy_set)
    sampler = Trainer(items, TASKS, network=tiny_network, config=quick_config).sampler
    def fail(*args):
        raise RuntimeError("drawing failed")
    sampler._patch_into = fail                 # every draw now fails
    sampler.prefetch(2)
    with pytest.raises(RuntimeError, match="drawing failed"):
        sampler.sample(2)


def test_training_with_prefetch_equals_training_without(small_lazy_set, tiny_network, quick_config, monkeypatch):
    items = _training(small_lazy_set)
    with_ahead = Trainer(items, TASKS, network=tiny_network, config=quick_config)
    assert not with_ahead.prefetch                    # off on the CPU by default
    with_ahead.prefetch = True
    losses = [r.loss for r in with_ahead.run()]
    assert with_ahead.sampler._ahead is None          # the run ends with no thread left
    monkeypatch.setattr(type(with_ahead.sampler), "prefetch", lambda self, *a, **k: None)
    in_turn = Trainer(items, TASKS, network=tiny_network, config=quick_config)
    assert [r.loss for r in in_turn.run()] == losses


def test_channels_last_training_equals_nchw_training(small_lazy_set, tiny_network, quick_config, monkeypatch):
    import torch

    items = _training(small_lazy_set)
    cl = Trainer(items, TASKS, network=tiny_network, config=quick_config)
    convs = [m.weight for m in cl.network.modules() if isinstance(m, torch.nn.Conv2d)
             and m.kernel_size == (3, 3) and m.in_channels > 1]
    assert all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in convs)
    losses = [r.loss for r in cl.run()]
    monkeypatch.setattr(Trainer, "memory_format", torch.contiguous_format)
    nchw = Trainer(items, TASKS, network=tiny_network, config=quick_config)
    assert all(m.weight.is_contiguous() for m in nchw.network.modules() if isinstance(m, torch.nn.Conv2d))
    np.testing.assert_allclose([r.loss for r in nchw.run()], losses, rtol=1e-4)


def test_cuda_training_autocasts_to_bfloat16_where_the_gpu_has_it(monkeypatch):
    import torch

    from napari_lazylabels.engine import device as dev
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert dev.autocast_dtype(cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert dev.autocast_dtype(cuda) == torch.float16
    assert dev.autocast_dtype(torch.device("cpu")) == torch.float16   # never used: no autocast on the CPU
