import dataclasses
import json
import math

import numpy as np
import pytest

from napari_lazylabels.cli import main
from napari_lazylabels.io.modelio import load_model
from napari_lazylabels.engine.regimes.recursive import (APPROXIMATION, RecursiveConfig, attach_recursive, final_growth,
                                         grow_objects, grow_region, level_set, load_rounds,
                                         recursive_settings, seeds_from_classes, split_foreground,
                                         with_approximation, with_approximation_labels)
from napari_lazylabels.engine.tasks import lazy_tasks
from napari_lazylabels.engine.training.trainer import Trainer


def disk(shape, cy, cx, r):
    y, x = np.ogrid[:shape[0], :shape[1]]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


SHAPE = (64, 64)
SHAT = disk(SHAPE, 32, 32, 20)
SEED = disk(SHAPE, 30, 34, 4)


# --- the growth rule ---------------------------------------------------------------------

def test_lambda_zero_keeps_the_region():
    assert np.array_equal(grow_region(SEED, SHAT, 0.0), SEED)
    assert np.array_equal(level_set(SEED, SHAT, 0.0) <= 0, SEED)


def test_very_large_lambda_gives_the_predicted_region():
    assert np.array_equal(grow_region(SEED, SHAT, 1e6), SHAT)
    assert np.array_equal(grow_region(SEED, SHAT, math.inf), SHAT)


def test_larger_lambda_grows_more_and_never_shrinks():
    sizes = []
    previous = SEED
    for lam in (0.1, 0.3, 0.5, 1.0, 2.0, 5.0):
        grown = grow_region(SEED, SHAT, lam)
        assert np.all(grown[SEED])                       # S^r is kept
        assert np.all(grown[previous])                   # monotone in lambda
        assert not np.any(grown & ~SHAT & ~SEED)         # never outside Shat
        sizes.append(int(grown.sum()))
        previous = grown
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_growth_slows_near_the_predicted_boundary():
    """Each round takes a part of the remaining depth: the gain shrinks round by round."""
    region, gains = SEED, []
    for _ in range(4):
        grown = grow_region(region, SHAT, 0.5)
        gains.append(int(grown.sum() - region.sum()))
        region = grown
    assert gains[0] > 0 and gains[-1] < gains[0]
    # about 1/lambda px inside the boundary growth stops: the region stays inside Shat
    depth = np.sqrt(((np.argwhere(region) - 32) ** 2).sum(1)).max()
    assert 14 <= depth < 20


def test_seed_outside_the_prediction_does_not_grow():
    assert np.array_equal(grow_region(SEED, np.zeros(SHAPE, bool), 5.0), SEED)


def test_splitting_keeps_each_seed_in_its_own_part():
    # two touching disks form one predicted component; each seed sits in one
    fg = disk(SHAPE, 32, 20, 12) | disk(SHAPE, 32, 42, 12)
    inst = np.zeros(SHAPE, np.int32)
    inst[disk(SHAPE, 32, 18, 3)] = 1
    inst[disk(SHAPE, 32, 44, 3)] = 2
    parts = split_foreground(inst, fg)
    assert set(np.unique(parts)) == {0, 1, 2}
    assert np.all(parts[inst == 1] == 1) and np.all(parts[inst == 2] == 2)
    # the cut runs along the neck (x about 31) and separates the two parts
    cut = fg & (parts == 0)
    assert cut.any() and np.all(np.abs(np.argwhere(cut)[:, 1] - 31) <= 2)
    grown = grow_objects(inst, fg, 1e6)
    assert set(np.unique(grown)) == {0, 1, 2}
    for k in (1, 2):
        from scipy import ndimage as ndi
        assert ndi.label(grown == k)[1] == 1             # one piece each
    assert np.all(grown[:, :29] != 2) and np.all(grown[:, 34:] != 1)
    # the grown objects never touch (4-connectivity): no merge
    assert not np.any((grown[:, :-1] == 1) & (grown[:, 1:] == 2))
    assert (grown > 0).sum() >= 0.95 * fg.sum()


