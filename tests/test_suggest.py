"""Uncertainty maps and "annotate here next": high where the model is unsure, low on what it learned;
boxes ranked over every image with their reason; the CLI writes them, or one line and nothing."""

import csv

import numpy as np
import pytest
import tifffile

from napari_lazylabels.cli import main
from napari_lazylabels.engine.annotations import LazyAnnotations
from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.suggest import REASONS, candidates, far_at, painted, suggest
from napari_lazylabels.engine.synthetic import make_lazy_dataset
from napari_lazylabels.engine.uncertainty import assess, binary_entropy, from_passes, object_scores
from napari_lazylabels.errors import SettingsError
from napari_lazylabels.io.modelio import save_model
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

from test_cli import write_dataset


def _noise(shape, like=None, seed=0):
    """Noise (with the intensities of ``like``): nothing like what the model learned."""
    mean, std = (0.0, 1.0) if like is None else (float(like.mean()), float(like.std()))
    return np.random.default_rng(seed).normal(mean, std, shape).astype(np.float32)


@pytest.fixture(scope="module")
def learned():
    """A tiny model trained on four synthetic 64 px images (what it learned), and the images."""
    items, _ = make_lazy_dataset(4, seed=3, shape=(64, 64), strong_fraction=0.5)
    run = TrainingRun(TrainingPlan(items, network=preset("tiny"), config=TrainConfig(
        steps=150, patch_size=32, batch_size=4, device="cpu")))
    for _ in run.run():
        pass
    return run.model(), items


def test_the_measure_on_known_passes():
    sure = [np.full((4, 4), 0.99, np.float32)] * 2
    unsure = [np.full((4, 4), 0.5, np.float32)] * 2
    torn = [np.zeros((4, 4), np.float32), np.ones((4, 4), np.float32)]
    assert from_passes(sure).uncertainty.max() < 0.05
    assert np.allclose(from_passes(unsure).entropy, 1) and np.allclose(from_passes(unsure).flip_disagreement, 0)
    assert np.allclose(from_passes(torn).flip_disagreement, 1)
    assert np.allclose(binary_entropy(np.array([0.0, 1.0])), 0, atol=1e-5)
    seeds = np.full((4, 4), 0.9, np.float32)
    assert np.allclose(from_passes([np.full((4, 4), 0.2, np.float32)], seeds).heads_disagreement, 0.4)
    inst = np.zeros((4, 4), int)
    inst[:2], inst[2:] = 1, 2
    u = np.zeros((4, 4), np.float32)
    u[2:] = 0.8
    assert object_scores(u, inst) == pytest.approx({1: 0.0, 2: 0.8})


def test_uncertainty_is_low_on_a_learned_image_and_high_where_it_learned_nothing(learned):
    model, items = learned
    seen = assess(model, items[0].image)
    unseen = assess(model, _noise((64, 64)))
    assert seen.uncertainty.mean() < 0.3
    assert unseen.uncertainty.mean() > seen.uncertainty.mean() + 0.15
    scores = seen.object_scores()
    assert scores and all(0 <= s <= 1 for s in scores.values())
    half = items[0].image.copy()
    half[:, 32:] = _noise((64, 32), half)
    maps = assess(model, half).uncertainty
    assert maps[:, 40:].mean() > maps[:, :24].mean() + 0.1


def test_suggestions_go_where_the_model_is_unsure_ranked_and_reasoned(learned):
    model, items = learned
    half = items[0].image.copy()
    half[:, 32:] = _noise((64, 32), half)
    # labelled everywhere (no box is far from a label): the boxes go where the model is unsure
    everywhere = {"detection": np.ones((64, 64), np.int32)}
    probe = LazyAnnotations(half, everywhere, name="half")
    boxes = suggest(model, [LazyAnnotations(items[1].image, everywhere, name="learned"), probe], k=3, box=24)
    assert [b.rank for b in boxes] == [1, 2, 3]
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    assert all(b.reason in REASONS for b in boxes)
    assert boxes[0].image == "half" and boxes[0].x + boxes[0].width / 2 > 32 and boxes[0].reason == "uncertain"
    for a in boxes:                            # no two boxes of one image overlap
        for b in boxes:
            if a is not b and a.index == b.index:
                assert abs(a.x - b.x) >= 24 or abs(a.y - b.y) >= 24
    # an image without any label: every box is far from a label
    bare = LazyAnnotations(items[2].image, {}, name="bare")
    assert not painted(bare).any() and suggest(model, [bare], k=1, box=24)[0].far == 1.0


