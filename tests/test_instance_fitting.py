"""Instance settings fitted to the user's exact masks: they move where the defaults are wrong for the
objects at hand, stay where the defaults are right, and the recipe stores the fit in the model."""

from __future__ import annotations

import numpy as np
from skimage.draw import disk

from napari_lazylabels.engine.instance_fitting import exact_objects, fit_instances, fit_to_exact_masks
from napari_lazylabels.engine.metrics import average_precision
from napari_lazylabels.engine.pipeline import segmentation_from_probabilities
from napari_lazylabels.engine.postprocess.settings import PostProcessing
from napari_lazylabels.engine.tasks import BOUNDARIES, FOREGROUND, SEEDS, TaskSpec

TASKS = [TaskSpec("fg", 2, "plain", FOREGROUND), TaskSpec("blobs", 2, "plain", SEEDS),
         TaskSpec("interfaces", 2, "boundary", BOUNDARIES)]
SHAPE = (128, 128)


def _probabilities(fg: np.ndarray, seeds: np.ndarray) -> dict:
    """The heads' probabilities of a foreground and a seed map (object's probability), no interface."""
    return {"fg": np.stack([1 - fg, fg]), "blobs": np.stack([1 - seeds, seeds]),
            "interfaces": np.stack([np.ones(SHAPE, np.float32), np.zeros(SHAPE, np.float32)])}


