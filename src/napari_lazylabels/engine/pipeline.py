"""From a raw image to probabilities, semantic labels and instances.

:func:`segment` predicts with a model and applies the post-processing its
model file names (:class:`~.postprocess.settings.PostProcessing`): the seeded
watershed, or the final growth of a model trained with the recursive
approximation. Whoever calls (the CLI, the napari widgets, a script) gets the
same result, and no training code is involved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .inference import class_probabilities
from .labels import smallest_label_dtype
from .postprocess.growth import final_growth
from .postprocess.instances import instances_from_probabilities
from .postprocess.settings import GROWTH, PostProcessing
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


def segment(model: LazyLabelsModel, image: np.ndarray, *, device="cpu", tile_size: int = 1024,
            batch_size: int = 2, postprocess: PostProcessing | None = None, progress=None) -> Segmentation:
    """Tiled prediction, then the model's post-processing (METHOD 5); ``postprocess`` overrides it."""
    comps = model.predict(image, device=device, tile_size=tile_size, batch_size=batch_size,
                          progress=progress, components=True)
    result = segmentation_from_probabilities(class_probabilities(comps, model.network), model.tasks,
                                             postprocess or model.postprocess)
    result.components = {t.name: comps[t.name] for t in model.tasks if t.components > 1}
    return result
