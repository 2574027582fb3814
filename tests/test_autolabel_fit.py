"""Machine-made labels that fit the image: scale, polarity, denoising, threshold choice, confidence,
the self-training refinement and the guard."""

import numpy as np
import pytest
from skimage.draw import disk

from napari_lazylabels.engine.autolabel import AutolabelConfig, autolabel, classical_instances
from napari_lazylabels.engine.autolabel_stats import choose_threshold, estimate_scale, noise_level
from napari_lazylabels.engine.selftrain import guard, label_agreement, refined_labels
from napari_lazylabels.engine.synthetic import make_image


def discs(radius: int, n: int = 5, size: int = 200, seed: int = 0, dark: bool = False, noise: float = 0.02):
    """Discs of one radius on a grid, bright (or dark) on a flat background, with Gaussian noise."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 0.2)
    truth = np.zeros((size, size), np.int32)
    step = size // n
    k = 0
    for i in range(n):
        for j in range(n):
            if (i + j) % 2:
                continue
            k += 1
            rr, cc = disk((step * i + step // 2, step * j + step // 2), radius, shape=img.shape)
            img[rr, cc] = 1.0
            truth[rr, cc] = k
    if dark:
        img = 1.2 - img
    return img + rng.normal(0, noise, img.shape), truth


@pytest.mark.parametrize("radius", [4, 8, 14])
def test_scale_estimate_is_within_a_factor_of_the_true_radius(radius):
    img, _ = discs(radius, n=5, size=max(200, 14 * radius))
    d = estimate_scale(img).diameter
    assert 2 * radius / 1.5 <= d <= 2 * radius * 1.5, (radius, d)


@pytest.mark.parametrize("dark", [False, True])
def test_polarity_is_read_from_the_image_and_reported(dark):
    img, truth = discs(8, dark=dark)
    labels = autolabel(img)
    assert labels.reading.dark is dark
    assert ("darker" if dark else "brighter") in labels.describe()
    dice = 2 * np.sum((labels.foreground > 0) & (truth > 0)) / (np.sum(labels.foreground > 0) + np.sum(truth > 0))
    assert dice > 0.85
    hit = truth[np.floor(labels.points[:, 0] + .5).astype(int), np.floor(labels.points[:, 1] + .5).astype(int)]
    assert (hit > 0).all() and len(set(hit)) == truth.max()


def test_points_outside_the_mask_are_dropped_and_kept_when_asked():
    img, truth = discs(8)
    rr, cc = disk((20, 100), 8)
    img[rr, cc] = 0.5                    # a dim disc: a blob, under the mask's threshold
    cfg = dict(object_size=16, detection_threshold=0.02, threshold="fixed", threshold_value=0.7)
    kept = autolabel(img, AutolabelConfig(points_in_mask=False, **cfg))
    dropped = autolabel(img, AutolabelConfig(**cfg))
    fg = dropped.foreground
    pix = np.floor(dropped.points[:, :2] + .5).astype(int)
    assert fg[pix[:, 0], pix[:, 1]].all()
    pix = np.floor(kept.points[:, :2] + .5).astype(int)
    assert len(kept.points) > len(dropped.points) and not fg[pix[:, 0], pix[:, 1]].all()


def test_threshold_method_is_chosen_and_reported():
    img, _ = discs(8, noise=0.01)
    assert choose_threshold(img)[0] == "otsu"                       # two clear modes
    rng = np.random.default_rng(1)
    tail = np.concatenate([rng.normal(0, 1, 20000), rng.exponential(8, 1500)])
    assert choose_threshold(tail)[0] == "triangle"                   # a background with a tail
    labels = autolabel(img)
    assert labels.method == "otsu" and "otsu threshold" in labels.describe() and "bimodality" in labels.why
    assert autolabel(img, AutolabelConfig(threshold="li")).method == "li"


def test_noisy_images_are_denoised_first_and_still_found():
    im = make_image(3, (256, 256), style="mibi")
    assert noise_level(im.image) > 0.04
    labels = autolabel(im.image)
    assert labels.reading.denoise > 0 and "denoised" in labels.describe()
    n_true = len(np.unique(im.instances[im.instances > 0]))
    d_true = 2 * np.sqrt(np.median(np.unique(im.instances[im.instances > 0], return_counts=True)[1]) / np.pi)
    assert d_true / 1.5 < labels.reading.diameter < d_true * 1.5
    pix = np.floor(labels.points[:, :2] + .5).astype(int)
    hits = im.instances[pix[:, 0], pix[:, 1]]
    assert len(np.unique(hits[hits > 0])) > 0.6 * n_true


def test_confidence_marks_the_doubtful_and_the_trusted_region_leaves_them_out():
    img, truth = discs(8, noise=0.01)
    img[150:170, 20:40] = 0.2 + 0.25       # a dim, pointless square: a doubtful piece
    labels = autolabel(img, AutolabelConfig(object_size=16, threshold="fixed", threshold_value=0.35))
    assert labels.point_confidence.shape == (len(labels.points),)
    assert labels.doubtful()[1] >= 1
    trusted = labels.trusted()
    assert not trusted[160, 30] and trusted[truth > 0].all()


def test_confidence_weights_reach_the_loss():
    """The trusted region is the item's region of interest: outside it, no task has a valid pixel."""
    from napari_lazylabels.engine.annotations import LazyAnnotations
    from napari_lazylabels.engine.config import TrainConfig, preset
    from napari_lazylabels.engine.regimes import registry
    from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun
    img, _ = discs(8, noise=0.01)
    img[150:170, 20:40] = 0.45
    labels = autolabel(img, AutolabelConfig(object_size=16, threshold="fixed", threshold_value=0.35))
    pts, mask = (i.key for i in registry.machine_label_inputs())
    item = LazyAnnotations(img.astype(np.float32), labels={pts: labels.points, mask: labels.foreground},
                           roi=labels.trusted(), name="discs")
    run = TrainingRun(TrainingPlan([item], network=preset("tiny"),
                                   config=TrainConfig(steps=1, patch_size=32, batch_size=2, device="cpu")))
    prepared = run.trainer.sampler.images[0]
    for task, valid in prepared.valid.items():
        assert not np.asarray(valid)[160, 30], task
    assert any(np.asarray(v)[100, 100] for v in prepared.valid.values())


