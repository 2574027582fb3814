"""One prediction spec: the settings resolved once, and both probability back-ends (in memory and
block-wise) giving the same result for every post-processing setting a model file can hold."""

from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from napari_lazylabels.engine.annotations import PixelSize
from napari_lazylabels.engine.blockwise.segment import check_blockwise
from napari_lazylabels.engine.pipeline import rescale_factor, segment, segment_in_memory
from napari_lazylabels.engine.postprocess.settings import DISTANCE, GROWTH, InstanceParams, PostProcessing
from napari_lazylabels.engine.prediction_spec import PredictionSpec
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.synthetic import make_image
from napari_lazylabels.engine.tasks import PARTIAL, SEEDS
from napari_lazylabels.errors import SettingsError
from test_blockwise import _blockwise, same_partition

#: A value other than the default for every field of the post-processing a model file holds; each is
#: tried on its own (on the base it acts on: the growth's speed with the growth, the peaks' spacing
#: with distance seeds), and the flips with both methods.
OTHER_VALUES = {
    "method": GROWTH, "lambda_final": 2.0, "rescale": 1.0, "flips": True,
    "min_seed_area": 20, "min_size": 60, "interface_threshold": 0.3, "seed_source": PARTIAL,
    "min_peak_distance": 9, "probability_threshold": 0.3, "seed_join_threshold": 0.6,
}
_BASE = {"lambda_final": PostProcessing(method=GROWTH),
         "min_peak_distance": PostProcessing(instances=InstanceParams(seed_source=DISTANCE))}


def _setting(name: str) -> PostProcessing:
    base = _BASE.get(name, PostProcessing())
    if name in {f.name for f in fields(InstanceParams)}:
        return replace(base, instances=replace(base.instances, **{name: OTHER_VALUES[name]}))
    return replace(base, **{name: OTHER_VALUES[name]})


SETTINGS = {"defaults": PostProcessing(), **{name: _setting(name) for name in OTHER_VALUES},
            "seed_source=distance": PostProcessing(instances=InstanceParams(seed_source=DISTANCE)),
            "growth+flips": PostProcessing(method=GROWTH, flips=True)}


def test_every_setting_of_the_model_file_is_tried():
    held = {f.name for f in fields(PostProcessing)} - {"instances"} | {f.name for f in fields(InstanceParams)}
    assert set(OTHER_VALUES) == held
    for name, value in OTHER_VALUES.items():
        setting = SETTINGS[name]
        assert getattr(setting.instances if hasattr(setting.instances, name) else setting, name) == value


@pytest.fixture(scope="module")
def model(small_lazy_set, train_tiny):
    """A tiny model with every head the post-processing reads: seeds, boundaries, foreground, partial masks.
    Its partial-mask head learns little in 120 steps: it is given the seeds head's weights (both plain
    heads of two classes), so that the growth finds objects too."""
    with_partial = {r.name: None for r in registry.opt_in_regimes() if r.role == PARTIAL}
    assert with_partial
    model = train_tiny(small_lazy_set[0], 120, batch_size=4, opt_in=with_partial).model()
    (seeds,), (partial,) = ([t.name for t in model.tasks if t.role == role] for role in (SEEDS, PARTIAL))
    model.network.heads[partial].load_state_dict(model.network.heads[seeds].state_dict())
    return model


@pytest.fixture(scope="module")
def image():
    return make_image(5, (150, 170), density=0.35, touching=0.5).image


@pytest.mark.parametrize("name", list(SETTINGS))
def test_blocks_equal_the_in_memory_prediction_for_every_setting(model, image, name):
    postprocess = SETTINGS[name]
    whole = segment_in_memory(model, image, PredictionSpec.resolve(model, device="cpu", postprocess=postprocess))
    got, result = _blockwise(model, image, postprocess=postprocess, block_size=48, halo=24)
    assert result.blocks >= 9 and whole.n_objects > 3
    for task, p in whole.probabilities.items():
        np.testing.assert_allclose(got.probabilities[task], p, atol=1e-5)
    np.testing.assert_array_equal(got.semantic, whole.semantic)
    assert result.n_objects == whole.n_objects and same_partition(whole.instances, got.instances)


def test_the_flips_change_the_probabilities_alike_in_both_back_ends(model, image):
    """Not a no-op: with flips both back-ends move away from the plain pass, to the same place."""
    flips = PostProcessing(flips=True)
    plain, _ = _blockwise(model, image, block_size=64)
    flipped, _ = _blockwise(model, image, postprocess=flips, block_size=64)
    whole = segment(model, image, postprocess=flips)
    for task, p in whole.probabilities.items():
        assert np.abs(plain.probabilities[task] - p).max() > 1e-3
        np.testing.assert_allclose(flipped.probabilities[task], p, atol=1e-5)


@pytest.mark.parametrize("shape,block", [((97, 130), 40), ((61, 203), 32), ((64, 64), 1024)])
def test_flipped_blocks_at_any_image_edge(model, shape, block):
    """Shapes that are not multiples of the pooling grid: a flipped pass's window sits on the flipped
    image's grid, and takes in the whole image's padding at the near edge."""
    image = (np.random.default_rng(4).random(shape) * 1000).astype(np.uint16)
    flips = PostProcessing(flips=True)
    whole = segment(model, image, postprocess=flips)
    got, _ = _blockwise(model, image, postprocess=flips, block_size=block)
    for task, p in whole.probabilities.items():
        np.testing.assert_allclose(got.probabilities[task], p, atol=1e-5)


def test_a_rescale_is_refused_by_the_blocks_in_one_line(model):
    factor = rescale_factor(model, PostProcessing(rescale=2.0), None)
    with pytest.raises(SettingsError, match="does not resize images") as caught:
        check_blockwise(factor)
    assert "\n" not in str(caught.value)
    check_blockwise(rescale_factor(model, PostProcessing(rescale=1.0), PixelSize(1.0, 1.0)))


def test_the_spec_takes_the_models_post_processing_and_chooses_the_device_once(model, monkeypatch):
    import napari_lazylabels.engine.device as device
    chosen = []
    real = device.select_device
    monkeypatch.setattr(device, "select_device", lambda name="auto": chosen.append(name) or real(name))
    spec = PredictionSpec.resolve(model, device="auto")
    assert spec.postprocess is model.postprocess and isinstance(spec.device, torch.device)
    assert PredictionSpec.resolve(model, device=spec.device).device is spec.device      # taken as it is
    own = PostProcessing(flips=True)
    assert PredictionSpec.resolve(model, device="cpu", postprocess=own).postprocess is own
    assert chosen == ["auto", "cpu"]
    for bad in ({"tile_size": 0}, {"batch_size": 0}, {"block_size": 8}, {"halo": -1}, {"device": "tpu"}):
        with pytest.raises(SettingsError):
            PredictionSpec.resolve(model, **bad)