def test_a_large_image_is_searched_coarse_to_fine_with_the_exact_scores(learned):
    model, items = learned
    quad = np.block([[items[0].image, items[1].image], [items[2].image, _noise((64, 64), items[0].image)]])
    everywhere = {"detection": np.ones((128, 128), np.int32)}
    item = LazyAnnotations(quad, everywhere, name="quad")
    exact = {(c[4], c[5]): c[0] for c in candidates(item, 0, assess(model, quad, instances=False), 24)}
    whole = suggest(model, [item], k=2, box=24, coarse_above=None)
    fast = suggest(model, [item], k=2, box=24, coarse_above=64 * 64)    # shrunk twice, then refined
    # the refined boxes carry the whole-image scores (crop with the receptive-field margin, the
    # whole image's normalisation), and both searches find the noise
    for b in fast:
        assert b.score == pytest.approx(exact[(b.y, b.x)], abs=2e-3)
    for boxes in (whole, fast):
        assert boxes[0].y + 12 > 64 and boxes[0].x + 12 > 64 and boxes[0].reason == "uncertain"
    assert fast[0].score >= whole[0].score - 0.05


def test_far_at_a_point_is_the_distance_transform_capped_at_a_box():
    from scipy import ndimage

    labelled = np.zeros((90, 120), bool)
    labelled[10, 15] = labelled[70, 100] = labelled[40:43, 60] = True
    dist = ndimage.distance_transform_edt(~labelled)
    for y, x in ((0, 0), (10, 15), (50, 50), (89, 119), (30, 110), (5, 80)):
        assert far_at(labelled, y, x, 24) == pytest.approx(min(1.0, dist[y, x] / 24))
    assert far_at(np.zeros((40, 40), bool), 20, 20, 8) == 1.0


def test_bad_requests_are_refused_in_one_line(learned):
    model, items = learned
    with pytest.raises(SettingsError, match="at least 1"):
        suggest(model, items, k=0)
    with pytest.raises(SettingsError, match="larger than the image"):
        suggest(model, items, k=1, box=65)
    rgb = LazyAnnotations(np.zeros((64, 64, 3), np.float32), {}, name="rgb")
    with pytest.raises(SettingsError, match="channel"):
        suggest(model, [rgb], k=1, box=16)


def test_cli_suggest_writes_boxes_or_one_line_and_nothing(learned, small_lazy_set, tmp_path, capsys):
    model, _ = learned
    items, _ = small_lazy_set
    data = write_dataset(tmp_path / "data", items[:2])
    save_model(model, tmp_path / "model")
    out = tmp_path / "boxes.csv"
    assert main(["suggest", "--model", str(tmp_path / "model"), "--data", str(data), "--out", str(out),
                 "--k", "3", "--box", "32", "--device", "cpu"]) == 0
    rows = list(csv.DictReader(open(out)))
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and all(r["reason"] in REASONS for r in rows)
    capsys.readouterr()
    for extra, needle in ((["--k", "0"], "at least 1"), (["--box", "4096"], "larger than the image")):
        bad = tmp_path / "bad.csv"
        code = main(["suggest", "--model", str(tmp_path / "model"), "--data", str(data), "--out", str(bad),
                     "--device", "cpu"] + extra)
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and "\n" not in err and not bad.exists()
    rgb_dir = tmp_path / "rgb"
    rgb_dir.mkdir()
    tifffile.imwrite(rgb_dir / "a.tif", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    blob = np.zeros((64, 64), np.uint8)
    blob[10:14, 10:14] = 1
    tifffile.imwrite(rgb_dir / "a_b.tif", blob)
    (rgb_dir / "m.csv").write_text("image,detection,separation,segmentation\na.tif,a_b.tif,,\n")
    code = main(["suggest", "--model", str(tmp_path / "model"), "--data", str(rgb_dir / "m.csv"),
                 "--out", str(tmp_path / "c.csv"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "channel" in err and not (tmp_path / "c.csv").exists()
