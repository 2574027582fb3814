"""Writing a prediction: instance TIFF, or OME-Zarr with image, labels and probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.pipeline import Segmentation
from ..engine.trained_model import LazyLabelsModel
from .imageio import write_labels_tiff
from .ome_zarr import write_image_store


def prediction_metadata(model: LazyLabelsModel, source: str | None = None) -> dict:
    return {"class_names": model.class_names, "source": source,
            "model": {k: model.provenance.get(k) for k in ("date", "trained_steps", "data", "versions")}}


def write_prediction(out: str | Path, image: np.ndarray, result: Segmentation, model: LazyLabelsModel,
                     *, overwrite: bool = False, source: str | None = None) -> Path:
    """``.tif``/``.tiff``: instance labels; ``.zarr``: the full OME-Zarr store."""
    out = Path(out)
    if out.name.lower().endswith((".tif", ".tiff")):
        return write_labels_tiff(out, result.instances, overwrite=overwrite)
    return write_image_store(out, image, labels=result.label_layers(),
                             probabilities={k: v.astype(np.float32) for k, v in result.probabilities.items()},
                             name=Path(source).stem if source else None,
                             metadata=prediction_metadata(model, source), overwrite=overwrite)
