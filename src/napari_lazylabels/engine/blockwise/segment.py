"""Block-wise prediction of one image into its sinks: the passes run in order, as a prediction spec says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ...errors import AnnotationError, SettingsError
from ..annotations import MIN_IMAGE_SIZE
from ..prediction_spec import PredictionSpec
from ..trained_model import LazyLabelsModel
from .executors import Executor, LocalExecutor
from .grid import block_grid
from .instances import BlockSinks, instances_blockwise
from .probabilities import normalization_ranges, probabilities


def check_lazy_image(image, source: str | None = None) -> None:
    """:func:`~..annotations.check_image`'s checks that need no pixels (shape and type)."""
    shape, dtype = tuple(image.shape), np.dtype(image.dtype)
    if len(shape) == 3 and shape[-1] > 4 and shape[0] <= 4:
        raise AnnotationError(f"image has shape {shape}; put the channel axis last (YXC)", source=source)
    if len(shape) not in (2, 3):
        raise AnnotationError(f"image must be 2D (YX) or 2D with a trailing channel axis (YXC), got shape {shape}",
                              source=source)
    if min(shape[:2]) < MIN_IMAGE_SIZE:
        raise AnnotationError(f"image is {shape[0]}x{shape[1]} px; at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} "
                              f"is needed", source=source)
    if np.issubdtype(dtype, np.complexfloating) or not (np.issubdtype(dtype, np.number) or dtype == bool):
        raise AnnotationError(f"image has values of type {dtype}, not real numbers", source=source)


@dataclass
class BlockwiseResult:
    """What :func:`segment_blockwise` found: the number of objects, the normalisation ranges used."""

    n_objects: int
    ranges: list = field(default_factory=list)
    blocks: int = 0
    resolved: int = 0


def check_blockwise(factor: float = 1.0) -> None:
    """Refuse what block-wise prediction does not do (a rescale: resize the image first)."""
    if abs(factor - 1.0) >= 1e-3:
        raise SettingsError(f"block-wise (out-of-core) prediction does not resize images (the factor would be "
                            f"{factor:.3g}); resize the image first, or predict it in memory with --in-memory")


def segment_blockwise(model: LazyLabelsModel, image, sinks: BlockSinks, spec: PredictionSpec, *,
                      run: Executor | None = None, source: str | None = None) -> BlockwiseResult:
    """:func:`~..pipeline.segment_in_memory` of a raw YX or YXC image (a dask array, or any array-like),
    block by block, into ``sinks`` (see the package docstring), as ``spec`` says (its blocks, halo,
    device, post-processing and flips; a rescale is refused first, :func:`check_blockwise`). ``run``
    executes each pass's tasks (default: in this process, one block at a time)."""
    import dask
    check_lazy_image(image, source)
    run = run or LocalExecutor()
    grid = block_grid(image.shape[:2], model.network, spec)
    ranges = normalization_ranges(image, model.normalization, run, source)
    probs = probabilities(model, image, ranges, grid, device=spec.device, flips=spec.postprocess.flips)
    # one task per block that stores every task's core: the block's forward pass runs once
    parts = {name: arr.to_delayed(optimize_graph=False).ravel() for name, arr in probs.items()}
    run([dask.delayed(_store_probabilities)(sinks.probabilities, {name: p[i] for name, p in parts.items()}, box)
         for i, box in enumerate(grid.boxes())], "probabilities")
    n, resolved = instances_blockwise(sinks, model.tasks, spec.postprocess, grid, halo=spec.halo, run=run)
    return BlockwiseResult(n, [np.asarray(r).tolist() for r in ranges], len(grid.boxes()), resolved)


def _store_probabilities(targets: Mapping[str, Any], chunks: Mapping[str, np.ndarray], box) -> int:
    y0, y1, x0, x1 = box
    for name, values in chunks.items():
        targets[name][:, y0:y1, x0:x1] = values
    return 0
