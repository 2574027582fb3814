"""Training patches: preparation of the annotated images, sampling that
favours annotated areas, and augmentation.

Each patch is drawn for one task: a task is picked uniformly among those that
have annotated images (so the few strongly labelled images are seen as often
as the many blob-labelled ones), then an image annotated for it, then a centre
that lies on a painted pixel with probability ``annotated_fraction``. Every
task's labels of that image go into the patch, so a patch trains every task
its image is annotated for.

A self-supervised task (``TaskSpec.self_supervised``) counts every image as
annotated for it: an image without its labels trains it with every pixel
unlabelled. A patch drawn for it comes from an image with its labels with
probability ``annotated_fraction`` (from any image otherwise), so that a few
painted images among many unpainted ones still give its supervised part
most of its patches. When a task asks for blind spots (``TaskSpec.blind_spot``), a
batch's patches get them (Noise2Void: a fraction of the pixels replaced by
the value of a random neighbour) and the batch also holds the ``clean``
patches and the ``blind`` mask, for the loss.

:meth:`PatchSampler.prefetch` draws the next batch in a background thread
while the trainer runs a step (pinned memory for CUDA); the batches are the
ones a plain :meth:`~PatchSampler.sample` would draw, in the same order, and
any change of the sampler (new targets, a task excluded) first drops a batch
drawn ahead and rewinds the random generator to before it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from ..annotations import LazyAnnotations
from ..config import AugmentConfig, NormalizationConfig, TrainConfig
from ..normalize import normalize
from ..tasks import TaskSpec
from . import augment

#: At most this many painted pixels per image and task are kept as patch centres.
MAX_CENTRES = 20000

#: A blind-spot pixel takes the value of a random pixel at most this far (px, in y and x).
BLIND_SPOT_RADIUS = 5


@dataclass
class PreparedImage:
    """An annotated image ready for sampling (normalised, CYX)."""

    name: str
    image: np.ndarray
    targets: dict[str, np.ndarray]
    valid: dict[str, np.ndarray]
    annotated: dict[str, bool]
    centres: dict[str, np.ndarray]


def prepare(item: LazyAnnotations, tasks: Sequence[TaskSpec], norm: NormalizationConfig,
            rng: np.random.Generator) -> PreparedImage:
    image = normalize(item.image, norm)
    shape = image.shape[1:]
    roi = np.ones(shape, bool) if item.roi is None else np.asarray(item.roi, bool)
    targets, valid, annotated, centres = {}, {}, {}, {}
    for t in tasks:
        ann = item.is_annotated(t.name)
        lab = item.label(t.name) if ann else None
        # every image trains a self-supervised task: one without its labels has every pixel unlabelled
        annotated[t.name] = ann = ann or t.self_supervised
        if not ann:
            targets[t.name] = np.zeros(shape, np.int16)
            valid[t.name] = np.zeros(shape, bool)
            centres[t.name] = np.zeros((0, 2), np.int32)
            continue
        v = roi.copy()
        if lab is None:
            lab = np.full(shape, t.unlabelled_value or 0, np.int16)
            v[:] = False
        else:
            lab = np.asarray(lab)
            if t.unlabelled_value is not None:
                v &= lab != t.unlabelled_value
        targets[t.name] = lab.astype(np.int16)
        valid[t.name] = v
        centres[t.name] = painted_centres(lab, v, rng, t)
    return PreparedImage(item.name, image, targets, valid, annotated, centres)


def painted_centres(targets: np.ndarray, valid: np.ndarray, rng: np.random.Generator,
                    task: TaskSpec | None = None) -> np.ndarray:
    """Where a patch of a task may be centred: painted (> 0) and valid pixels, (N, 2) int32
    (for a task with an unlabelled value: every labelled pixel, class 0 too); a random subset
    of ``MAX_CENTRES`` when there are more."""
    labelled = valid if task is not None and task.unlabelled_value is not None else (targets > 0) & valid
    painted = np.argwhere(labelled).astype(np.int32)
    if len(painted) > MAX_CENTRES:
        painted = painted[rng.choice(len(painted), MAX_CENTRES, replace=False)]
    return painted


def _crop(arr: np.ndarray, y0: int, x0: int, size: int, fill=0) -> np.ndarray:
    """Window [y0, y0+size) x [x0, x0+size) of the last two axes, ``fill`` outside."""
    h, w = arr.shape[-2:]
    out = np.full(arr.shape[:-2] + (size, size), fill, dtype=arr.dtype)
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + size, h), min(x0 + size, w)
    if ye > ys and xe > xs:
        out[..., ys - y0:ye - y0, xs - x0:xe - x0] = arr[..., ys:ye, xs:xe]
    return out


def _resize(arr: np.ndarray, size: int, interp: int) -> np.ndarray:
    if arr.shape[-1] == size:
        return arr
    if arr.ndim == 2:
        return cv2.resize(arr, (size, size), interpolation=interp)
    return np.stack([cv2.resize(a, (size, size), interpolation=interp) for a in arr])


def _counts(im: PreparedImage, task: TaskSpec) -> np.ndarray:
    if not im.annotated[task.name]:
        return np.zeros(task.n_classes, np.int64)
    lab = im.targets[task.name][im.valid[task.name]]
    return np.bincount(lab.ravel(), minlength=task.n_classes)[:task.n_classes].astype(np.int64)


class PatchSampler:
    """Draws augmented training batches from prepared images; owns their targets.

    Targets change only through :meth:`set_targets`, which keeps the patch
    centres and the class counts in step.
    """

    def __init__(self, images: Sequence[PreparedImage], tasks: Sequence[TaskSpec], config: TrainConfig,
                 rng: np.random.Generator):
        self.images = list(images)
        self.tasks = list(tasks)
        self.config = config
        self.rng = rng
        self.by_task = {t.name: [i for i, im in enumerate(self.images) if im.annotated[t.name]]
                        for t in self.tasks}
        self.active_tasks = [name for name, idx in self.by_task.items() if idx]
        #: self-supervised tasks with images without their labels: the images with labels
        self.labelled = {t.name: labelled for t in self.tasks if t.self_supervised
                         for labelled in [[i for i in self.by_task[t.name] if self.images[i].valid[t.name].any()]]
                         if 0 < len(labelled) < len(self.by_task[t.name])}
        self._counts = {t.name: [_counts(im, t) for im in self.images] for t in self.tasks}
        #: the fraction of blind-spot pixels of every patch (the largest any task asks for)
        self.blind_spot = max([t.blind_spot for t in self.tasks], default=0.0)
        #: a batch being drawn ahead: (batch size, thread, its result, the generator's state before it)
        self._ahead: tuple[int, threading.Thread, dict, dict] | None = None

    def class_counts(self, task: TaskSpec) -> np.ndarray:
        """Pixels of each class of ``task`` over the valid pixels of its annotated images."""
        per_image = self._counts[task.name]
        return np.sum(per_image, axis=0) if per_image else np.zeros(task.n_classes, np.int64)

    def set_targets(self, index: int, task: str, targets: np.ndarray) -> None:
        """Replace one task's targets of image ``index`` (e.g. between rounds); its patch centres
        (a random subset of the painted pixels) and class counts follow."""
        self.cancel_prefetch()
        im = self.images[index]
        spec = next(t for t in self.tasks if t.name == task)
        targets = np.asarray(targets)
        if targets.shape != im.targets[task].shape:
            raise ValueError(f"targets of {task!r} for {im.name!r} have shape {targets.shape}, "
                             f"not {im.targets[task].shape}")
        im.targets[task] = targets.astype(np.int16, copy=False)
        im.centres[task] = painted_centres(im.targets[task], im.valid[task], self.rng, spec)
        self._counts[task][index] = _counts(im, spec)

    def exclude_from_draw(self, task: str) -> None:
        """Draw no patch *for* ``task`` (its labels still train on every patch of an image
        annotated for it), as long as other tasks remain to draw for."""
        self.cancel_prefetch()
        if task in self.active_tasks and len(self.active_tasks) > 1:
            self.active_tasks = [t for t in self.active_tasks if t != task]

    def _centre(self, im: PreparedImage, task: str) -> tuple[int, int]:
        h, w = im.image.shape[1:]
        pts = im.centres[task]
        if len(pts) and self.rng.random() < self.config.annotated_fraction:
            y, x = pts[self.rng.integers(len(pts))]
            jitter = self.config.patch_size // 4
            return int(y + self.rng.integers(-jitter, jitter + 1)), int(x + self.rng.integers(-jitter, jitter + 1))
        return int(self.rng.integers(h)), int(self.rng.integers(w))

    def sample_patch(self) -> tuple[np.ndarray, dict, dict, dict]:
        task = self.active_tasks[self.rng.integers(len(self.active_tasks))]
        pool = self.by_task[task]
        if task in self.labelled and self.rng.random() < self.config.annotated_fraction:
            pool = self.labelled[task]
        im = self.images[pool[self.rng.integers(len(pool))]]
        aug: AugmentConfig = self.config.augment
        p = self.config.patch_size
        scale = self.rng.uniform(*aug.scale_range) if aug.scale_range[0] != aug.scale_range[1] else 1.0
        size = max(8, int(round(p * scale)))
        cy, cx = self._centre(im, task)
        y0, x0 = cy - size // 2, cx - size // 2
        image = _resize(_crop(im.image, y0, x0, size), p, cv2.INTER_LINEAR)
        targets = {k: _resize(_crop(v, y0, x0, size), p, cv2.INTER_NEAREST) for k, v in im.targets.items()}
        valid = {k: _resize(_crop(v.view(np.uint8), y0, x0, size), p, cv2.INTER_NEAREST).astype(bool)
                 for k, v in im.valid.items()}
        if aug.elastic_alpha > 0:
            maps = augment.elastic_field(p, aug.elastic_alpha, aug.elastic_grid, self.rng)
            image = augment.remap(image, maps, nearest=False)
            targets = {n: augment.remap(a, maps, nearest=True) for n, a in targets.items()}
            valid = {n: augment.remap(a.view(np.uint8), maps, nearest=True).astype(bool)
                     for n, a in valid.items()}
        k = int(self.rng.integers(4)) if aug.rot90 else 0
        flip = aug.flips and self.rng.random() < 0.5

        def geo(a):
            a = np.rot90(a, k, axes=(-2, -1))
            return np.ascontiguousarray(a[..., ::-1] if flip else a)

        image = geo(image)
        targets = {n: geo(a) for n, a in targets.items()}
        valid = {n: geo(a) for n, a in valid.items()}
        if aug.stain_jitter > 0:
            image = augment.stain_jitter(image, aug.stain_jitter, self.rng)
        image = image * self.rng.uniform(*aug.gain_range) + self.rng.uniform(*aug.offset_range)
        if aug.blur_probability > 0 and self.rng.random() < aug.blur_probability:
            image = augment.blur(image.astype(np.float32), float(self.rng.uniform(*aug.blur_sigma)))
        if aug.noise_std > 0:
            image = image + self.rng.normal(0, aug.noise_std, image.shape).astype(np.float32)
        return image.astype(np.float32), targets, valid, dict(im.annotated)

    def prefetch(self, batch_size: int, pin_memory: bool = False) -> None:
        """Start drawing the next batch of ``batch_size`` in a background thread (its tensors
        in pinned memory if ``pin_memory``); :meth:`sample` returns it."""
        self.cancel_prefetch()
        state = self.rng.bit_generator.state
        result: dict = {}

        def draw() -> None:
            try:
                batch = self._draw(batch_size)
                result["batch"] = _pinned(batch) if pin_memory else batch
            except BaseException as exc:     # raised again by sample(), in the trainer's thread
                result["error"] = exc

        thread = threading.Thread(target=draw, name="lazylabels-patches", daemon=True)
        thread.start()
        self._ahead = (batch_size, thread, result, state)

    def cancel_prefetch(self) -> None:
        """Drop a batch drawn ahead, if any, and rewind the generator to before it."""
        if self._ahead is None:
            return
        _, thread, _, state = self._ahead
        _join(thread)
        self.rng.bit_generator.state = state
        self._ahead = None

    def sample(self, batch_size: int) -> dict:
        """A batch: image (B,C,P,P) and, per task, targets (B,P,P), valid (B,P,P), annotated (B,);
        with blind spots also ``clean`` (B,C,P,P), the patches without them, and ``blind`` (B,P,P).
        The batch :meth:`prefetch` drew, if it drew one of this size."""
        if self._ahead is not None and self._ahead[0] == batch_size:
            _, thread, result, _ = self._ahead
            _join(thread)
            self._ahead = None
            if "error" in result:
                raise result["error"]
            return result["batch"]
        self.cancel_prefetch()
        return self._draw(batch_size)

    def _draw(self, batch_size: int) -> dict:
        patches = [self.sample_patch() for _ in range(batch_size)]
        names = [t.name for t in self.tasks]
        image = np.stack([pt[0] for pt in patches])
        batch = {
            "image": torch.from_numpy(image),
            "targets": {n: torch.from_numpy(np.stack([pt[1][n] for pt in patches]).astype(np.int64)) for n in names},
            "valid": {n: torch.from_numpy(np.stack([pt[2][n] for pt in patches])) for n in names},
            "annotated": {n: torch.tensor([pt[3][n] for pt in patches]) for n in names},
        }
        if self.blind_spot > 0:
            corrupted, blind = blind_spots(image, self.blind_spot, self.rng)
            batch.update(image=torch.from_numpy(corrupted), clean=torch.from_numpy(image),
                         blind=torch.from_numpy(blind))
        return batch


def _pinned(batch: dict) -> dict:
    """The batch with its tensors in page-locked memory (fast, asynchronous copies to CUDA)."""
    return {k: _pinned(v) if isinstance(v, dict) else v.pin_memory() for k, v in batch.items()}


def blind_spots(image: np.ndarray, fraction: float, rng: np.random.Generator,
                radius: int = BLIND_SPOT_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """Noise2Void blind spots (Krull et al. 2019) in a batch (B, C, P, P).

    In each patch ``round(fraction * P * P)`` pixels (at least one) chosen at
    random take the value (every channel) of another pixel of the patch at
    most ``radius`` px away in y and x. Returns the corrupted copy and the
    (B, P, P) mask of the blind spots.
    """
    b, _, h, w = image.shape
    out = image.copy()
    blind = np.zeros((b, h, w), bool)
    n = max(1, int(round(fraction * h * w)))
    for i in range(b):
        flat = rng.choice(h * w, n, replace=False)
        ys, xs = flat // w, flat % w
        dy = rng.integers(-radius, radius + 1, n)
        dx = rng.integers(-radius, radius + 1, n)
        same = (dy == 0) & (dx == 0)
        dx[same] = rng.choice((-1, 1), int(same.sum()))       # never the pixel itself
        sy = np.clip(ys + dy, 0, h - 1)
        sx = np.clip(xs + dx, 0, w - 1)
        same = (sy == ys) & (sx == xs)                        # clipped back onto itself at an edge
        sx[same] = np.where(xs[same] > 0, xs[same] - 1, xs[same] + 1)
        out[i][:, ys, xs] = image[i][:, sy, sx]
        blind[i, ys, xs] = True
    return out, blind


def _join(thread: threading.Thread) -> None:
    """Wait for ``thread`` in short timed joins, so that Ctrl-C or SIGTERM arriving meanwhile is
    raised between two of them and a later wait (the cleanup's) still finds the thread joinable."""
    while thread.is_alive():
        thread.join(0.05)
