"""Block-wise (out-of-core) prediction equals the in-memory one: probabilities (to float rounding),
normalisation and semantic map exactly, instances up to relabelling, whatever the blocks."""

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from napari_lazylabels.engine.blockwise.grid import BlockGrid
from napari_lazylabels.engine.blockwise.instances import MemorySinks, instances_blockwise, semantic_dtype, support
from napari_lazylabels.engine.blockwise.probabilities import head_channels
from napari_lazylabels.engine.blockwise.segment import segment_blockwise
from napari_lazylabels.engine.config import preset
from napari_lazylabels.engine.model import build_model
from napari_lazylabels.engine.normalize import channel_ranges, to_chw
from napari_lazylabels.engine.pipeline import segment, segmentation_from_probabilities
from napari_lazylabels.engine.postprocess.settings import InstanceParams, PostProcessing
from napari_lazylabels.engine.prediction_spec import PredictionSpec
from napari_lazylabels.engine.regimes.registry import default_tasks
from napari_lazylabels.engine.synthetic import make_image
from napari_lazylabels.engine.tasks import BOUNDARIES, FOREGROUND, PARTIAL, PLAIN, SEEDS, TaskSpec
from napari_lazylabels.engine.trained_model import LazyLabelsModel
from napari_lazylabels.errors import AnnotationError, SettingsError


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """The same objects, whatever their ids (and the same background)."""
    if not np.array_equal(a > 0, b > 0):
        return False
    m = a > 0
    pairs = np.unique(np.stack([a[m], b[m]]), axis=1)
    return pairs.shape[1] == len(np.unique(a[m])) == len(np.unique(b[m]))


def test_same_partition_tells_objects_apart():
    a = np.array([[1, 1, 0, 2]])
    assert same_partition(a, np.array([[5, 5, 0, 3]]))
    assert not same_partition(a, np.array([[5, 4, 0, 3]]))
    assert not same_partition(a, np.array([[5, 5, 0, 5]]))
    assert not same_partition(a, np.array([[5, 5, 3, 3]]))


@pytest.fixture(scope="module")
def random_model():
    torch.manual_seed(0)
    tasks = default_tasks(1)
    net = build_model(preset("tiny"), tasks)
    for mod in net.modules():  # non-trivial normalisation statistics
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    return LazyLabelsModel(net.eval(), tasks, ["nucleus"])


@pytest.fixture(scope="module")
def trained_model(small_lazy_set, train_tiny):
    return train_tiny(small_lazy_set[0], 40, batch_size=4).model()


def _blockwise(model, image, postprocess=None, **settings):
    import dask.array as da
    sinks = MemorySinks(image.shape[:2], head_channels(model.network), semantic_dtype(model))
    spec = PredictionSpec.resolve(model, device="cpu", postprocess=postprocess, **settings)
    result = segment_blockwise(model, da.from_array(image, chunks=50), sinks, spec)
    return sinks.segmentation(), result


@pytest.mark.parametrize("shape,block", [((150, 213), 48), ((64, 64), 1024), ((97, 130, 1), 40), ((120, 77), 64)])
def test_probabilities_and_normalisation_equal_the_in_memory_ones(random_model, shape, block):
    image = (np.random.default_rng(1).random(shape) * 1000).astype(np.uint16)
    whole = segment(random_model, image)
    got, result = _blockwise(random_model, image, block_size=block, halo=16)
    assert result.ranges == [r.tolist() for r in channel_ranges(to_chw(image), random_model.normalization)]
    for k in whole.probabilities:
        assert got.probabilities[k].shape == whole.probabilities[k].shape
        np.testing.assert_allclose(got.probabilities[k], whole.probabilities[k], atol=1e-5)
    np.testing.assert_array_equal(got.semantic, whole.semantic)
    assert same_partition(whole.instances, got.instances)


