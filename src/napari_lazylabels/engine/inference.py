"""Tiled, batched, Gaussian-blended prediction (Ke et al. 2020, section 4.1; METHOD 5).

The image is padded (reflect) to a multiple of the network's pooling factor
and cut into overlapping tiles whose origins are on the pooling grid. Of each
tile only the core farther than the receptive-field radius from an inner tile
edge is used, weighted by a Gaussian centred on the tile, and the weighted
sum is normalised. Because every used pixel saw its whole receptive field,
the result equals a single whole-image pass up to float rounding, whatever
the tile size (``tests/test_inference.py`` checks it).

Speed (``benchmarks/speed.py``, docs/benchmarks.md): the network runs with its
BatchNorm folded into the convolutions, in channels-last memory format, under
``torch.inference_mode`` (in fp32 on the CPU in ONNX Runtime instead where the ``onnx`` extra is
installed, :mod:`.onnx_backend`); with ``amp`` (the default of :func:`predict_tiled`)
in fp16 autocast on CUDA. bf16 autocast on CPUs with AVX512-BF16 or AMX is
opt-in (:data:`CPU_BF16`): it moved the demo model's AP50 by 0.006, more than
the 0.005 a default may (``benchmarks/precision.py``), so the CPU default is fp32.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .device import reduced_precision
from .model import LazyUNet, component_probabilities, fold_batchnorm, receptive_radius
from .onnx_backend import OnnxNetwork, onnx_network

ProgressFn = Callable[[int, int], None]

#: bf16 autocast for ``amp`` inference on CPUs with native bf16 (off: see the module docstring).
CPU_BF16 = False

#: The test-time flips (``PostProcessing.flips``), as axes of a CYX array: none, up-down, left-right, both.
FLIPS = ((), (-2,), (-1,), (-2, -1))


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def tile_layout(length: int, tile: int, margin: int, multiple: int) -> tuple[int, list[int]]:
    """Tile length and tile starts along one axis of a padded length.

    Starts are multiples of ``multiple``; consecutive cores (tiles less
    ``margin`` on inner sides) overlap or touch, so every pixel is covered.
    """
    if length <= tile:
        return length, [0]
    n = max(2, math.ceil((length - 2 * margin) / max(tile - 2 * margin, multiple)))
    while True:
        t = _round_up(math.ceil((length + 2 * margin * (n - 1)) / n), multiple)
        while t <= min(length, max(tile, t)):
            starts = sorted({min((i * (length - t) // (n - 1)) // multiple * multiple, length - t)
                             for i in range(n)})
            if all(b + margin <= a + t - margin for a, b in zip(starts, starts[1:])):
                return t, starts
            t += multiple
        n += 1


def gaussian_window(h: int, w: int, sigma_fraction: float = 0.25) -> np.ndarray:
    """Gaussian weights centred on a tile (sigma = fraction of its size)."""
    y = np.arange(h) - (h - 1) / 2
    x = np.arange(w) - (w - 1) / 2
    gy = np.exp(-0.5 * (y / (sigma_fraction * h)) ** 2)
    gx = np.exp(-0.5 * (x / (sigma_fraction * w)) ** 2)
    return np.outer(gy, gx).astype(np.float32) + 1e-6


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad a CYX array at the bottom and right to a multiple of ``multiple``."""
    h, w = image.shape[-2:]
    ph, pw = _round_up(max(h, multiple), multiple) - h, _round_up(max(w, multiple), multiple) - w
    if ph == 0 and pw == 0:
        return image
    return np.pad(image, ((0, 0), (0, ph), (0, pw)), mode="symmetric")


def mean_over_flips(one_pass: Callable[[tuple[int, ...], ProgressFn | None], dict[str, np.ndarray]],
                    flips: bool, progress: ProgressFn | None = None) -> dict[str, np.ndarray]:
    """Test-time augmentation, the same for every back-end: ``one_pass(axes, progress)`` gives the
    probabilities of the image flipped along ``axes``, flipped back; with ``flips`` their mean over
    :data:`FLIPS` (in that order; four times the work), else the one pass without a flip."""
    if not flips:
        return one_pass((), progress)
    total: dict[str, np.ndarray] = {}
    for i, axes in enumerate(FLIPS):
        report = None if progress is None else (lambda done, n, i=i: progress(i * n + done, len(FLIPS) * n))
        for k, v in one_pass(axes, report).items():
            total[k] = v + total.get(k, 0.0)
    return {k: np.ascontiguousarray(v / len(FLIPS), dtype=np.float32) for k, v in total.items()}


def inference_network(model: LazyUNet, device: torch.device, pixels: int = 0,
                      amp: bool = False) -> nn.Module | OnnxNetwork:
    """The network as inference runs it: a copy in eval mode on ``device`` with its
    BatchNorm folded into the convolutions, in channels-last memory format (the same
    function up to float rounding; ``model`` itself is untouched). In fp32 on the CPU, for
    an image of ``pixels`` pixels, ONNX Runtime runs it instead where it is installed
    (:mod:`.onnx_backend`: faster, the same probabilities up to float rounding)."""
    def fold() -> nn.Module:
        return fold_batchnorm(model).to(device).to(memory_format=torch.channels_last)

    if device.type == "cpu" and (reduced_precision(device, CPU_BF16) if amp else None) is None:
        runner = onnx_network(model, fold, pixels)
        if runner is not None:
            return runner
    return fold()


