"""The points + foreground-mask regime (LACSS): points as an input, its targets and rounds, machine-made
labels (engine and ``lazylabels autolabel``), bad input refused in one line with nothing written."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tifffile

from napari_lazylabels.cli.main import main
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.autolabel import (FIXED, LI, OTSU, TRIANGLE, AutolabelConfig, autolabel,
                                                classical_instances, machine_mask, machine_points)
from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.pipeline import segment
from napari_lazylabels.engine.points import (check_points, partition_interfaces, point_disks,
                                             points_of_instances, seeded_partition)
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.regimes.lacss import (CELL_BOUNDARIES, CELLS, LOCAL_BOUNDARIES, LOCATIONS, MASK_KEY,
                                                    POINTS_KEY, REGIME, LacssConfig)
from napari_lazylabels.engine.regimes.targets import check_inputs
from napari_lazylabels.engine.synthetic import make_image
from napari_lazylabels.engine.tasks import BOUNDARIES, FOREGROUND, LOCAL, SEEDS, heads_by_role
from napari_lazylabels.errors import AnnotationError, SettingsError
from napari_lazylabels.io.manifest import load_manifest
from napari_lazylabels.io.modelio import load_artifacts, load_model
from napari_lazylabels.io.project import annotations_to_store, project_to_annotations, read_project, write_project
from napari_lazylabels.io.points import read_points_csv, write_points_csv
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun


def _two_touching(shape=(40, 60)):
    """Two discs of radius 10 whose edges overlap: one mask component, two objects."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    inst = np.zeros(shape, np.int32)
    inst[(yy - 20) ** 2 + (xx - 20) ** 2 <= 100] = 1
    inst[((yy - 20) ** 2 + (xx - 37) ** 2 <= 100) & (inst == 0)] = 2
    return inst


# ---------------------------------------------------------------- points as an input

def test_points_are_checked_into_y_x_class_and_refused_outside_the_image():
    pts = check_points(np.array([[0.4, 1.0], [9.49, 3.5]]), (10, 5), 1)
    assert pts.shape == (2, 3) and np.array_equal(pts[:, 2], [1, 1])
    assert check_points(np.zeros((0, 2)), (10, 5), 1).shape == (0, 3)
    with pytest.raises(AnnotationError, match="point 2 at y=9.5, x=3 lies outside the image \\(10 x 5 px\\)"):
        check_points([[1, 1], [9.5, 3]], (10, 5), 1)
    with pytest.raises(AnnotationError, match="class 3; classes are 1..2"):
        check_points([[1, 1, 3]], (10, 5), 2)
    with pytest.raises(AnnotationError, match="must be an \\(N, 2\\) array"):
        check_points(np.zeros((3, 4)), (10, 5), 1)
    with pytest.raises(AnnotationError, match="not a finite number"):
        check_points([[np.nan, 1]], (10, 5), 1)


