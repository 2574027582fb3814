"""From a raw image to probabilities, semantic labels and instances, in memory.

:func:`segment_in_memory` predicts with a model as a
:class:`~.prediction_spec.PredictionSpec` says (tiles, device, test-time flips) and applies
its post-processing (:class:`~.postprocess.settings.PostProcessing`, the model file's unless the
caller gave another): the seeded watershed, or the final growth of a model trained with the
recursive approximation. :func:`segmentation_from_probabilities` is that post-processing, which
the block-wise back-end (:mod:`.blockwise`) applies too. :func:`segment` is the Python call: its
keyword arguments are resolved into a spec first. Whoever calls (the CLI, the napari widgets, a
script) gets the same result, and no training code is involved.

With a ``rescale`` factor other than 1 (:attr:`~.postprocess.settings.PostProcessing.rescale`,
or the ratio of the image's pixel size to the training images'), the image is
resized before the network and the post-processing, and the probabilities
(linearly) and the label maps (nearest neighbour) are resized back to the
image's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from skimage.segmentation import relabel_sequential
from skimage.transform import resize

from .annotations import PixelSize
from .inference import class_probabilities
from .labels import smallest_label_dtype
from .postprocess.growth import final_growth
from .postprocess.instances import instances_from_probabilities
from .postprocess.settings import GROWTH, PostProcessing
from .prediction_spec import TILE_SIZE, PredictionSpec
from .tasks import TaskSpec, heads_by_role
from .trained_model import LazyLabelsModel


@dataclass
class Segmentation:
    """What a model makes of one image.

    ``probabilities``: task -> per-class probabilities (C, Y, X);
    ``components``: for the tasks whose classes are mixtures of several
    components (ImPartial), task -> per-component probabilities (C * M, Y, X).
    """

    probabilities: dict[str, np.ndarray]
    semantic: np.ndarray
    instances: np.ndarray
    components: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_objects(self) -> int:
        return int(self.instances.max(initial=0))

    def label_layers(self) -> dict[str, np.ndarray]:
        """``instances`` and ``semantic`` in the smallest unsigned dtype that holds them."""
        return {"instances": self.instances.astype(smallest_label_dtype(self.instances)),
                "semantic": self.semantic.astype(smallest_label_dtype(self.semantic))}


def segmentation_from_probabilities(probs: Mapping[str, np.ndarray], tasks: Sequence[TaskSpec],
                                    postprocess: PostProcessing | None = None) -> Segmentation:
    """Semantic and instance labels from a model's probabilities (task name -> (C, Y, X))."""
    postprocess = postprocess or PostProcessing()
    heads = heads_by_role(probs, tasks)
    if postprocess.method == GROWTH:
        semantic, instances = final_growth(heads, postprocess.lambda_final, postprocess.instances)
    else:
        semantic, instances = instances_from_probabilities(heads, postprocess.instances)
    return Segmentation(dict(probs), semantic, instances)


def rescale_factor(model: LazyLabelsModel, postprocess: PostProcessing, pixel_size: PixelSize | None = None) -> float:
    """The factor the image is resized by: ``postprocess.rescale`` when set, else image pixel size /
    training pixel size when both are known, else 1."""
    if postprocess.rescale is not None:
        return float(postprocess.rescale)
    trained = model.training_pixel_size
    if trained is not None and pixel_size is not None:
        return pixel_size.ratio_to(trained)
    return 1.0


def _resized(image: np.ndarray, shape: tuple[int, int], order: int) -> np.ndarray:
    """A YX or YXC (``order`` 1, float) or YX label (``order`` 0) array resized to YX ``shape``."""
    out_shape = tuple(shape) + tuple(image.shape[2:])
    if order == 0:
        return resize(image, out_shape, order=0, preserve_range=True, anti_aliasing=False).astype(image.dtype)
    shrink = any(o < i for o, i in zip(shape, image.shape[:2]))
    return resize(image.astype(np.float32, copy=False), out_shape, order=1, preserve_range=True,
                  anti_aliasing=shrink).astype(np.float32)


def _back(result: Segmentation, shape: tuple[int, int]) -> Segmentation:
    def back(maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: np.moveaxis(_resized(np.moveaxis(v, 0, -1), shape, 1), -1, 0) for k, v in maps.items()}
    instances, _, _ = relabel_sequential(_resized(result.instances, shape, 0))
    return Segmentation(back(result.probabilities), _resized(result.semantic, shape, 0), instances.astype(np.int32),
                        back(result.components))


def segment_in_memory(model: LazyLabelsModel, image: np.ndarray, spec: PredictionSpec, *,
                      pixel_size: PixelSize | None = None, progress=None) -> Segmentation:
    """Tiled prediction, then the spec's post-processing (METHOD 5).

    ``pixel_size`` (the image's) sets the rescale factor when the post-processing leaves it automatic
    (:func:`rescale_factor`). Mixture heads' per-component probabilities are kept in ``components``.
    """
    postprocess = spec.postprocess
    factor = rescale_factor(model, postprocess, pixel_size)
    shape = tuple(image.shape[:2])
    scaled = tuple(max(8, round(n * factor)) for n in shape)
    rescaled = not (abs(factor - 1.0) < 1e-3 or scaled == shape)
    pixels = _resized(np.asarray(image), scaled, 1) if rescaled else image
    comps = model.predict(pixels, device=spec.device, tile_size=spec.tile_size, batch_size=spec.batch_size,
                          progress=progress, components=True, flips=postprocess.flips)
    result = segmentation_from_probabilities(class_probabilities(comps, model.network), model.tasks, postprocess)
    result.components = {t.name: comps[t.name] for t in model.tasks if t.components > 1}
    return _back(result, shape) if rescaled else result


def segment(model: LazyLabelsModel, image: np.ndarray, *, device="cpu", tile_size: int = TILE_SIZE,
            batch_size: int = 2, postprocess: PostProcessing | None = None, pixel_size: PixelSize | None = None,
            progress=None) -> Segmentation:
    """:func:`segment_in_memory` from a Python call: the model's post-processing unless ``postprocess``
    overrides it, on ``device`` (a name of ``DEVICE_CHOICES`` or a ``torch.device``)."""
    spec = PredictionSpec.resolve(model, device=device, postprocess=postprocess, tile_size=tile_size,
                                  batch_size=batch_size)
    return segment_in_memory(model, image, spec, pixel_size=pixel_size, progress=progress)