def test_a_trained_model_finds_the_same_objects_in_blocks(trained_model):
    image = make_image(5, (200, 180), density=0.35, touching=0.5).image
    whole = segment(trained_model, image)
    assert whole.n_objects > 5
    for block, halo in [(48, 24), (96, 64)]:
        got, result = _blockwise(trained_model, image, block_size=block, halo=halo)
        assert result.blocks >= 4 and result.n_objects == whole.n_objects
        np.testing.assert_array_equal(got.semantic, whole.semantic)
        assert same_partition(whole.instances, got.instances)


def _probabilities(gt: np.ndarray, seed: int = 0) -> tuple[dict, list]:
    """Foreground, seed and interface probabilities made from an instance map (with saturated values:
    ties the watershed must break alike on a crop and on the whole image)."""
    rng = np.random.default_rng(seed)
    fg = np.clip(ndi.gaussian_filter((gt > 0).astype(np.float32), 1.5) + rng.normal(0, 0.08, gt.shape), 0, 1)
    dist = np.zeros(gt.shape, np.float32)
    for i, box in enumerate(ndi.find_objects(gt), 1):
        if box is not None:
            inside = gt[box] == i
            dist[box][inside] = ndi.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1][inside]
    seeds = np.clip(ndi.gaussian_filter((dist > 3).astype(np.float32), 1) + rng.normal(0, 0.05, gt.shape), 0, 1)
    big = 10 ** 6
    low = ndi.minimum_filter(np.where(gt > 0, gt, big), 3)
    edge = (gt > 0) & (low < big) & (ndi.maximum_filter(gt, 3) != low)
    inter = np.clip(ndi.gaussian_filter(edge.astype(np.float32), 0.7) * 2, 0, 1)

    def two(p):
        return np.stack([1 - p, p]).astype(np.float32)

    tasks = [TaskSpec("fg", 2, PLAIN, role=FOREGROUND), TaskSpec("blobs", 2, PLAIN, role=SEEDS),
             TaskSpec("cuts", 2, PLAIN, role=BOUNDARIES), TaskSpec("part", 2, PLAIN, role=PARTIAL)]
    return {"fg": two(fg), "blobs": two(seeds), "cuts": two(inter), "part": two(np.clip(seeds * 1.2, 0, 1))}, tasks


@pytest.fixture(scope="module")
def crowd():
    """Touching nuclei, and a snake that crosses every block of a row."""
    gt = make_image(3, (300, 260), density=0.35, touching=0.5).instances.copy()
    yy, xx = np.mgrid[:300, :260]
    gt[(np.abs(yy - 150 - 40 * np.sin(xx / 20)) < 5) & (xx > 10) & (xx < 250)] = gt.max() + 1
    return gt


@pytest.mark.parametrize("postprocess", [PostProcessing(), PostProcessing(method="growth"),
                                         PostProcessing(instances=InstanceParams(seed_source="distance"))],
                         ids=["watershed", "growth", "distance-seeds"])
@pytest.mark.parametrize("block,halo", [(64, 16), (48, 40), (40, 0), (1000, 8)])
def test_stitched_instances_equal_the_whole_image(crowd, postprocess, block, halo):
    probs, tasks = _probabilities(crowd)
    whole = segmentation_from_probabilities(probs, tasks, postprocess)
    sinks = MemorySinks(crowd.shape, {k: 2 for k in probs})
    for k, v in probs.items():
        sinks.probabilities[k][:] = v
    n, resolved = instances_blockwise(sinks, tasks, postprocess, BlockGrid(crowd.shape, block), halo=halo)
    got = sinks.segmentation()
    assert n == whole.n_objects > 40
    np.testing.assert_array_equal(got.semantic, whole.semantic)
    assert same_partition(whole.instances, got.instances)
    assert (resolved > 0) == (block < 1000)   # the snake is larger than any window but the whole image
    # ids 1..N in raster order of the objects' first pixels
    ids = got.instances[got.instances > 0]
    _, first = np.unique(got.instances.ravel(), return_index=True)
    assert sorted(np.unique(ids)) == list(range(1, n + 1))
    assert np.all(np.diff(first[1:]) > 0)