def test_a_refinement_round_changes_the_labels_then_stops_changing():
    img, truth = discs(8)
    labels = autolabel(img, AutolabelConfig(object_size=16))
    mask = labels.foreground.copy()
    mask[150:170, 20:40] = 1                                # a wrong piece in the machine mask
    prob = (truth > 0).astype(float)                        # a model that is sure of the truth
    first = refined_labels(labels.points, mask, prob, truth, radius=8)
    assert first.change > 0.05 and not first.mask[160, 30]
    second = refined_labels(first.points, first.mask, prob, truth, radius=8)
    assert second.change < 0.01


def test_the_guard_warns_when_the_network_is_worse():
    img, truth = discs(8)
    labels = autolabel(img, AutolabelConfig(object_size=16))
    classical = classical_instances(labels.points, labels.foreground)
    bad = np.zeros_like(truth)
    bad[:100] = 1                                           # one blob over half the image
    report = guard([bad], [classical], [labels.points], [labels.foreground])
    assert not report.better and "WARNING" in report.describe()
    assert label_agreement(truth, labels.points, labels.foreground) > label_agreement(bad, labels.points,
                                                                                      labels.foreground)
    ok = guard([truth], [np.zeros_like(truth)], [labels.points], [labels.foreground])
    assert ok.better and "WARNING" not in ok.describe()


def test_self_training_rounds_are_saved_resumed_and_guarded(tmp_path):
    from napari_lazylabels.engine.annotations import LazyAnnotations
    from napari_lazylabels.engine.config import TrainConfig, preset
    from napari_lazylabels.engine.regimes import registry
    from napari_lazylabels.recipes.selftrain import self_train
    from napari_lazylabels.recipes.train import TrainingPlan
    img, _ = discs(8, size=96, n=3)
    labels = autolabel(img, AutolabelConfig(object_size=16))
    pts, mask = (i.key for i in registry.machine_label_inputs())
    item = LazyAnnotations(img.astype(np.float32), labels={pts: labels.points, mask: labels.foreground},
                           roi=labels.trusted(), name="discs")
    plan = TrainingPlan([item], network=preset("tiny"),
                        config=TrainConfig(steps=2, patch_size=32, batch_size=2, device="cpu"))
    said = []
    first = self_train([item], plan, tmp_path / "st", rounds=2, tolerance=-1, log=said.append)
    assert [p.name for p in first.rounds] == ["round_01", "round_02"] and len(first.changes) == 2
    assert (tmp_path / "st" / "labels_02.npz").is_file() and first.guard is not None
    assert any("agreement with the machine-made labels" in s for s in said)
    said.clear()
    again = self_train([item], plan, tmp_path / "st", rounds=2, tolerance=-1, log=said.append)
    assert said[0].startswith("round 1: already done") and said[1].startswith("round 2: already done")
    assert again.changes == first.changes
