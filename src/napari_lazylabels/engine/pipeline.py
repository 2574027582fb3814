"""From a raw image to probabilities, semantic labels and instances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .postprocess.instances import InstanceParams, instances_from_probabilities
from ..io.modelio import LazyLabelsModel


@dataclass
class Segmentation:
    """What a model makes of one image."""

    probabilities: dict[str, np.ndarray]
    semantic: np.ndarray
    instances: np.ndarray

    @property
    def n_objects(self) -> int:
        return int(self.instances.max())


def instance_dtype(instances: np.ndarray) -> np.dtype:
    """uint16 when the ids fit, else uint32."""
    return np.dtype(np.uint16) if instances.max(initial=0) <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


def segment(model: LazyLabelsModel, image: np.ndarray, *, device="cpu", tile_size: int = 1024,
            batch_size: int = 2, params: InstanceParams | None = None, progress=None) -> Segmentation:
    """Tiled prediction, then semantic and instance labels (METHOD 5).

    A model trained with the recursive approximation task (it has the
    approximation head) ends with the paper's final growth instead
    (:func:`~napari_lazylabels.recursive.final_growth` with its ``lambda_final``),
    whoever calls: the CLI, the napari widgets, a script.
    """
    from .regimes.recursive import final_growth, recursive_settings   # recursive builds on this module

    probs = model.predict(image, device=device, tile_size=tile_size, batch_size=batch_size,
                          progress=progress)
    settings = recursive_settings(model)
    if settings is not None:
        return final_growth(probs, settings.lambda_final, params)
    return segmentation_from_probabilities(probs, params)


def segmentation_from_probabilities(probs: dict[str, np.ndarray],
                                    params: InstanceParams | None = None) -> Segmentation:
    semantic, instances = instances_from_probabilities(probs, params)
    return Segmentation(probs, semantic, instances)
