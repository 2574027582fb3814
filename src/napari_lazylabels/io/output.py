"""Writing a prediction: instance TIFF, or OME-Zarr with image, labels and probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.pipeline import Segmentation
from ..engine.trained_model import LazyLabelsModel
from ..errors import OutputExistsError
from .imageio import write_labels_tiff
from .ome_zarr import is_image_store, write_image_store


def _is_tiff(out: Path) -> bool:
    return out.name.lower().endswith((".tif", ".tiff"))


def check_replaceable_output(out: str | Path) -> None:
    """Refuse, before any work, an existing ``.zarr`` output that is not an OME-Zarr store (a folder of
    other files that ``--overwrite`` would delete)."""
    out = Path(out)
    if not _is_tiff(out) and out.is_dir() and any(out.iterdir()) and not is_image_store(out):
        raise OutputExistsError("is not an OME-Zarr store; --overwrite only replaces such a store, so it is "
                                "left alone", source=str(out))


def prediction_bytes(out: str | Path, image: np.ndarray, model: LazyLabelsModel) -> int:
    """About how much disk the prediction of ``image`` takes at ``out`` (uncompressed, the most)."""
    pixels = int(np.prod(image.shape[:2]))
    if _is_tiff(Path(out)):
        return 4 * pixels
    return int(np.asarray(image).nbytes) + 2 * 4 * pixels + sum(4 * t.n_classes * pixels for t in model.tasks)


def prediction_metadata(model: LazyLabelsModel, source: str | None = None) -> dict:
    return {"class_names": model.class_names, "source": source,
            "model": {k: model.provenance.get(k) for k in ("date", "trained_steps", "data", "versions")}}


def write_prediction(out: str | Path, image: np.ndarray, result: Segmentation, model: LazyLabelsModel,
                     *, overwrite: bool = False, source: str | None = None) -> Path:
    """``.tif``/``.tiff``: instance labels; ``.zarr``: the full OME-Zarr store."""
    out = Path(out)
    if _is_tiff(out):
        return write_labels_tiff(out, result.instances, overwrite=overwrite)
    return write_image_store(out, image, labels=result.label_layers(),
                             probabilities={k: v.astype(np.float32) for k, v in result.probabilities.items()},
                             name=Path(source).stem if source else None,
                             metadata=prediction_metadata(model, source), overwrite=overwrite)
