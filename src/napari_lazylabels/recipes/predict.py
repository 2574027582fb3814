"""The prediction recipe: images in, prediction files out, for one image or a batch.

``lazylabels predict`` and the napari widget's *Predict folder* both run it::

    spec = PredictionSpec.resolve(model, device="auto")       # the model's post-processing
    with Predictor(model, spec, PredictOptions(overwrite=True)) as predictor:
        for result in predictor.predict_all([(Path("a.tif"), Path("out/a_labels.tif")), ...]):
            print(result.summary())

The model is loaded once, and the :class:`~napari_lazylabels.engine.prediction_spec.PredictionSpec`
(post-processing, device, tiles, blocks) resolved once, by the caller. Each image is read lazily
(:func:`~napari_lazylabels.io.inputs.open_image`), then predicted either in
memory (:func:`~napari_lazylabels.engine.pipeline.segment_in_memory`, plane by
plane for a stack; the image is read whole) or block by block
(:func:`~napari_lazylabels.engine.blockwise.segment.segment_blockwise`: memory bounded
by the block size, not the image size): this recipe runs the engine on each
plane, and into the stores :func:`~napari_lazylabels.io.output.write_prediction_blocks`
gives it (the sinks), with the image copied in block by block. ``mode="auto"``
takes the blocks for images of more than :data:`BLOCKWISE_PIXELS` pixels a
plane, and always on a dask cluster. Both give the same result (instances up
to their ids), test-time flips included.

On a cluster (``workers``: a ``dask.distributed`` ``LocalCluster`` of that many
worker processes on this machine; ``scheduler``: the address of a running
one, e.g. started by ``dask-jobqueue`` on SLURM) the blocks of each pass are
tasks of the cluster; the workers read the image and write the output
themselves, so both must be on a file system they share.

In a batch, an image that fails (unreadable, NaN pixels, the wrong number of
channels, ...) is reported as a failed :class:`ImageResult` and the next one
is predicted.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..engine.annotations import PixelSize, check_image
from ..engine.blockwise.executors import Executor, LocalExecutor, Progress
from ..engine.blockwise.grid import BlockGrid, block_grid
from ..engine.blockwise.instances import semantic_dtype
from ..engine.blockwise.probabilities import head_channels
from ..engine.blockwise.segment import check_blockwise, segment_blockwise
from ..engine.pipeline import rescale_factor, segment_in_memory
from ..engine.prediction_spec import PredictionSpec
from ..engine.trained_model import LazyLabelsModel
from ..errors import LazyLabelsError, SettingsError
from ..io.atomic import check_can_write, write_error
from ..io.image_file import ImageFile
from ..io.inputs import open_image
from ..io.memory import array_bytes, available_memory, check_fits, gib, shape_text
from ..io.output import (blockwise_scratch_bytes, prediction_bytes, write_prediction, write_prediction_blocks,
                         write_stack_prediction)
from ..io.output_paths import is_tiff
from ..io.own_outputs import check_not_input

#: How an image is predicted: ``auto`` (in memory up to :data:`BLOCKWISE_PIXELS` a plane, else in blocks),
#: ``memory``, ``blocks``.
MODES = ("auto", "memory", "blocks")
#: Planes of more pixels than this are predicted block by block in ``auto`` mode (3072 x 3072: the
#: in-memory path then needs about 1 GiB with the ``cpu`` network).
BLOCKWISE_PIXELS = 3072 * 3072

#: ``progress(what, done, total)``: blocks (or tiles) of the pass ``what`` of the current image.


@dataclass(frozen=True)
class PredictOptions:
    """How images are read and written, in memory or in blocks, here or on a cluster (the ``lazylabels
    predict`` options that are not the :class:`PredictionSpec`'s)."""

    pixel_size: PixelSize | None = None           # instead of the file's
    overwrite: bool = False
    mode: str = "auto"
    workers: int | None = None                    # a LocalCluster of that many worker processes
    scheduler: str | None = None                  # or the address of a running dask scheduler

    def __post_init__(self):
        if self.mode not in MODES:
            raise SettingsError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.workers is not None and self.scheduler is not None:
            raise SettingsError("give --workers (a cluster on this machine) or --scheduler (a running one), "
                                "not both")
        if self.workers is not None and not (isinstance(self.workers, int) and self.workers >= 1):
            raise SettingsError(f"--workers must be a whole number >= 1, got {self.workers!r}")
        if self.mode == "memory" and self.on_cluster:
            raise SettingsError("a dask cluster predicts block by block; leave out --in-memory")

    @property
    def on_cluster(self) -> bool:
        return self.workers is not None or self.scheduler is not None


@dataclass
class ImageResult:
    """One image of a batch: where it went, what was found, or why it failed."""

    image: Path
    out: Path
    n_objects: int = 0
    planes: int = 1
    blockwise: bool = False
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def reason(self) -> str:
        """Why it failed, without the image's name the error starts with ("" when it did not)."""
        return (self.error or "").removeprefix(f"{self.image}: ")

    def summary(self) -> str:
        if not self.ok:
            return f"{self.image}: failed ({self.reason})"
        per = f" in {self.planes} planes" if self.planes > 1 else ""
        how = ", block by block" if self.blockwise else ""
        return f"{self.image}: {self.n_objects} objects{per} -> {self.out} ({self.seconds:.1f} s{how})"


class DistributedExecutor:
    """Runs each pass's tasks on a ``dask.distributed`` client, with the same progress callback."""

    def __init__(self, client, progress: Progress | None = None):
        self.client, self.progress = client, progress

    def __call__(self, tasks, what):
        from distributed import as_completed
        if not tasks:
            return []
        futures = self.client.compute(list(tasks))
        if self.progress is not None:
            self.progress(what, 0, len(futures))
            for n, _ in enumerate(as_completed(futures), start=1):
                self.progress(what, n, len(futures))
        return self.client.gather(futures)


def _start_cluster(options: PredictOptions):
    """A client of the cluster the options name (and the LocalCluster it started, or None)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SettingsError("a dask cluster needs the distributed package: "
                            "pip install \"napari-lazylabels[distributed]\"") from None
    if options.scheduler is not None:
        try:
            return Client(options.scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise LazyLabelsError(f"cannot reach the dask scheduler ({exc})", source=options.scheduler) from None
    # one thread per worker process, and one torch thread: the workers share the cores
    cluster = LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.CRITICAL,
                           env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    return Client(cluster), cluster


class Predictor:
    """Predicts images with one model as ``spec`` says (see the module docstring; None: the model's
    post-processing on the ``auto`` device); a context manager that starts and stops the dask cluster
    the options ask for."""

    def __init__(self, model: LazyLabelsModel, spec: PredictionSpec | None = None,
                 options: PredictOptions = PredictOptions(), progress: Progress | None = None,
                 notify: Callable[[str], None] | None = None):
        self.model = model
        self.spec = spec if spec is not None else PredictionSpec.resolve(model)
        self.options = options
        self.progress = progress
        self.notify = notify
        self._client = self._cluster = None

    def __enter__(self) -> "Predictor":
        if self.options.on_cluster:
            self._client, self._cluster = _start_cluster(self.options)
        return self

    def __exit__(self, *exc) -> None:
        for thing in (self._client, self._cluster):
            if thing is not None:
                thing.close()
        self._client = self._cluster = None

    def _executor(self):
        if self._client is not None:
            return DistributedExecutor(self._client, self.progress)
        return LocalExecutor(progress=self.progress)

    def predict(self, image_path: str | os.PathLike, out: str | os.PathLike) -> ImageResult:
        """Predict one image into ``out``.

        Raises:
            LazyLabelsError: the image cannot be read or used, the output cannot be written.
        """
        start = time.perf_counter()
        image_path, out = Path(image_path), Path(out)
        check_not_input(out, [image_path])
        image = open_image(image_path)
        result = ImageResult(image_path, out, planes=max(1, int(np.prod(image.plane_shape))))
        pixel_size = self.options.pixel_size or image.pixel_size
        postprocess = self.spec.postprocess
        factor = rescale_factor(self.model, postprocess, pixel_size)
        plane_pixels = int(np.prod(image.data.shape[len(image.plane_axes):][:2]))
        blockwise = (self.options.mode == "blocks" or self.options.on_cluster
                     or (self.options.mode == "auto" and plane_pixels > BLOCKWISE_PIXELS))
        if self.options.mode == "auto" and not blockwise and abs(factor - 1) < 1e-3:
            left = available_memory()
            if left is not None and in_memory_bytes(image, self.model) > left:
                blockwise = True                     # it would not fit in memory: the blocks bound it
                self._note(result, f"{image_path}: predicted block by block (in memory it would need more "
                                   f"than the {gib(left)} available)")
        if blockwise:
            check_blockwise(factor)
        if image.is_stack:
            self._note(result, f"{image_path}: {image.describe()}; predicted plane by plane")
        if abs(factor - 1) >= 1e-3:
            why = "--rescale" if postprocess.rescale is not None else \
                f"pixel size {pixel_size} / training pixel size {self.model.training_pixel_size}"
            self._note(result, f"image resized by {factor:.3g} for the network ({why})")
        if blockwise:
            result.n_objects = self._blockwise(image, out, pixel_size)
        else:
            result.n_objects = self._in_memory(image, out, pixel_size)
        result.blockwise = blockwise
        result.seconds = time.perf_counter() - start
        return result

    def _note(self, result: ImageResult, text: str) -> None:
        result.notes.append(text)
        if self.notify is not None:
            self.notify(text)

    def _in_memory(self, image: ImageFile, out: Path, pixel_size) -> int:
        check_fits(in_memory_bytes(image, self.model), f"predicting it in memory ({shape_text(image.data.shape)} px)",
                   image.source, "predict it block by block: --out-of-core (and no --in-memory)")
        image.data = np.asarray(image.data)          # read whole
        planes = [(index, check_image(plane, source=_plane_source(image, index))) for index, plane in image.planes()]
        check_can_write(out, len(planes) * prediction_bytes(out, planes[0][1], self.model))
        results = []
        for n, (index, plane) in enumerate(planes):
            def tick(done, total, n=n):
                if self.progress is not None:
                    self.progress("tiles", n * total + done, total * len(planes))
            results.append((index, segment_in_memory(self.model, plane, self.spec, pixel_size=pixel_size,
                                                     progress=tick)))
        if image.is_stack:
            write_stack_prediction(out, image, results, self.model, overwrite=self.options.overwrite,
                                   pixel_size=pixel_size)
        else:
            write_prediction(out, planes[0][1], results[0][1], self.model, overwrite=self.options.overwrite,
                             source=image.source, pixel_size=pixel_size)
        return sum(r.n_objects for _, r in results)

    def _blockwise(self, image: ImageFile, out: Path, pixel_size) -> int:
        """Every plane block by block (the engine's passes, run by this predictor's executor) into the
        stores the output gives (the image copied into them too, where the output keeps it)."""
        first = next(image.planes())[1]
        need = int(np.prod(image.plane_shape)) * prediction_bytes(out, first, self.model)
        if is_tiff(out):
            need += blockwise_scratch_bytes(first, self.model)
        check_can_write(out, need)
        grid = block_grid(first.shape[:2], self.model.network, self.spec)
        run = self._executor()
        found: list[int] = []

        def fill(index: tuple[int, ...], plane, store) -> int:
            if store.image is not None:
                _copy_image(plane, store.image, grid, run)
            found.append(segment_blockwise(self.model, plane, store, self.spec, run=run,
                                           source=_plane_source(image, index)).n_objects)
            return found[-1]

        write_prediction_blocks(out, image, self.model, fill,
                                channels=head_channels(self.model.network), semantic_dtype=semantic_dtype(self.model),
                                chunk=grid.block, overwrite=self.options.overwrite, pixel_size=pixel_size)
        return sum(found)

    def predict_all(self, pairs: Iterable[tuple[Path, Path]],
                    before: Callable[[Path], None] | None = None) -> Iterator[ImageResult]:
        """:meth:`predict` each (image, output) pair; a user error is a failed result, and the batch goes on."""
        for image_path, out in pairs:
            if before is not None:
                before(image_path)
            try:
                try:
                    yield self.predict(image_path, out)
                except OSError as exc:
                    raise write_error(exc, out) from None
            except LazyLabelsError as exc:
                yield ImageResult(Path(image_path), Path(out), error=str(exc))
            except MemoryError:
                yield ImageResult(Path(image_path), Path(out),
                                  error="out of memory; predict it block by block (--out-of-core, --block-size)")


def in_memory_bytes(image: ImageFile, model: LazyLabelsModel) -> int:
    """About the memory an in-memory prediction of ``image`` takes: the image, a float32 copy of a plane, and
    each plane's probabilities and labels (kept until the output is written)."""
    planes = max(1, int(np.prod(image.plane_shape)))
    plane_pixels = int(np.prod(image.data.shape[len(image.plane_axes):][:2]))
    per_pixel = 4 * sum(t.n_classes for t in model.tasks) + 16          # probabilities; semantic and instances
    return (array_bytes(image.data.shape, image.data.dtype) + 4 * model.network_config.in_channels * plane_pixels
            + planes * plane_pixels * per_pixel)


def _plane_source(image: ImageFile, index: tuple[int, ...]) -> str:
    """The image's file, and the plane of a stack, as messages name them."""
    return f"{image.source}{f' plane {index}' if index else ''}"


def _copy_image(plane, target, grid: BlockGrid, run: Executor) -> None:
    """The image into its store, block by block (channels first, as the stores keep them)."""
    import dask

    def copy(values, box):
        y0, y1, x0, x1 = box
        values = np.asarray(values)
        if values.ndim == 3:
            target[:, y0:y1, x0:x1] = np.moveaxis(values, -1, 0)
        else:
            target[y0:y1, x0:x1] = values
        return 0

    run([dask.delayed(copy)(plane[y0:y1, x0:x1], (y0, y1, x0, x1)) for y0, y1, x0, x1 in grid.boxes()], "image")


