"""The fg/bg scribble regime (ImPartial): mixture heads, the blind-spot mixture loss, training on
unlabelled images, the scribble simulator, the noisy synthetic mode, the recipe and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_lazylabels.cli.main import main
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.inference import class_probabilities, predict_tiled, predict_whole
from napari_lazylabels.engine.model import build_model
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.regimes.impartial import SCRIBBLES, ImPartialConfig, simulate_scribbles
from napari_lazylabels.engine.simulate import annotation_cost, simulate_lazy_labels
from napari_lazylabels.engine.synthetic import make_image, make_lazy_dataset
from napari_lazylabels.engine.tasks import FOREGROUND, REFINED, MixtureHead, TaskSpec
from napari_lazylabels.engine.training.losses import (class_balanced_cross_entropy, component_means,
                                                      mixture_reconstruction, scribble_mixture_loss)
from napari_lazylabels.engine.training.sampling import PatchSampler, blind_spots, prepare as prepare_image
from napari_lazylabels.errors import AnnotationError, LazyLabelsError, SettingsError
from napari_lazylabels.io.modelio import load_model
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun, prepare

REGIME = registry.get("impartial")


def _task(k=1, **opts) -> TaskSpec:
    return REGIME.configure(ImPartialConfig(**opts)).tasks(k)[0]


# -- the task and its head ------------------------------------------------------------------------

def test_the_task_has_mixture_components_and_an_unlabelled_value_above_the_classes():
    t = _task(2, components=3)
    assert (t.n_classes, t.components, t.statistics, t.unlabelled_value) == (3, 3, 1, 3)
    assert t.max_label == 3 and t.class_channels == 9 and t.head_channels(in_channels=2) == 9 * 3
    assert t.class_weights == (0.45, 0.45, 0.45) and t.self_supervised and t.role == FOREGROUND
    assert not _task(mixture_weight=0).self_supervised
    with pytest.raises(SettingsError, match="components"):
        TaskSpec("x", 2, REFINED, mixture=MixtureHead(components=0))
    with pytest.raises(SettingsError, match="blind-spot fraction"):
        ImPartialConfig(blind_spot=0.9)


def test_inference_sums_components_into_classes_and_tiling_does_not_change_it():
    torch.manual_seed(0)
    t = _task(components=2)
    net = build_model(preset("tiny"), [t]).eval()
    image = np.random.default_rng(0).random((1, 40, 56)).astype(np.float32)
    whole = predict_whole(net, image)[t.name]
    comps = predict_whole(net, image, components=True)[t.name]
    assert whole.shape == (2, 40, 56) and comps.shape == (4, 40, 56)
    np.testing.assert_allclose(whole.sum(0), 1.0, atol=1e-5)
    np.testing.assert_allclose(whole, comps.reshape(2, 2, 40, 56).sum(1), atol=1e-6)
    tiled = predict_tiled(net, image, tile_size=16, amp=False, components=True)[t.name]
    np.testing.assert_allclose(tiled, comps, atol=1e-5)
    np.testing.assert_allclose(class_probabilities({t.name: tiled}, net)[t.name], whole, atol=1e-5)


# -- the losses -----------------------------------------------------------------------------------

def test_class_balanced_cross_entropy_counts_each_class_by_its_weight_not_its_pixels():
    logp = torch.log(torch.tensor([0.5, 0.5]))[None, :, None, None].expand(1, 2, 1, 101).clone()
    logp[0, :, 0, 0] = torch.log(torch.tensor([0.9, 0.1]))   # the one class-1 pixel: p(1) = 0.1
    target = torch.zeros(1, 1, 101, dtype=torch.long)
    target[0, 0, 0] = 1
    valid = torch.ones(1, 1, 101, dtype=torch.bool)
    got = class_balanced_cross_entropy(logp, target, valid, torch.tensor([0.45, 0.45]))
    expected = 0.45 * -np.log(0.5) + 0.45 * -np.log(0.1)     # one pixel counts as much as 100
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert class_balanced_cross_entropy(logp, target, torch.zeros_like(valid), None) is None


def _mixture_logits(t: TaskSpec, assign: np.ndarray, means: list[float], confidence: float = 20.0):
    """Head outputs putting each pixel in component ``assign`` with component means ``means``."""
    h, w = assign.shape
    n = t.class_channels
    logits = torch.zeros(1, n + n, h, w)
    for m in range(n):
        logits[0, m] = torch.from_numpy((assign == m) * confidence)
        logits[0, n + m] = means[m]
    return logits


def test_the_mixture_loss_is_low_when_each_pixel_is_in_the_component_of_its_value():
    t = _task(components=1)                     # component 0: background, 1: object
    image = np.zeros((8, 8), np.float32)
    image[2:6, 2:6] = 0.8
    clean = torch.from_numpy(image)[None, None]
    blind = torch.ones(1, 8, 8, dtype=torch.bool)
    right = _mixture_logits(t, (image > 0).astype(int), [0.0, 0.8])    # object mean: offset 0.8 from 0
    wrong = _mixture_logits(t, (image == 0).astype(int), [0.0, 0.8])
    assert float(mixture_reconstruction(right, t, clean, blind)) < 1e-3
    assert float(mixture_reconstruction(wrong, t, clean, blind)) == pytest.approx(0.8 ** 2 / 2, rel=1e-3)


def test_object_component_means_are_offsets_from_the_background_mean():
    stats = torch.tensor([0.2, 0.4, 0.1, 0.3])[None, :, None, None, None].expand(1, 4, 1, 2, 2)
    rho = torch.full((1, 4, 2, 2), 0.25)
    means = component_means(stats, rho, n_background=2)[0, :, 0]
    assert means.tolist() == pytest.approx([0.2, 0.4, 0.1 + 0.3, 0.3 + 0.3])


def test_the_mixture_part_trains_on_an_image_without_strokes_and_weight_zero_switches_it_off():
    torch.manual_seed(0)
    image = np.random.default_rng(1).random((1, 1, 16, 16)).astype(np.float32)
    corrupted, blind = blind_spots(image, 0.1, np.random.default_rng(0))
    batch = {"clean": torch.from_numpy(image), "blind": torch.from_numpy(blind)}
    target = torch.full((1, 16, 16), 2)                      # every pixel unlabelled
    valid = torch.zeros(1, 16, 16, dtype=torch.bool)
    annotated = torch.tensor([True])
    for weight, expect_grad in ((0.1, True), (0.0, False)):
        t = _task(mixture_weight=weight)
        net = build_model(preset("tiny"), [t])
        out = net(torch.from_numpy(corrupted))[t.name]
        loss = scribble_mixture_loss(out, target, valid, annotated, torch.tensor(t.class_weights), task=t,
                                     batch=batch)
        assert (loss is not None) == expect_grad
        if expect_grad:
            loss.backward()
            assert net.heads[t.name].weight.grad.abs().sum() > 0


def test_blind_spots_take_a_neighbours_value_and_the_batch_keeps_the_clean_patch():
    image = np.arange(2 * 1 * 32 * 32, dtype=np.float32).reshape(2, 1, 32, 32)    # every value unique
    out, blind = blind_spots(image, 0.05, np.random.default_rng(0), radius=5)
    assert blind.sum(axis=(1, 2)).tolist() == [51, 51]
    assert np.array_equal(out[~np.repeat(blind[:, None], 1, 1)], image[~np.repeat(blind[:, None], 1, 1)])
    for b, y, x in np.argwhere(blind):
        src = np.argwhere(image[b, 0] == out[b, 0, y, x])[0]
        assert 0 < max(abs(src[0] - y), abs(src[1] - x)) <= 5


# -- sampling and the recipe ----------------------------------------------------------------------

def _noisy_set(n=3, budget=0.2, shape=(64, 64)):
    return make_lazy_dataset(n, seed=2, shape=shape, style="mibi", regimes=[REGIME], scribble_budget=budget)


def test_an_image_without_strokes_trains_the_self_supervised_task_only():
    items, _ = _noisy_set(2)
    items.append(LazyAnnotations(items[0].image.copy(), labels={SCRIBBLES: None}, name="unlabelled"))
    prepared = prepare(TrainingPlan(items))
    assert [t.name for t in prepared.tasks] == [SCRIBBLES]          # the scribbles' regime alone
    assert prepared.unlabelled == 1
    assert "1 without any label, used by the self-supervised loss of scribbles" in prepared.summary()
    t = prepared.tasks[0]
    im = prepare_image(prepared.items[2], prepared.tasks, TrainConfig().normalization, np.random.default_rng(0))
    assert im.annotated[t.name] and not im.valid[t.name].any()
    sampler = PatchSampler([prepare_image(it, prepared.tasks, TrainConfig().normalization,
                                          np.random.default_rng(0)) for it in prepared.items],
                           prepared.tasks, TrainConfig(patch_size=32), np.random.default_rng(0))
    assert sampler.by_task[t.name] == [0, 1, 2] and sampler.labelled[t.name] == [0, 1]
    drawn = [sampler.sample_patch()[2][t.name].any() for _ in range(200)]
    assert 0.75 < np.mean(drawn) < 0.95        # 0.7 from the two with strokes + 0.3 * 2/3 of the others
    batch = sampler.sample(3)
    assert set(batch) >= {"clean", "blind"} and batch["blind"].shape == (3, 32, 32)
    # Base (mixture weight 0): the image without strokes is not used, and the summary says so
    base = prepare(TrainingPlan(items, options={REGIME.name: ImPartialConfig(mixture_weight=0)}))
    assert "not used" in base.summary()


def test_nothing_painted_anywhere_is_still_refused():
    items, _ = _noisy_set(2)
    empty = [LazyAnnotations(it.image, labels={SCRIBBLES: np.zeros(it.image.shape, np.uint8)}) for it in items]
    with pytest.raises(AnnotationError, match="no image is annotated"):
        prepare(TrainingPlan(empty))


def test_strokes_become_class_targets_with_background_class_zero():
    items, _ = _noisy_set(1)
    painted = items[0].labels[SCRIBBLES]
    target = prepare(TrainingPlan(items)).items[0].targets[SCRIBBLES]
    assert np.array_equal(target == 1, painted == 1)         # object strokes: class 1
    assert np.array_equal(target == 0, painted == 2)         # background strokes: class 0
    assert np.array_equal(target == 2, painted == 0)         # unpainted: the unlabelled value


def test_with_blobs_the_lazy_regimes_train_too_and_the_untrained_mask_head_yields_its_role(small_lazy_set):
    items, truths = small_lazy_set
    mixed = []
    for it, tr in zip(items, truths):
        labels = {k: v for k, v in it.labels.items() if k != "segmentation"}
        labels[SCRIBBLES] = simulate_scribbles(tr.instances, rng=0, budget=0.5)
        mixed.append(LazyAnnotations(it.image, labels=labels, name=it.name))
    tasks = prepare(TrainingPlan(mixed)).tasks
    roles = {t.name: t.role for t in tasks}
    # every regime but the opt-in one and the points + mask one (no points given) trains
    assert set(roles) == {*registry.task_names()} - {"approximation", *registry.get("lacss").task_names}
    fg = [n for n, r in roles.items() if r == FOREGROUND]
    assert fg == [SCRIBBLES]               # no exact mask painted: the scribbles' head is the foreground


def test_training_lowers_the_loss_and_the_model_file_keeps_the_mixture(tmp_path):
    items, _ = _noisy_set(3)
    plan = TrainingPlan(items, network=preset("tiny"), model_dir=tmp_path / "m",
                        config=TrainConfig(steps=30, patch_size=32, batch_size=4, device="cpu",
                                           learning_rate=5e-3),
                        options={REGIME.name: ImPartialConfig(components=3)})
    run = TrainingRun(plan)
    losses = [r.loss for r in run.run()]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    model = load_model(tmp_path / "m")
    (t,) = model.tasks
    assert (t.components, t.statistics, t.loss) == (3, 1, "scribble_mixture")
    from napari_lazylabels.engine.pipeline import segment
    seg = segment(model, items[0].image)
    assert seg.probabilities[t.name].shape == (2, 64, 64) and seg.components[t.name].shape == (6, 64, 64)
    # resuming with another number of components is refused in one line
    from dataclasses import replace
    with pytest.raises(LazyLabelsError, match="2 classes x 3 component"):
        TrainingRun(replace(plan, resume=tmp_path / "m", options={REGIME.name: ImPartialConfig(components=2)}))


# -- simulation, cost, noisy data -----------------------------------------------------------------

def test_simulated_scribbles_follow_the_budget_and_lie_on_skeletons():
    truth = make_image(5, shape=(128, 128))
    n = len(np.unique(truth.instances)) - 1
    s = simulate_scribbles(truth.instances, rng=0, budget=0.25)
    touched = np.unique(truth.instances[s == 1])
    assert len(touched) == round(0.25 * n)
    assert not (truth.instances[s == 1] == 0).any() and not (truth.instances[s == 2] > 0).any()
    assert (s == 2).any()
    assert np.array_equal(s, simulate_scribbles(truth.instances, rng=0, budget=0.25))
    # thin strokes: a skeleton has no 2x2 block of stroke pixels
    fg = s == 1
    assert not (fg[:-1, :-1] & fg[1:, :-1] & fg[:-1, 1:] & fg[1:, 1:]).any()
    two = simulate_scribbles(truth.instances, {i: 2 for i in np.unique(truth.instances) if i}, rng=0,
                             budget=0.25, n_classes=2)
    assert set(np.unique(two)) == {0, 2, 3}                 # class 2 objects, background 3
    cost = annotation_cost({SCRIBBLES: s}, truth.instances)
    assert cost["objects_scribbled"] == len(touched) and cost["painted_pixels"] == int((s > 0).sum())
    assert cost["strokes"] >= len(touched) + 1


def test_scribbles_are_simulated_only_when_asked_for():
    truth = make_image(5, shape=(64, 64))
    assert SCRIBBLES not in simulate_lazy_labels(truth.instances, rng=0)
    assert SCRIBBLES in simulate_lazy_labels(truth.instances, rng=0, regimes=[REGIME])


def test_the_mibi_mode_gives_sparse_counts_over_the_same_ground_truth():
    plain, noisy = make_image(3, style="fluorescence"), make_image(3, style="mibi")
    assert np.array_equal(plain.instances, noisy.instances)
    x = noisy.image
    assert np.array_equal(x, np.round(x)) and x.min() >= 0
    fg = noisy.instances > 0
    assert x[fg].mean() > 3 * x[~fg].mean()
    assert 0.2 < (x[fg] == 0).mean() < 0.6                   # sparse signal inside nuclei too
    assert np.array_equal(x, make_image(3, style="mibi").image)
    with pytest.raises(ValueError, match="style"):
        make_image(3, style="sem")


# -- the command line ---------------------------------------------------------------------------

def test_cli_trains_on_a_scribbles_only_manifest_with_an_unlabelled_image(tmp_path, capsys):
    items, _ = _noisy_set(2)
    rows = ["image,scribbles"]
    for i, it in enumerate(items):
        np.save(tmp_path / f"im{i}.npy", it.image)
        np.save(tmp_path / f"s{i}.npy", it.labels[SCRIBBLES])
        rows.append(f"im{i}.npy,s{i}.npy")
    np.save(tmp_path / "bare.npy", items[0].image)
    rows.append("bare.npy,")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    args = ["train", "--data", str(tmp_path / "m.csv"), "--model", str(tmp_path / "model"), "--steps", "3",
            "--patch-size", "32", "--batch-size", "2", "--preset", "tiny", "--device", "cpu", "--quiet",
            "--components", "3", "--mixture-weight", "0.2"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "1 without any label, used by the self-supervised loss of scribbles" in err
    (t,) = load_model(tmp_path / "model").tasks
    assert t.components == 3 and t.self_supervised_weight == 0.2
    assert main(args[:-4] + ["--overwrite", "--blind-spot", "0.9"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("lazylabels: error: blind-spot fraction")


def test_cli_help_explains_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--components", "--blind-spot", "--foreground-weight", "--background-weight",
                 "--mixture-weight"):
        assert flag in text
    assert "scribbles" in text and "images without strokes" in text


def test_which_regimes_a_run_trains():
    names = lambda present: [r.name for r in registry.trained_regimes(present)]    # noqa: E731
    core = [r.name for r in registry.regimes() if any(i.required for i in r.inputs)]
    blobs = registry.get(core[0]).inputs[0].key
    assert names(()) == core                                   # nothing present: the lazy labels (then refused)
    assert names({SCRIBBLES}) == [REGIME.name]                  # scribbles alone: their regime alone
    assert names({SCRIBBLES, blobs}) == core + [REGIME.name]    # with blobs: all the lazy ones too
    assert REGIME.name not in names({blobs})


def test_a_manifest_with_only_the_scribbles_column_needs_no_other(tmp_path):
    from napari_lazylabels.io.manifest import load_manifest
    items, _ = _noisy_set(1)
    np.save(tmp_path / "a.npy", items[0].image)
    np.save(tmp_path / "s.npy", items[0].labels[SCRIBBLES])
    (tmp_path / "m.csv").write_text("image,scribbles\na.npy,s.npy\n")
    (loaded,) = load_manifest(tmp_path / "m.csv")
    assert np.array_equal(loaded.labels[SCRIBBLES], items[0].labels[SCRIBBLES])
    (tmp_path / "bad.csv").write_text("image,detection,scribbles\na.npy,,s.npy\n")
    with pytest.raises(AnnotationError, match="lacks column"):      # the lazy columns go together
        load_manifest(tmp_path / "bad.csv")


def test_the_mixture_head_is_impartials_and_lies_flat_in_the_model_file():
    t = _task(2, components=3, blind_spot=0.05, mixture_weight=0.2)
    assert t.mixture == MixtureHead(components=3, statistics=1, blind_spot=0.05, self_supervised_weight=0.2)
    d = t.to_dict()
    assert "mixture" not in d and (d["components"], d["statistics"], d["blind_spot"]) == (3, 1, 0.05)
    assert TaskSpec.from_dict(d) == t
    plain = TaskSpec("plain", 2, REFINED)                        # the other regimes' tasks have none
    assert plain.mixture is None and (plain.components, plain.statistics, plain.blind_spot) == (1, 0, 0.0)
    assert TaskSpec.from_dict(plain.to_dict()) == plain