def test_multi_object_growth_keeps_the_class():
    fg = disk(SHAPE, 20, 20, 10) | disk(SHAPE, 44, 44, 10)
    blobs = np.zeros(SHAPE, np.int32)
    blobs[disk(SHAPE, 20, 20, 3)] = 2
    blobs[disk(SHAPE, 44, 44, 3)] = 1
    inst, classes = seeds_from_classes(blobs)
    assert sorted(classes.values()) == [1, 2]
    grown = grow_objects(inst, fg, 1.0)
    for k, c in classes.items():
        assert np.all(blobs[grown == k] == 0) or set(np.unique(blobs[grown == k])) <= {0, c}
        assert (grown == k).sum() > (inst == k).sum()
    # a foreground component without a seed is left alone
    extra = fg | disk(SHAPE, 8, 56, 5)
    assert not np.any(grow_objects(inst, extra, 1e6)[disk(SHAPE, 8, 56, 5)])


def test_gap_keeps_touching_objects_apart():
    fg = disk(SHAPE, 32, 20, 12) | disk(SHAPE, 32, 42, 12)
    inst = np.zeros(SHAPE, np.int32)
    inst[disk(SHAPE, 32, 18, 3)] = 1
    inst[disk(SHAPE, 32, 44, 3)] = 2
    from scipy import ndimage as ndi
    for gap in (0, 1, 2):
        grown = grow_objects(inst, fg, 1e6, gap=gap)
        d = ndi.distance_transform_edt(grown != 1)[grown == 2].min()
        assert d >= gap + 1
        assert np.all(grown[inst > 0] == inst[inst > 0])


def test_final_growth_splits_approximations_holding_two_blobs():
    fg = disk(SHAPE, 32, 20, 12) | disk(SHAPE, 32, 42, 12)
    seg = np.stack([~fg, fg]).astype(np.float32)
    approx = np.stack([~fg, fg]).astype(np.float32)          # the head joined the two objects
    blobs = disk(SHAPE, 32, 18, 3) | disk(SHAPE, 32, 44, 3)
    det = np.stack([~blobs, blobs]).astype(np.float32)
    result = final_growth({"segmentation": seg, APPROXIMATION: approx, "detection": det}, 10.0)
    assert result.n_objects == 2
    assert (result.instances > 0).sum() >= 0.98 * fg.sum()   # the cut line is given back
    assert result.instances[32, 18] != result.instances[32, 44]


def test_final_growth_from_probabilities():
    seg = np.stack([~SHAT, SHAT]).astype(np.float32)
    approx = np.stack([~SEED, SEED]).astype(np.float32)
    result = final_growth({"segmentation": seg, APPROXIMATION: approx}, 1e6)
    assert result.n_objects == 1
    assert np.array_equal(result.instances > 0, SHAT)
    assert np.array_equal(result.semantic, SHAT.astype(np.int32))
    small = final_growth({"segmentation": seg, APPROXIMATION: approx}, 0.0)
    assert np.array_equal(small.instances > 0, SEED)


def test_config_validation_and_round_steps():
    assert RecursiveConfig(rounds=4).round_steps(100) == 20
    assert RecursiveConfig(rounds=4, steps_per_round=7).round_steps(100) == 7
    with pytest.raises(ValueError):
        RecursiveConfig(lambda_train=-1)
    cfg = RecursiveConfig(rounds=3, lambda_final=4.0)
    assert RecursiveConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_task_and_labels():
    tasks = with_approximation(lazy_tasks(2))
    assert [t.name for t in tasks][-1] == APPROXIMATION
    assert tasks[-1].n_classes == 3 and tasks[-1].features == "detection"
    assert with_approximation(tasks) == tasks


# --- end to end --------------------------------------------------------------------------