def _image_with_debris(seed: int, radius: int = 14, debris: int = 4):
    """Probabilities of large round cells (sure foreground, a seed blob in each) plus small specks of
    debris the foreground head also calls "object" (each with a seed), and the cells' true instances."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(SHAPE, np.int32)
    fg = np.zeros(SHAPE, np.float32)
    seeds = np.zeros(SHAPE, np.float32)
    centres = [(32, 32), (32, 96), (96, 32), (96, 96)]
    for k, (y, x) in enumerate(centres, 1):
        y, x = y + rng.integers(-4, 5), x + rng.integers(-4, 5)
        truth[disk((y, x), radius, shape=SHAPE)] = k
        fg[disk((y, x), radius, shape=SHAPE)] = 0.9
        seeds[disk((y, x), 4, shape=SHAPE)] = 0.9
    for _ in range(6):   # specks of about 50 px (radius 4) between the cells
        y, x = rng.integers(58, 70), rng.integers(5, 123)
        fg[disk((y, x), debris, shape=SHAPE)] = 0.8
        seeds[disk((y, x), 2, shape=SHAPE)] = 0.8
    return _probabilities(fg, seeds), truth


def test_fit_drops_debris_smaller_than_the_users_objects():
    data = [_image_with_debris(s) for s in range(3)]
    probs, truths = [p for p, _ in data], [t for _, t in data]
    before = [segmentation_from_probabilities(p, TASKS, PostProcessing()).instances for p in probs]
    assert np.mean([average_precision(b, t) for b, t in zip(before, truths)]) < 0.9   # debris counted
    fit = fit_instances(probs, truths, TASKS, PostProcessing())
    assert fit is not None and "min_size" in fit.changed
    assert fit.instances.min_size > 60 and fit.after > fit.before
    after = [segmentation_from_probabilities(p, TASKS, PostProcessing(instances=fit.instances)).instances
             for p in probs]
    assert np.mean([average_precision(a, t) for a, t in zip(after, truths)]) == 1.0
    assert "min_size" in fit.summary() and fit.to_dict()["objects"] == 12


def test_fit_keeps_defaults_that_are_already_right():
    data = [_image_with_debris(s, debris=1) for s in range(2)]   # specks of 5 px: dropped anyway
    fit = fit_instances([p for p, _ in data], [t for _, t in data], TASKS, PostProcessing())
    assert fit is not None and fit.changed == {} and "defaults are best" in fit.summary()


def test_too_few_objects_fit_nothing():
    probs, truth = _image_with_debris(0)
    truth[truth > 1] = 0
    assert fit_instances([probs], [truth], TASKS, PostProcessing()) is None


def test_exact_objects_are_the_mask_cut_by_the_interfaces_and_grown_back():
    mask = np.zeros((20, 40), np.uint8)
    mask[5:15, 5:35] = 1
    interfaces = np.zeros_like(mask)
    interfaces[:, 20] = 1
    objects = exact_objects(mask, interfaces)
    assert objects.max() == 2 and (objects > 0).sum() == mask.sum()    # grown back over the cut
    assert exact_objects(mask).max() == 1


def test_fit_to_exact_masks_predicts_only_images_with_objects():
    probs, truth = _image_with_debris(1)
    seen = []

    def predict(image):
        seen.append(image)
        return probs

    empty = np.zeros(SHAPE, np.uint8)
    examples = [(np.zeros(SHAPE), empty, None), (np.ones(SHAPE), truth > 0, None), (np.ones(SHAPE), truth, None)]
    fit = fit_to_exact_masks(predict, examples, TASKS, PostProcessing())
    assert len(seen) == 2 and all(s.mean() == 1 for s in seen) and fit is not None and fit.images == 2


def test_exact_objects_keep_objects_painted_one_by_one():
    mask = np.zeros((20, 40), np.uint8)
    mask[5:15, 5:20], mask[5:15, 20:35] = 3, 7          # two touching objects, no interface painted
    assert exact_objects(mask).max() == 2


def test_a_run_fits_its_instance_settings_to_the_exact_masks_and_says_so(train_tiny, tmp_path):
    from napari_lazylabels.engine.postprocess.settings import InstanceParams
    from napari_lazylabels.engine.synthetic import make_lazy_dataset
    from napari_lazylabels.io.modelio import load_model

    items, _ = make_lazy_dataset(3, seed=5, shape=(128, 128), strong_fraction=0.7)
    run = train_tiny(items, steps=4, model_dir=tmp_path / "m")
    assert run.fitted is not None and run.fitted.images >= 1
    saved = load_model(tmp_path / "m")
    assert saved.provenance["instance_fit"] == run.fitted.to_dict()
    assert saved.postprocess.instances == run.fitted.instances
    given = InstanceParams(min_size=77)       # settings the user gave are kept as they are
    run = train_tiny(items, steps=4, instances=given)
    assert run.fitted is None and run.model().postprocess.instances == given
    assert train_tiny(items, steps=4, fit_instances=False).fitted is None


def _touching_pairs_bridged(seed: int):
    """Probabilities of two pairs of touching round cells (no interface predicted) whose seed head is sure
    of each cell's core and hesitates (0.4) on a bridge between the two cores of a pair."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(SHAPE, np.int32)
    fg = np.zeros(SHAPE, np.float32)
    seeds = np.zeros(SHAPE, np.float32)
    for k, y in enumerate((32, 96)):
        y += int(rng.integers(-3, 4))
        for j, x in enumerate((46, 68)):
            truth[disk((y, x), 13, shape=SHAPE)] = 2 * k + j + 1
            fg[disk((y, x), 13, shape=SHAPE)] = 0.9
        seeds[y - 2:y + 3, 46:69] = 0.4
        for x in (46, 68):
            seeds[disk((y, x), 4, shape=SHAPE)] = 0.9
    return _probabilities(fg, seeds), truth


def test_fit_turns_the_seed_join_off_where_it_merges_the_users_objects():
    data = [_touching_pairs_bridged(s) for s in range(3)]
    probs, truths = [p for p, _ in data], [t for _, t in data]
    joined = segmentation_from_probabilities(probs[0], TASKS, PostProcessing()).instances
    assert joined.max() == 2                                    # the bridge joins each pair's seeds
    fit = fit_instances(probs, truths, TASKS, PostProcessing())
    assert fit is not None and fit.changed.get("seed_join_threshold") == (0.3, 0.5)
    apart = segmentation_from_probabilities(probs[0], TASKS, PostProcessing(instances=fit.instances)).instances
    assert average_precision(apart, truths[0]) == 1.0
