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
from typing import Sequence

import cv2
import numpy as np
import torch

from ..annotations import TrainingItem
from ..config import AugmentConfig, NormalizationConfig, TrainConfig
from ..normalize import normalize
from ..tasks import TaskSpec
from . import augment

#: At most this many painted pixels per image and task are kept as patch centres.
MAX_CENTRES = 20000

#: A blind-spot pixel takes the value of a random pixel at most this far (px, in y and x).
BLIND_SPOT_RADIUS = 5


class PreparedImage:
    """An annotated image ready for sampling: normalised, with every task's targets and valid pixels.

    The pixels are kept channels-last (``pixels``: Y, X, C) and the tasks' targets and valid masks
    each stacked into one (Y, X, T) array, so that a patch is cut, scaled, rotated and flipped by one
    affine warp per array (:meth:`PatchSampler.sample_patch`); ``image`` (C, Y, X), ``targets`` and
    ``valid`` (task -> Y, X) are views of them.
    """

    def __init__(self, name: str, image: np.ndarray, targets: dict[str, np.ndarray], valid: dict[str, np.ndarray],
                 annotated: dict[str, bool], centres: dict[str, np.ndarray]):
        self.name = name
        self.pixels = np.ascontiguousarray(np.moveaxis(np.asarray(image, np.float32), 0, -1))
        self.task_names = list(targets)
        shape = self.pixels.shape[:2]
        self.stacked_targets = np.zeros((*shape, len(self.task_names)), np.int16)
        self.stacked_valid = np.zeros((*shape, len(self.task_names)), np.uint8)
        for i, n in enumerate(self.task_names):
            self.stacked_targets[..., i] = targets[n]
            self.stacked_valid[..., i] = valid[n]
        self.annotated = annotated
        self.centres = centres

    @property
    def image(self) -> np.ndarray:
        """The normalised image, (C, Y, X) (a view)."""
        return np.moveaxis(self.pixels, -1, 0)

    @property
    def targets(self) -> dict[str, np.ndarray]:
        """Task -> its targets (Y, X int16, views of the stack)."""
        return {n: self.stacked_targets[..., i] for i, n in enumerate(self.task_names)}

    @property
    def valid(self) -> dict[str, np.ndarray]:
        """Task -> where its targets count (Y, X bool, views of the stack)."""
        return {n: self.stacked_valid[..., i].view(bool) for i, n in enumerate(self.task_names)}

    def set_targets(self, task: str, targets: np.ndarray) -> None:
        self.stacked_targets[..., self.task_names.index(task)] = targets