def test_two_rounds_on_a_tiny_run(small_lazy_set, tiny_network, quick_config, tmp_path):
    items, truths = small_lazy_set
    tasks = with_approximation(lazy_tasks(1))
    cfg = dataclasses.replace(quick_config, steps=6, preview_every=1000)
    trainer = Trainer(with_approximation_labels(items), tasks, tiny_network, cfg)
    rec = attach_recursive(trainer, RecursiveConfig(rounds=2, steps_per_round=2, lambda_train=2.0))
    assert APPROXIMATION not in trainer.sampler.active_tasks      # rides along on every patch
    reports = list(trainer.run())
    assert reports[-1].step == 6 and not np.isnan(reports[-1].losses[APPROXIMATION])
    assert rec.current_round == 2 and rec.round_steps == [0, 2, 4]
    for i, im in enumerate(trainer.sampler.images):
        first, last = rec.rounds[0][i], rec.rounds[-1][i]
        assert np.array_equal(im.targets[APPROXIMATION], last)
        assert np.all(last[first > 0] == first[first > 0])       # blobs kept, with their class
        assert np.array_equal(rec.instances[-1][i] > 0, last > 0)
    rec.save(tmp_path / "approximations")
    saved = load_rounds(tmp_path / "approximations")
    assert sorted(saved) == [0, 1, 2]
    assert np.array_equal(saved[2]["approximation_000"], rec.rounds[2][0])
    assert list(saved[0]["names"]) == [it.name for it in items]
    # a resumed run continues from the saved round
    again = Trainer(with_approximation_labels(items), tasks, tiny_network, cfg)
    restored = attach_recursive(again, RecursiveConfig(rounds=2, steps_per_round=2),
                                resume_from=tmp_path / "approximations")
    assert restored.current_round == 2
    for im, last in zip(again.sampler.images, rec.rounds[-1]):
        assert np.array_equal(im.targets[APPROXIMATION], last)


def test_cli_train_recursive_then_predict(small_lazy_set, tmp_path):
    import tifffile
    items, _ = small_lazy_set
    rows = ["image,detection,separation,segmentation"]
    for i, it in enumerate(items):
        np.save(tmp_path / f"im{i}.npy", it.image)
        cells = [f"im{i}.npy"]
        for task in ("detection", "separation", "segmentation"):
            lab = it.labels.get(task)
            if lab is None:
                cells.append("")
            else:
                np.save(tmp_path / f"{task}{i}.npy", lab)
                cells.append(f"{task}{i}.npy")
        rows.append(",".join(cells))
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    model_dir = tmp_path / "model"
    rc = main(["train", "--data", str(tmp_path / "data.csv"), "--model", str(model_dir), "--steps", "6",
               "--patch-size", "32", "--batch-size", "2", "--preset", "tiny", "--device", "cpu", "--quiet",
               "--recursive", "--rounds", "2", "--steps-per-round", "2", "--lambda-train", "1",
               "--lambda-final", "3"])
    assert rc == 0
    model = load_model(model_dir)
    assert APPROXIMATION in model.task_names
    assert recursive_settings(model) == RecursiveConfig(rounds=2, steps_per_round=2, lambda_train=1.0,
                                                        lambda_final=3.0)
    assert sorted(load_rounds(model_dir / "approximations")) == [0, 1, 2]
    out = tmp_path / "pred.tif"
    assert main(["predict", "--model", str(model_dir), "--image", str(tmp_path / "im0.npy"),
                 "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    assert tifffile.imread(out).shape == items[0].image.shape
    # every caller of pipeline.segment (the CLI, the napari widgets) gets the final growth
    from napari_lazylabels.engine.pipeline import segment
    expected = final_growth(model.predict(items[0].image), 3.0)
    np.testing.assert_array_equal(segment(model, items[0].image).instances, expected.instances)
    np.testing.assert_array_equal(tifffile.imread(out), expected.instances)