def test_points_csv_in_either_header_with_classes_and_its_errors(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("index,axis-0,axis-1\n0,2.5,3\n1,7,1.25\n")
    assert np.array_equal(read_points_csv(a, (10, 10)), [[2.5, 3, 1], [7, 1.25, 1]])
    b = tmp_path / "b.csv"
    b.write_text("X,Y,class\n3,2,2\n4,5,\n")             # any order, any case, an empty class is 1
    assert np.array_equal(read_points_csv(b, (10, 10), 2), [[2, 3, 2], [5, 4, 1]])
    out = write_points_csv(tmp_path / "c.csv", read_points_csv(b, (10, 10), 2))
    assert out.read_text().splitlines()[0] == "y,x,class"
    assert np.array_equal(read_points_csv(out, (10, 10), 2), [[2, 3, 2], [5, 4, 1]])
    bad = tmp_path / "bad.csv"
    bad.write_text("row,col\n1,2\n")
    with pytest.raises(AnnotationError, match="bad.csv.*coordinate columns"):
        read_points_csv(bad, (10, 10))
    bad.write_text("y,x\n1,two\n")
    with pytest.raises(AnnotationError, match="line 2: 'two' is not a number"):
        read_points_csv(bad, (10, 10))


def test_points_live_in_a_project_store_as_a_table(tmp_path):
    image = np.zeros((12, 14), np.float32)
    item = LazyAnnotations(image=image, labels={POINTS_KEY: np.array([[2.0, 3.0, 1.0]]),
                                                MASK_KEY: np.ones((12, 14), np.uint8)}, name="a")
    write_project(tmp_path / "p", [annotations_to_store(item)])
    (store,) = read_project(tmp_path / "p")
    assert np.array_equal(store.points[POINTS_KEY], [[2, 3, 1]]) and MASK_KEY in store.labels
    (back,) = check_inputs(project_to_annotations([store]), 1)
    assert np.array_equal(back.labels[POINTS_KEY], [[2, 3, 1]]) and back.labels[MASK_KEY].max() == 1


def test_a_mask_saved_as_255_or_as_instances_is_read_as_a_mask():
    inst = _two_touching()
    (item,) = check_inputs([LazyAnnotations(image=inst.astype(np.float32), labels={MASK_KEY: inst * 100})], 1)
    assert set(np.unique(item.labels[MASK_KEY])) == {0, 1}


# ---------------------------------------------------------------- the geometry and the targets

def test_disks_partition_and_interfaces_split_two_touching_objects_at_their_neck():
    inst = _two_touching()
    pts = points_of_instances(inst)
    disks = point_disks(pts, inst.shape, 3, within=inst > 0)
    assert set(np.unique(disks)) == {0, 1, 2} and np.count_nonzero(disks == 1) < 30
    part = seeded_partition(inst > 0, disks)
    assert np.array_equal(part > 0, inst > 0)
    agree = max(np.mean(part[inst > 0] == inst[inst > 0]), np.mean(part[inst > 0] == 3 - inst[inst > 0]))
    assert agree > 0.95
    cut = partition_interfaces(part, 3)
    cols = np.nonzero(cut.any(axis=0))[0]
    assert cut.any() and 25 <= cols.min() and cols.max() <= 32       # around the neck at x ~ 28.5


def test_parts_a_thin_line_apart_meet_at_an_interface_over_the_line():
    # two rods side by side, 2 px of background between them (a cut of a machine-made mask), and a third
    # one 10 px away
    part = np.zeros((40, 60), np.int32)
    part[5:35, 10:20] = 1
    part[5:35, 22:32] = 2
    part[5:35, 42:52] = 3
    line = np.s_[5:35, 20:22]
    assert not partition_interfaces(part, 3).any()                      # the parts do not touch
    cut = partition_interfaces(part, 3, gap=4)
    assert cut[line].all()                                              # the line is the interface's core
    assert cut[5:35, 19].all() and cut[5:35, 22].all()                  # and 1 px of each rod beside it
    assert not cut[:, 33:].any() and not cut[:, :18].any()              # the far rod meets none
    assert np.array_equal(partition_interfaces(part, 3, gap=1), partition_interfaces(part, 3))  # too wide a line
    # the targets: the interface covers the line, the foreground keeps it background
    mask = part > 0
    pts = np.array([[20.0, 15.0, 1.0], [20.0, 27.0, 1.0], [20.0, 47.0, 1.0]])
    (item,) = check_inputs([LazyAnnotations(image=mask.astype(np.float32),
                                            labels={POINTS_KEY: pts, MASK_KEY: mask.astype(np.uint8)})], 1)
    tasks = REGIME.configure(LacssConfig()).tasks(1)
    out = REGIME.configure(LacssConfig()).targets(item, {}, tasks)
    assert out[CELL_BOUNDARIES][0][line].all() and not out[CELLS][0][line].any()
    off = REGIME.configure(LacssConfig(interface_gap=0)).targets(item, {}, tasks)
    assert not off[CELL_BOUNDARIES][0].any()


def test_targets_of_points_and_a_mask():
    inst = _two_touching()
    labels = REGIME.simulate(inst)
    tasks = REGIME.configure(LacssConfig()).tasks(1)
    assert [(t.name, t.role, t.features) for t in tasks] == [
        (LOCATIONS, SEEDS, "plain"), (CELLS, FOREGROUND, "refined"), (CELL_BOUNDARIES, BOUNDARIES, "boundary"),
        (LOCAL_BOUNDARIES, None, LOCAL)]
    (item,) = check_inputs([LazyAnnotations(image=inst.astype(np.float32), labels=labels)], 1)
    out = REGIME.configure(LacssConfig()).targets(item, {}, tasks)
    assert np.array_equal(out[CELLS][0], inst > 0)
    loc = out[LOCATIONS][0]
    assert set(np.unique(loc)) == {0, 1} and np.all(inst[loc > 0] > 0)
    assert np.array_equal(out[CELL_BOUNDARIES][0], out[LOCAL_BOUNDARIES][0]) and out[CELL_BOUNDARIES][0].any()
    # without the boundary task and the auxnet: two tasks
    assert [t.name for t in REGIME.configure(LacssConfig(boundary_task=False, auxiliary_head=False)).tasks(1)] == \
        [LOCATIONS, CELLS]
    # a mask without points trains the foreground task only
    (mask_only,) = check_inputs([LazyAnnotations(image=inst.astype(np.float32), labels={MASK_KEY: inst > 0})], 1)
    got = REGIME.configure().targets(mask_only, {}, tasks)
    assert got[CELLS][1] and not got[LOCATIONS][1] and got[LOCATIONS][0] is None


def test_points_without_a_mask_or_with_an_empty_one_are_refused():
    inst = _two_touching()
    tasks = REGIME.configure().tasks(1)
    for mask in (np.zeros_like(inst), None):
        labels = {POINTS_KEY: points_of_instances(inst), MASK_KEY: mask}
        (item,) = check_inputs([LazyAnnotations(image=inst.astype(np.float32), labels=labels, name="img")], 1)
        with pytest.raises(AnnotationError, match="img: has 2 point\\(s\\) but its foreground mask is"):
            REGIME.configure().targets(item, {}, tasks)


def test_config_is_checked():
    for bad in ({"disk_radius": 0}, {"interface_width": 0}, {"interface_gap": -1}, {"partition_rounds": -1},
                {"boundary_task": 1}):
        with pytest.raises(SettingsError):
            LacssConfig(**bad)


# ---------------------------------------------------------------- training: rounds, resume, inference

def _items(n=3, shape=(64, 64)):
    out, truths = [], []
    for s in range(n):
        im = make_image(40 + s, shape=shape, touching=0.5)
        out.append(LazyAnnotations(image=im.image, labels=REGIME.simulate(im.instances), name=f"im{s}"))
        truths.append(im)
    return out, truths


def test_rounds_repartition_the_mask_and_resume_continues(tmp_path):
    items, _ = _items()
    cfg = TrainConfig(steps=6, patch_size=32, batch_size=2, checkpoint_every=100, device="cpu")
    opts = LacssConfig(partition_rounds=2)
    run = TrainingRun(TrainingPlan(items, network=preset("tiny"), config=cfg, options={REGIME.name: opts},
                                   model_dir=tmp_path / "m"))
    assert [t.name for t in run.tasks] == [LOCATIONS, CELLS, CELL_BOUNDARIES, LOCAL_BOUNDARIES]
    reports = list(run.run())
    assert all(np.isfinite(reports[-1].losses[t]) for t in (LOCATIONS, CELLS, CELL_BOUNDARIES, LOCAL_BOUNDARIES))
    hook = run.hooks[REGIME.name]
    assert hook.current_round == 2 and hook.round_steps == [0, 2, 4]
    for i, im in enumerate(run.trainer.sampler.images):
        part = hook.partitions[-1][i]
        assert np.array_equal(part > 0, np.asarray(im.targets[CELLS]) > 0)          # covers the mask
        assert np.array_equal(im.targets[CELL_BOUNDARIES], opts.interfaces(part))
        assert len(np.unique(part[part > 0])) == len(items[i].labels[POINTS_KEY])  # one part per point
    saved = load_artifacts(tmp_path / "m")
    assert sorted(k for k in saved if k.endswith(".npz")) == [f"partitions/round_{r:02d}.npz" for r in range(3)]
    model = load_model(tmp_path / "m")
    roles = heads_by_role({t.name: t.name for t in model.tasks}, model.tasks)
    assert (roles[SEEDS], roles[FOREGROUND], roles[BOUNDARIES]) == (LOCATIONS, CELLS, CELL_BOUNDARIES)
    result = segment(model, items[0].image, device="cpu")
    assert result.instances.shape == items[0].image.shape
    again = TrainingRun(TrainingPlan(items, network=preset("tiny"), config=dataclasses.replace(cfg, steps=8),
                                     options={REGIME.name: opts}, resume=tmp_path / "m"))
    restored = again.hooks[REGIME.name]
    assert restored.current_round == 2
    for im, part in zip(again.trainer.sampler.images, hook.partitions[-1]):
        assert np.array_equal(im.targets[CELL_BOUNDARIES], opts.interfaces(part))


def test_no_rounds_and_no_auxnet_train_too(tmp_path):
    items, _ = _items(2)
    cfg = TrainConfig(steps=2, patch_size=32, batch_size=2, checkpoint_every=100, device="cpu")
    run = TrainingRun(TrainingPlan(items, network=preset("tiny"), config=cfg, model_dir=tmp_path / "m",
                                   options={REGIME.name: LacssConfig(partition_rounds=0, auxiliary_head=False)}))
    list(run.run())
    assert REGIME.name not in run.hooks and run.trainer.network.local is None


def test_with_the_lazy_regimes_their_heads_take_the_roles(small_lazy_set):
    items, truths = small_lazy_set
    both = [LazyAnnotations(image=it.image, labels={**it.labels, **REGIME.simulate(tr.instances)},
                            roi=it.roi, name=it.name) for it, tr in zip(items, truths)]
    run = TrainingRun(TrainingPlan(both, network=preset("tiny"),
                                   config=TrainConfig(steps=1, patch_size=32, batch_size=2, device="cpu")))
    roles = heads_by_role({t.name: t.name for t in run.tasks}, run.tasks)
    assert roles[SEEDS] != LOCATIONS and roles[FOREGROUND] != CELLS and LOCATIONS in [t.name for t in run.tasks]


# ---------------------------------------------------------------- machine-made labels

def test_log_points_and_thresholds_find_the_synthetic_nuclei():
    im = make_image(5, shape=(128, 128), density=0.15, touching=0.0)
    truth = im.instances
    n_true = len(np.unique(truth[truth > 0]))
    cfg = AutolabelConfig(object_size=12)
    pts = machine_points(im.image, cfg)
    pix = np.floor(pts[:, :2] + 0.5).astype(int)
    hits = truth[pix[:, 0], pix[:, 1]]
    assert np.mean(hits > 0) > 0.8 and len(np.unique(hits[hits > 0])) > 0.7 * n_true
    for method in (OTSU, LI, TRIANGLE):
        mask = machine_mask(im.image, dataclasses.replace(cfg, threshold=method))
        dice = 2 * np.sum((mask > 0) & (truth > 0)) / (np.sum(mask > 0) + np.sum(truth > 0))
        assert dice > 0.6, method
    fixed = machine_mask(im.image, AutolabelConfig(threshold=FIXED, threshold_value=1e9))
    assert not fixed.any()
    with pytest.raises(AnnotationError, match="leaves no foreground"):
        autolabel(im.image, AutolabelConfig(threshold=FIXED, threshold_value=1e9), source="x.tif")
    labels = autolabel(im.image, cfg)
    inside = labels.foreground[np.floor(labels.points[:, 0] + .5).astype(int),
                               np.floor(labels.points[:, 1] + .5).astype(int)]
    assert inside.all()
    assert classical_instances(labels.points, labels.foreground).max() >= len(labels.points) * 0.8


def test_size_in_micrometres_channels_and_settings():
    assert AutolabelConfig(object_size=6, size_unit="um").diameter_px(0.5) == 12
    with pytest.raises(SettingsError, match="needs the image's pixel size"):
        AutolabelConfig(object_size=6, size_unit="um").diameter_px(None)
    with pytest.raises(SettingsError, match="needs a threshold value"):
        AutolabelConfig(threshold=FIXED)
    im = make_image(5, shape=(96, 96), density=0.15, touching=0.0)
    two = np.stack([im.image, np.zeros_like(im.image)], axis=-1)
    got = autolabel(two, AutolabelConfig(), points_channel=0, mask_channel=0)
    assert len(got.points) >= 3        # the image holds 3 nuclei
    with pytest.raises(AnnotationError, match="leaves no foreground"):
        autolabel(two, AutolabelConfig(), points_channel=0, mask_channel=1)
    with pytest.raises(SettingsError, match="the image has 2 channels"):
        autolabel(two, AutolabelConfig(), points_channel=2)


# ---------------------------------------------------------------- the command line

def _image_file(tmp_path, channels=False):
    im = make_image(7, shape=(64, 64), density=0.2, touching=0.3)
    data = (im.image * 1000).astype(np.uint16)
    if channels:
        data = np.stack([data, data // 2], axis=-1)
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, data)
    return path, im


def test_cli_autolabel_then_train_on_the_result(tmp_path, capsys):
    img, im = _image_file(tmp_path, channels=True)
    code = main(["autolabel", "--image", str(img), "--points-channel", "0", "--mask-channel", "1",
                 "--points", str(tmp_path / "p.csv"), "--foreground", str(tmp_path / "m.tif"), "--object-size", "12"])
    assert code == 0, capsys.readouterr().err
    assert "points, foreground" in capsys.readouterr().out
    pts = read_points_csv(tmp_path / "p.csv", (64, 64))
    under = im.instances[np.floor(pts[:, 0] + 0.5).astype(int), np.floor(pts[:, 1] + 0.5).astype(int)]
    assert sorted(under.tolist()) == sorted(np.unique(im.instances[im.instances > 0]).tolist())   # one per object
    assert len(pts) >= 2 and tifffile.imread(tmp_path / "m.tif").max() == 1
    (tmp_path / "train.csv").write_text(f"image,{POINTS_KEY},{MASK_KEY}\nimg.tif,p.csv,m.tif\n")
    items = load_manifest(tmp_path / "train.csv", 1)
    assert items[0].image.shape == (64, 64, 2) and items[0].labels[POINTS_KEY].shape == (len(pts), 3)
    code = main(["train", "--data", str(tmp_path / "train.csv"), "--model", str(tmp_path / "model"),
                 "--steps", "2", "--patch-size", "32", "--batch-size", "2", "--preset", "tiny", "--quiet",
                 "--device", "cpu", "--partition-rounds", "1"])
    assert code == 0, capsys.readouterr().err
    assert LOCATIONS in load_model(tmp_path / "model").task_names


def _train_args(tmp_path, csv):
    return ["train", "--data", str(csv), "--model", str(tmp_path / "model"), "--steps", "2", "--patch-size", "32",
            "--batch-size", "2", "--preset", "tiny", "--quiet", "--device", "cpu"]


@pytest.mark.parametrize("points, mask, message", [
    ("y,x\n3,3\n70,5\n", "good", "p.csv: points: point 2 at y=70, x=5 lies outside the image"),
    ("a,b\n3,3\n", "good", "p.csv: points file has no coordinate columns"),
    ("y,x\n3,3\n", "empty", "has 1 point(s) but its foreground mask is empty"),
    ("y,x\n3,3\n", "wrong", "m.tif"),
])
def test_cli_bad_input_is_one_line_and_nothing_is_written(tmp_path, capsys, points, mask, message):
    img, im = _image_file(tmp_path)
    (tmp_path / "p.csv").write_text(points)
    masks = {"good": (im.instances > 0).astype(np.uint8), "empty": np.zeros((64, 64), np.uint8),
             "wrong": np.ones((60, 64), np.uint8)}
    tifffile.imwrite(tmp_path / "m.tif", masks[mask])
    (tmp_path / "train.csv").write_text(f"image,{POINTS_KEY},{MASK_KEY}\nimg.tif,p.csv,m.tif\n")
    assert main(_train_args(tmp_path, tmp_path / "train.csv")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "model").exists()


def test_cli_autolabel_errors_write_nothing(tmp_path, capsys):
    img, _ = _image_file(tmp_path)
    out = ["--points", str(tmp_path / "p.csv"), "--foreground", str(tmp_path / "m.tif")]
    for extra, message in ((["--threshold", "fixed", "--threshold-value", "1e9"], "leaves no foreground"),
                           (["--size-unit", "um", "--object-size", "6"], "needs the image's pixel size"),
                           (["--channel", "3"], "has 1 channel")):
        assert main(["autolabel", "--image", str(img), *out, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
        assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m.tif").exists()
    assert main(["autolabel", "--image", str(img), *out, "--size-unit", "um", "--pixel-size", "0.5",
                 "--object-size", "6"]) == 0
    assert main(["autolabel", "--image", str(img), *out]) == 2          # exists: --overwrite to replace
    assert "exists" in capsys.readouterr().err


def test_the_regime_is_registered_with_a_points_input():
    regime = registry.get(REGIME.name)
    assert [i.layer_type for i in regime.inputs] == ["points", "labels"]


def test_cli_autolabel_self_train_saves_rounds_and_guards(tmp_path, capsys):
    img, _ = _image_file(tmp_path)
    out = ["--points", str(tmp_path / "p.csv"), "--foreground", str(tmp_path / "m.tif")]
    code = main(["autolabel", "--image", str(img), *out, "--self-train", str(tmp_path / "st"), "--rounds", "1",
                 "--steps", "2", "--preset", "tiny"])
    text = capsys.readouterr().out
    assert code == 0
    assert "self-training: 1 rounds" in text and "agreement with the machine-made labels" in text
    assert LOCATIONS in load_model(tmp_path / "st" / "round_01").task_names