def test_an_object_cut_by_block_edges_keeps_one_id():
    gt = np.zeros((128, 128), np.int32)
    yy, xx = np.mgrid[:128, :128]
    gt[(yy - 64) ** 2 + (xx - 64) ** 2 < 15 ** 2] = 1       # on the corner of four 64 px blocks
    gt[(yy - 30) ** 2 + (xx - 100) ** 2 < 10 ** 2] = 2       # inside one block
    probs, tasks = _probabilities(gt)
    sinks = MemorySinks(gt.shape, {k: 2 for k in probs})
    for k, v in probs.items():
        sinks.probabilities[k][:] = v
    n, resolved = instances_blockwise(sinks, tasks, PostProcessing(), BlockGrid(gt.shape, 64), halo=32)
    labels = sinks.segmentation().instances
    assert n == 2 and resolved == 0
    assert len(np.unique(labels[(yy - 64) ** 2 + (xx - 64) ** 2 < 12 ** 2])) == 1
    assert same_partition(labels, segmentation_from_probabilities(probs, tasks).instances)


def test_bad_images_and_settings_are_refused(random_model):
    import dask.array as da
    image = np.ones((40, 40), np.float32)
    image[3, 4] = np.nan
    sinks = MemorySinks((40, 40), head_channels(random_model.network))
    spec = PredictionSpec.resolve(random_model, device="cpu")
    with pytest.raises(AnnotationError, match="NaN"):
        segment_blockwise(random_model, da.from_array(image), sinks, spec, source="x.npy")
    with pytest.raises(AnnotationError, match="at least 8x8"):
        segment_blockwise(random_model, da.zeros((4, 40)), sinks, spec)
    with pytest.raises(SettingsError, match="block size"):
        PredictionSpec.resolve(random_model, block_size=4)
    with pytest.raises(SettingsError, match="halo"):
        PredictionSpec.resolve(random_model, halo=-1)


def test_freed_memory_is_handed_back_before_every_block(random_model, monkeypatch):
    """glibc keeps the pages of freed blocks in its threads' arenas: without a trim before each block's
    task the resident memory grew with the number of blocks (issue 12: 2310 MB at 4096 px)."""
    import sys

    from napari_lazylabels.engine.blockwise import executors
    if sys.platform.startswith("linux"):
        assert isinstance(executors.trim_freed_memory(), bool)
    calls = []
    monkeypatch.setattr(executors, "_LIBC", [lambda pad: calls.append(pad) or 1])    # counts malloc_trim
    image = (np.random.default_rng(2).random((150, 213)) * 1000).astype(np.uint16)
    _, result = _blockwise(random_model, image, block_size=48, halo=16)
    # the two histogram passes, the probabilities, the instances and the labels: once per block each
    assert len(calls) >= 5 * result.blocks


def test_a_seed_head_positive_everywhere_does_not_join_the_watershed_units():
    """The watershed keeps to the foreground: a seed head positive on the background too (a little-trained
    model's) must not make the whole image one unit, post-processed in one piece (issue 12)."""
    gt = make_image(3, (300, 260), density=0.35, touching=0.5).instances
    probs, tasks = _probabilities(gt)
    probs["blobs"] = np.maximum(probs["blobs"], np.array([0.1, 0.9], np.float32)[:, None, None] * np.ones_like(
        probs["blobs"]))
    probs["blobs"][0] = 1 - probs["blobs"][1]
    whole = segmentation_from_probabilities(probs, tasks, PostProcessing())
    sinks = MemorySinks(gt.shape, {k: 2 for k in probs})
    for k, v in probs.items():
        sinks.probabilities[k][:] = v
    n, resolved = instances_blockwise(sinks, tasks, PostProcessing(), BlockGrid(gt.shape, 64), halo=40)
    got = sinks.segmentation()
    assert n == whole.n_objects > 20
    np.testing.assert_array_equal(got.semantic, whole.semantic)
    assert same_partition(whole.instances, got.instances)
    from napari_lazylabels.engine.tasks import heads_by_role
    assert np.array_equal(support(heads_by_role(probs, tasks), PostProcessing()), whole.semantic > 0)