def prepare(item: TrainingItem, tasks: Sequence[TaskSpec], norm: NormalizationConfig,
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
        targets[t.name] = lab
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


def patch_warp(y0: float, x0: float, size: float, patch: int, k: int = 0, flip: bool = False) -> np.ndarray:
    """The 2x3 affine map (for :func:`cv2.warpAffine` with ``WARP_INVERSE_MAP``) from the pixels of a
    ``patch`` x ``patch`` output to the image: the window of edge ``size`` at (``y0``, ``x0``) scaled to
    the patch (pixel centres aligned, as :func:`cv2.resize`), then turned by ``k`` quarter turns as
    :func:`numpy.rot90` and mirrored left-right if ``flip``."""
    n = patch - 1
    m = np.eye(3)
    if flip:                                            # out (x, y) <- (n - x, y)
        m = m @ np.array([[-1.0, 0, n], [0, 1, 0], [0, 0, 1]])
    for _ in range(k % 4):                              # np.rot90: out[i, j] = in[j, n - i]
        m = np.array([[0.0, -1, n], [1, 0, 0], [0, 0, 1]]) @ m
    s = size / patch
    scale = np.array([[s, 0, x0 + 0.5 * s - 0.5], [0, s, y0 + 0.5 * s - 0.5], [0, 0, 1]])
    return (scale @ m)[:2]


def _warp(arr: np.ndarray, matrix: np.ndarray, out: np.ndarray, nearest: bool) -> None:
    """``arr`` (Y, X, C) sampled on the grid of ``out`` (P, P, C, written) through ``matrix``; 0 outside
    the image."""
    flags = (cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    p = out.shape[0]
    dst = out if out.shape[-1] > 1 else out[..., 0]      # OpenCV drops a single channel's axis
    cv2.warpAffine(arr if arr.shape[-1] > 1 else arr[..., 0], matrix, (p, p), dst=dst, flags=flags,
                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)


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
        im.set_targets(task, targets)
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

    def _buffers(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Empty patches for ``n`` draws: pixels (n, P, P, C), targets (n, P, P, T), valid (n, P, P, T)."""
        p, im = self.config.patch_size, self.images[0]
        return (np.empty((n, p, p, im.pixels.shape[-1]), np.float32),
                np.empty((n, p, p, len(im.task_names)), np.int16),
                np.empty((n, p, p, len(im.task_names)), np.uint8))

    def _patch_into(self, pixels: np.ndarray, targets: np.ndarray, valid: np.ndarray) -> PreparedImage:
        """Draw one patch into ``pixels`` (P, P, C), ``targets`` and ``valid`` (P, P, T): cut, scaled,
        turned, mirrored and, if asked, deformed, stain-jittered and blurred (the gain, offset and noise
        come after, batch-wide: :meth:`_intensity`). Returns the image it came from."""
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
        maps = augment.elastic_field(p, aug.elastic_alpha, aug.elastic_grid, self.rng) \
            if aug.elastic_alpha > 0 else None
        k = int(self.rng.integers(4)) if aug.rot90 else 0
        flip = bool(aug.flips and self.rng.random() < 0.5)
        # one warp per array cuts, scales, turns and mirrors; an elastic field goes between the
        # scaling and the turn, so that the image and its labels are deformed alike
        matrix = patch_warp(y0, x0, size, p) if maps is not None else patch_warp(y0, x0, size, p, k, flip)
        arrays = ((im.pixels, pixels, False), (im.stacked_targets, targets, True), (im.stacked_valid, valid, True))
        for src, out, nearest in arrays:
            _warp(src, matrix, out, nearest)
            if maps is not None:
                moved = np.rot90(augment.remap(np.moveaxis(out, -1, 0), maps, nearest=nearest), k, axes=(-2, -1))
                out[...] = np.moveaxis(moved[..., ::-1] if flip else moved, 0, -1)
        if aug.stain_jitter > 0 or aug.blur_probability > 0:
            image = np.moveaxis(pixels, -1, 0)
            if aug.stain_jitter > 0:
                image = augment.stain_jitter(image, aug.stain_jitter, self.rng)
            if aug.blur_probability > 0 and self.rng.random() < aug.blur_probability:
                image = augment.blur(np.ascontiguousarray(image), float(self.rng.uniform(*aug.blur_sigma)))
            pixels[...] = np.moveaxis(image, 0, -1)
        return im

    def _intensity(self, pixels: np.ndarray) -> torch.Tensor:
        """The patches ``pixels`` (B, P, P, C) with a random gain and offset each and Gaussian noise, as a
        (B, C, P, P) tensor in channels-last memory (the network's format)."""
        aug: AugmentConfig = self.config.augment
        n = len(pixels)
        gain = self.rng.uniform(*aug.gain_range, n).astype(np.float32)
        offset = self.rng.uniform(*aug.offset_range, n).astype(np.float32)
        image = torch.from_numpy(pixels).permute(0, 3, 1, 2)
        image.mul_(torch.from_numpy(gain)[:, None, None, None]).add_(torch.from_numpy(offset)[:, None, None, None])
        if aug.noise_std > 0:
            noise = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
            image.add_(torch.randn(image.shape, generator=noise).mul_(aug.noise_std).contiguous(
                memory_format=torch.channels_last))
        return image

    def sample_patch(self) -> tuple[np.ndarray, dict, dict, dict]:
        """One augmented patch: image (C, P, P), task -> targets (P, P), task -> valid (P, P), task ->
        whether its image is annotated for it."""
        pixels, targets, valid = self._buffers(1)
        im = self._patch_into(pixels[0], targets[0], valid[0])
        image = np.ascontiguousarray(self._intensity(pixels)[0].numpy())
        names = im.task_names
        return (image, {n: targets[0, ..., i] for i, n in enumerate(names)},
                {n: valid[0, ..., i].astype(bool) for i, n in enumerate(names)}, dict(im.annotated))

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
        """A batch: image (B,C,P,P) and, per task, targets (B,P,P int16), valid (B,P,P), annotated (B,);
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
        pixels, targets, valid = self._buffers(batch_size)
        drawn = [self._patch_into(pixels[i], targets[i], valid[i]) for i in range(batch_size)]
        names = [t.name for t in self.tasks]
        image = self._intensity(pixels)
        # targets (B, P, P, T) int16 (the loss widens them on the device) and valid as bool (a view)
        t_all, v_all = torch.from_numpy(targets), torch.from_numpy(valid).view(torch.bool)
        batch = {
            "image": image,
            "targets": {n: t_all[..., i] for i, n in enumerate(names)},
            "valid": {n: v_all[..., i] for i, n in enumerate(names)},
            "annotated": {n: torch.tensor([im.annotated[n] for im in drawn]) for n in names},
        }
        if self.blind_spot > 0:
            clean = image.numpy().copy()          # (B, C, P, P) in the array's own (channels-last) strides
            corrupted, blind = blind_spots(clean, self.blind_spot, self.rng)
            batch.update(image=torch.from_numpy(corrupted), clean=torch.from_numpy(clean),
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