def _forward(model: LazyUNet, net: nn.Module | OnnxNetwork, batch: np.ndarray, device: torch.device, amp: bool,
             tasks: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-component probabilities of each task's head (per-class where a class has one component);
    ``net`` is ``model`` as :func:`inference_network` prepared it."""
    if isinstance(net, OnnxNetwork):
        out = net(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        return {k: component_probabilities(out[k], *model.layouts[k]).numpy() for k in tasks}
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device).contiguous(memory_format=torch.channels_last)
    dtype = reduced_precision(device, CPU_BF16) if amp else None
    with torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext():
        out = net(x)
    return {k: component_probabilities(out[k], *model.layouts[k]).cpu().numpy() for k in tasks}


def class_probabilities(probs: dict[str, np.ndarray], model: LazyUNet) -> dict[str, np.ndarray]:
    """Per-class probabilities (C, ...) from per-component ones: each class sums its components."""
    out = {}
    for k, p in probs.items():
        n, m = model.layouts[k]
        out[k] = p if m == 1 else p.reshape(n, m, *p.shape[1:]).sum(axis=1)
    return out


@torch.inference_mode()
def predict_whole(model: LazyUNet, image: np.ndarray, device: torch.device | str = "cpu",
                  amp: bool = False, components: bool = False) -> dict[str, np.ndarray]:
    """One forward pass over the whole (normalised, CYX) image: the reference."""
    device = torch.device(device)
    model.eval()
    h, w = image.shape[-2:]
    padded = pad_to_multiple(image, model.config.size_multiple)
    net = inference_network(model, device, padded.shape[-2] * padded.shape[-1], amp)
    out = {k: v[0, :, :h, :w] for k, v in _forward(model, net, padded[None], device, amp, model.task_names).items()}
    return out if components else class_probabilities(out, model)


#: (architecture, heads) -> margin; the radius depends on nothing else, and costs up to a
#: fifth of a second for the largest network, so previews and rounds do not recompute it.
_MARGINS: dict[tuple, int] = {}


def default_margin(model: LazyUNet) -> int:
    """The network's receptive-field radius rounded up to its pooling grid (cached per architecture)."""
    key = (model.config, tuple(model.task_names))
    if key not in _MARGINS:
        _MARGINS[key] = _round_up(receptive_radius(model), model.config.size_multiple)
    return _MARGINS[key]


@torch.inference_mode()
def predict_tiled(model: LazyUNet, image: np.ndarray, *, tile_size: int = 1024, batch_size: int = 2,
                  device: torch.device | str = "cpu", amp: bool = True, margin: int | None = None,
                  tasks: Sequence[str] | None = None, progress: ProgressFn | None = None,
                  components: bool = False) -> dict[str, np.ndarray]:
    """Per-task class probabilities (C, H, W) for a normalised CYX image of any size.

    ``tile_size`` caps the tile edge (memory); tiles are made as large as
    needed to cover the image with few tiles. ``margin`` defaults to the
    network's receptive-field radius rounded up to the pooling grid.
    ``amp``: reduced precision where the device runs it fast (see the module
    docstring); ``amp=False`` is fp32 throughout.
    ``components=True``: the per-component probabilities (C * M, H, W) of a
    head with M mixture components per class instead (the same for M = 1);
    :func:`class_probabilities` sums them into classes (the blending is
    linear, so that equals the default result).
    """
    device = torch.device(device)
    model.eval()
    tasks = list(tasks or model.task_names)
    m = model.config.size_multiple
    if margin is None:
        margin = default_margin(model)
    h, w = image.shape[-2:]
    padded = pad_to_multiple(image, m)
    ph, pw = padded.shape[-2:]
    tile_size = max(_round_up(tile_size, m), 2 * margin + m)
    th, ys = tile_layout(ph, tile_size, margin, m)
    tw, xs = tile_layout(pw, tile_size, margin, m)
    window = gaussian_window(th, tw)
    boxes = [(y, x) for y in ys for x in xs]
    acc = {k: None for k in tasks}
    norm = np.zeros((ph, pw), np.float32)
    net = inference_network(model, device, ph * pw, amp)
    for b0 in range(0, len(boxes), batch_size):
        chunk = boxes[b0:b0 + batch_size]
        batch = np.stack([padded[:, y:y + th, x:x + tw] for y, x in chunk])
        out = _forward(model, net, batch, device, amp, tasks)
        for i, (y, x) in enumerate(chunk):
            # only the tile's core has weight: the margin along inner edges is left out
            y_lo = 0 if y == 0 else margin
            y_hi = th if y + th >= ph else th - margin
            x_lo = 0 if x == 0 else margin
            x_hi = tw if x + tw >= pw else tw - margin
            wgt = window[y_lo:y_hi, x_lo:x_hi]
            dst = np.s_[y + y_lo:y + y_hi, x + x_lo:x + x_hi]
            norm[dst] += wgt
            for k in tasks:
                if acc[k] is None:
                    acc[k] = np.zeros((out[k].shape[1], ph, pw), np.float32)
                part = out[k][i, :, y_lo:y_hi, x_lo:x_hi]
                np.multiply(part, wgt, out=part)
                acc[k][(slice(None),) + dst] += part
        if progress is not None:
            progress(min(b0 + batch_size, len(boxes)), len(boxes))
    if not norm.min() > 0:   # a bug in tile_layout, not the user's doing
        raise RuntimeError("tiles do not cover the image")
    out = {k: (v / norm)[:, :h, :w] for k, v in acc.items()}
    return out if components else class_probabilities(out, model)
