"""Writing a prediction: instance TIFF, or OME-Zarr with image, labels and probabilities.

A stack (T or Z planes, predicted plane by plane) becomes a multi-page TIFF
with its axes and pixel size in OME metadata, or, for ``.zarr``, a project
folder with one OME-Zarr store per plane that napari opens as the stack again.

:func:`write_prediction_blocks` writes the same files from a block-wise
(out-of-core) prediction: it gives the predictor one OME-Zarr store per plane
(:class:`~.prediction_store.PredictionStore`, the sinks the blocks are written to),
which is the output, or from which a tiled TIFF is written tile by tile (the
stores are then scratch beside it). What fills the stores is the caller's
business (:mod:`napari_lazylabels.recipes.predict`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..engine.annotations import PixelSize
from ..engine.pipeline import Segmentation
from ..engine.trained_model import LazyLabelsModel
from .atomic import atomic_write_dir, scratch_dir
from .image_file import ImageFile
from .label_tiff import write_labels_tiff, write_labels_tiff_blocks
from .ngff import STORE_SUFFIX
from .ome_zarr import ImageStore, write_image_store
from .output_paths import is_tiff
from .own_outputs import check_replaceable_output, is_prediction_project, is_prediction_store
from .prediction_store import PredictionStore
from .project import write_project, write_project_file

#: What ``--overwrite`` replaces of a prediction written as a folder (see :mod:`.own_outputs`).
PREDICTION_STORE = "an OME-Zarr store this tool's prediction wrote (without painted labels)"
PREDICTION_PROJECT = "a project of this tool's predictions"

#: ``fill(plane index, plane, its store)``: predict the plane into the store; returns the number of objects.
PlaneFill = Callable[[tuple[int, ...], object, PredictionStore], int]


def prediction_bytes(out: str | Path, image: np.ndarray, model: LazyLabelsModel) -> int:
    """About how much disk the prediction of ``image`` takes at ``out`` (uncompressed, the most)."""
    pixels = int(np.prod(image.shape[:2]))
    if is_tiff(Path(out)):
        return 4 * pixels
    return int(image.nbytes) + 2 * 4 * pixels + sum(4 * t.n_classes * pixels for t in model.tasks)


def blockwise_scratch_bytes(image, model: LazyLabelsModel) -> int:
    """About how much disk a block-wise prediction of ``image`` needs besides its output (the scratch
    store of a TIFF output: probabilities, keys, labels)."""
    pixels = int(np.prod(image.shape[:2]))
    return 8 * pixels + 2 * 4 * pixels + sum(4 * t.n_classes * pixels for t in model.tasks)


def prediction_metadata(model: LazyLabelsModel, source: str | None = None) -> dict:
    return {"class_names": model.class_names, "source": source,
            "model": {k: model.provenance.get(k) for k in ("date", "trained_steps", "data", "versions")}}


def write_prediction(out: str | Path, image: np.ndarray, result: Segmentation, model: LazyLabelsModel,
                     *, overwrite: bool = False, source: str | None = None,
                     pixel_size: PixelSize | None = None) -> Path:
    """``.tif``/``.tiff``: instance labels; ``.zarr``: the full OME-Zarr store. ``overwrite`` replaces only
    a prediction (:func:`~.own_outputs.check_replaceable_output`)."""
    out = Path(out)
    check_replaceable_output(out)
    if is_tiff(out):
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
    check_replaceable_output(out)
    if is_tiff(out):
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
                                 name=_plane_name(name, index), metadata=meta,
                                 pixel_size=pixel_size))
    return write_project(out, stores, overwrite=overwrite, class_names=model.class_names)


def _plane_name(name: str, index: tuple[int, ...]) -> str:
    return f"{name}_{'_'.join(f'{i:03d}' for i in index)}"


def write_prediction_blocks(out: str | Path, image: ImageFile, model: LazyLabelsModel, fill: PlaneFill, *,
                            channels: Mapping[str, int], semantic_dtype, chunk: int, overwrite: bool = False,
                            pixel_size: PixelSize | None = None) -> Path:
    """The files :func:`write_prediction` and :func:`write_stack_prediction` write, without the image in
    memory: each plane of ``image`` gets a :class:`PredictionStore` (``channels``: the probability
    channels of each task; ``chunk``: the block edge) that ``fill`` predicts into; then the stores are
    the output (``.zarr``: one store, or a project of one per plane), or a tiled TIFF is written from
    them (the stores are scratch beside it, without the image).

    Raises:
        OutputExistsError: ``out`` exists and ``overwrite`` is false, or is not this tool's output.
    """
    out = Path(out)
    check_replaceable_output(out)
    planes = list(image.planes())
    name = Path(image.source).stem

    def store_at(path: Path, index: tuple[int, ...], plane, keep_image: bool) -> PredictionStore:
        meta = prediction_metadata(model, image.source)
        if index:
            meta["stack"] = {"name": name, "plane": list(index), "shape": list(image.plane_shape),
                             "axes": image.plane_axes}
        store = PredictionStore(path, image_shape=plane.shape, image_dtype=plane.dtype, channels=channels,
                                semantic_dtype=semantic_dtype, chunk=chunk,
                                name=_plane_name(name, index) if index else name, metadata=meta,
                                pixel_size=pixel_size, keep_image=keep_image)
        store.finish(fill(index, plane, store))
        return store

    if is_tiff(out):
        with scratch_dir(out) as tmp:
            stores = {index: store_at(tmp / f"plane{n}{STORE_SUFFIX}", index, plane, keep_image=False)
                      for n, (index, plane) in enumerate(planes)}
            dtype = np.result_type(*(s.labels_dtype for s in stores.values()))

            def read(index, y0, y1, x0, x1):
                return stores[index].instances_array[y0:y1, x0:x1]

            return write_labels_tiff_blocks(out, image.plane_shape + tuple(planes[0][1].shape[:2]), dtype, read,
                                            overwrite=overwrite,
                                            axes=image.plane_axes + "yx" if image.is_stack else None,
                                            pixel_size=pixel_size)
    if not image.is_stack:
        return atomic_write_dir(out, lambda tmp: store_at(tmp, (), planes[0][1], keep_image=True),
                                overwrite=overwrite, replaceable=is_prediction_store, what=PREDICTION_STORE)

    def fill_project(tmp: Path) -> None:
        names = []
        for index, plane in planes:
            names.append(_plane_name(name, index))
            store_at(tmp / (names[-1] + STORE_SUFFIX), index, plane, keep_image=True)
        write_project_file(tmp, names, model.class_names)

    return atomic_write_dir(out, fill_project, overwrite=overwrite, replaceable=is_prediction_project,
                            what=PREDICTION_PROJECT)
