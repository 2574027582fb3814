"""Writing a prediction: instance TIFF, or OME-Zarr with image, labels and probabilities.

A stack (T or Z planes, predicted plane by plane) becomes a multi-page TIFF
with its axes and pixel size in OME metadata, or, for ``.zarr``, a project
folder with one OME-Zarr store per plane that napari opens as the stack again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..engine.annotations import PixelSize
from ..engine.pipeline import Segmentation
from ..engine.trained_model import LazyLabelsModel
from ..errors import OutputExistsError
from .imageio import ImageFile, write_labels_tiff
from .ome_zarr import ImageStore, is_image_store, write_image_store, write_project


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


def _is_tiff(out: Path) -> bool:
    return out.name.lower().endswith((".tif", ".tiff"))


def write_prediction(out: str | Path, image: np.ndarray, result: Segmentation, model: LazyLabelsModel,
                     *, overwrite: bool = False, source: str | None = None,
                     pixel_size: PixelSize | None = None) -> Path:
    """``.tif``/``.tiff``: instance labels; ``.zarr``: the full OME-Zarr store."""
    out = Path(out)
    if _is_tiff(out):
        return write_labels_tiff(out, result.instances, overwrite=overwrite, pixel_size=pixel_size)
    return write_image_store(out, image, labels=result.label_layers(),
                             probabilities={k: v.astype(np.float32) for k, v in result.probabilities.items()},
                             name=Path(source).stem if source else None,
                             metadata=prediction_metadata(model, source), overwrite=overwrite,
                             pixel_size=pixel_size)


def write_stack_prediction(out: str | Path, image: ImageFile, results: Sequence[tuple[tuple[int, ...], Segmentation]],
                           model: LazyLabelsModel, *, overwrite: bool = False,
                           pixel_size: PixelSize | None = None) -> Path:
    """The predictions of every plane of a stack: a multi-page TIFF, or a project of one store per plane."""
    out = Path(out)
    if _is_tiff(out):
        stack = np.zeros(image.plane_shape + results[0][1].instances.shape, np.int64)
        for index, seg in results:
            stack[index] = seg.instances
        return write_labels_tiff(out, stack, overwrite=overwrite, planar=False,
                                 axes=image.plane_axes + "yx", pixel_size=pixel_size)
    name = Path(image.source).stem
    stores = []
    for (index, seg), (_, plane) in zip(results, image.planes()):
        meta = prediction_metadata(model, image.source)
        meta["stack"] = {"name": name, "plane": list(index), "shape": list(image.plane_shape),
                         "axes": image.plane_axes}
        stores.append(ImageStore(image=plane, labels=seg.label_layers(),
                                 probabilities={k: v.astype(np.float32) for k, v in seg.probabilities.items()},
                                 name=f"{name}_{'_'.join(f'{i:03d}' for i in index)}", metadata=meta,
                                 pixel_size=pixel_size))
    return write_project(out, stores, overwrite=overwrite, class_names=model.class_names)
