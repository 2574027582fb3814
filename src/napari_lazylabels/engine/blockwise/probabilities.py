"""Passes 1 and 2 of the block-wise prediction: the normalisation of a lazily read image, then each
block's probabilities with the context its receptive field needs (the test-time flips included)."""

from __future__ import annotations

import threading
import uuid
from typing import Any, Sequence

import numpy as np
import torch

from ...errors import AnnotationError, ModelFileError
from ..config import NormalizationConfig
from ..inference import _round_up, default_margin, mean_over_flips, predict_whole
from ..model import LazyUNet
from ..normalize import key_histogram, normalize_with, percentile_ranks, rank_bins, ranges_from_histograms
from ..trained_model import LazyLabelsModel
from .executors import Executor, trim_freed_memory
from .grid import BlockGrid, overlap_depth


class NetworkPayload:
    """The network as dask ships it to its workers (pickled once per worker, as one task's result), put on
    its device and in eval mode once per process."""

    def __init__(self, network: LazyUNet, device: torch.device, amp: bool = True):
        self._network, self.device, self.amp = network, device, amp
        self._ready = False
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"_network": self._network, "device": self.device, "amp": self.amp}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._ready, self._lock = False, threading.Lock()

    def network(self) -> LazyUNet:
        with self._lock:
            if not self._ready:
                self._network.to(self.device).eval()
                self._ready = True
        return self._network


def _as_chw(image):
    """A dask array YX or YXC -> CYX (lazily)."""
    import dask.array as da
    image = image if isinstance(image, da.Array) else da.from_array(image)
    return image[None] if image.ndim == 2 else da.moveaxis(image, -1, 0)


def _histograms(block: np.ndarray, wanted: Sequence[tuple[int, int]] | None) -> tuple[bool, dict]:
    """Per channel of a CYX block: the high-bits histogram (``wanted`` None) or the low-bits
    histograms of the wanted (channel, top) pairs; and whether every value is finite."""
    trim_freed_memory()
    values = np.asarray(block).astype(np.float32, copy=False)
    finite = bool(np.isfinite(values).all()) if np.issubdtype(values.dtype, np.floating) else True
    if wanted is None:
        return finite, {(c, None): key_histogram(values[c]) for c in range(values.shape[0])}
    return finite, {(c, top): key_histogram(values[c], top) for c, top in wanted}


def normalization_ranges(image, config: NormalizationConfig, run: Executor, source: str | None = None
                         ) -> list[np.ndarray]:
    """Each channel's (low, high) percentiles of a lazily read image, exactly those of
    :func:`~.normalize.channel_ranges` on the whole image in memory (two passes of histograms).

    Raises:
        AnnotationError: the image holds NaN or infinite values.
    """
    import dask
    chw = _as_chw(image)
    blocks = list(chw.to_delayed(optimize_graph=False).ravel())
    n = int(chw.shape[1]) * int(chw.shape[2])

    def total(wanted, what):
        parts = run([dask.delayed(_histograms)(b, wanted) for b in blocks], what)
        if not all(finite for finite, _ in parts):
            raise AnnotationError("image contains NaN or infinite pixels", source=source)
        out: dict = {}
        for _, hist in parts:
            for k, v in hist.items():
                out[k] = out[k] + v if k in out else v
        return out

    first = total(None, "statistics")
    below, above, _ = percentile_ranks(n, [config.low, config.high])
    ranks = np.unique(np.concatenate([below, above]))
    wanted = sorted({(c, int(top)) for c in range(chw.shape[0]) for top in rank_bins(first[(c, None)], ranks)[0]})
    second = total(wanted, "statistics")
    hists = {**first, **second}
    return ranges_from_histograms(lambda c, top: hists[(c, top)], n, chw.shape[0], config)


# -- pass 2: probabilities -------------------------------------------------------------------------

def head_channels(network: LazyUNet) -> dict[str, int]:
    """The probability channels of each task (what inference gives, from a small forward pass)."""
    m = network.config.size_multiple
    probe = np.zeros((network.config.in_channels, m, m), np.float32)
    device = next(network.parameters()).device
    return {k: v.shape[0] for k, v in predict_whole(network, probe, device=device, amp=False).items()}


def _span(c0: int, c1: int, length: int, margin: int, multiple: int, flipped: bool) -> tuple[int, int, int, int]:
    """Along one axis: the window ``[s, e)`` a pass over the core ``[c0, c1)`` reads, the core and
    ``margin`` px around it on the pooling grid of the image (``flipped``: of the image flipped along
    the axis, whose grid starts at the image's far edge), clipped to the image; and the padding of the
    whole image (reflected up to the pooling multiple beyond its end, or beyond its start when flipped)
    that the window takes in, ``(before, after)``."""
    if flipped:
        s, e, before, after = _span(length - c1, length - c0, length, margin, multiple, False)
        return length - e, length - s, after, before
    pad = _round_up(max(length, multiple), multiple) - length
    s = max((c0 - margin) // multiple * multiple, 0)
    e = min(_round_up(c1 + margin, multiple), length)
    return s, e, 0, (pad if e == length else 0)


def _predict_block(block: np.ndarray, payload: NetworkPayload, ranges, grid: BlockGrid, margin: int, depth: int,
                   multiple: int, flips: bool, block_info=None) -> np.ndarray:
    """The core probabilities (all tasks' channels stacked) of one block given with ``depth`` px around it
    (the mean over the flips with ``flips``, as the in-memory path takes it)."""
    trim_freed_memory()   # the previous block's arrays, freed, back to the system before this one's
    _, iy, ix = block_info[None]["chunk-location"]
    h, w = grid.shape
    ys, xs = grid.ys, grid.xs
    y0, y1, x0, x1 = ys[iy], ys[iy + 1], xs[ix], xs[ix + 1]
    oy, ox = max(y0 - depth, 0), max(x0 - depth, 0)
    if block.shape[1:] != (min(y1 + depth, h) - oy, min(x1 + depth, w) - ox):  # dask gave another overlap: a bug
        raise RuntimeError(f"block {block.shape} for the core {(y0, y1, x0, x1)} with {depth} px around it")
    norm = normalize_with(np.asarray(block, np.float32), ranges)
    network = payload.network()

    def one_pass(axes: tuple[int, ...], _progress) -> dict[str, np.ndarray]:
        sy, ey, by, ay = _span(y0, y1, h, margin, multiple, -2 in axes)
        sx, ex, bx, ax = _span(x0, x1, w, margin, multiple, -1 in axes)
        tile = norm[:, sy - oy:ey - oy, sx - ox:ex - ox]
        if by or ay or bx or ax:     # the image's own padding, at its edges
            tile = np.pad(tile, ((0, 0), (by, ay), (bx, ax)), mode="symmetric")
        out = predict_whole(network, np.ascontiguousarray(np.flip(tile, axes)), device=payload.device, amp=payload.amp)
        cy, cx = y0 - sy + by, x0 - sx + bx
        return {t: np.flip(v, axes)[:, cy:cy + y1 - y0, cx:cx + x1 - x0] for t, v in out.items()}

    out = mean_over_flips(one_pass, flips)
    return np.concatenate([out[t] for t in network.task_names]).astype(np.float32, copy=False)


def probabilities(model: LazyLabelsModel, image, ranges, grid: BlockGrid, *, device: torch.device,
                  amp: bool = True, flips: bool = False) -> dict[str, Any]:
    """Per-task probabilities (C, Y, X) of a raw YX or YXC dask array, as lazy dask arrays whose
    chunks are the grid's blocks (``map_overlap`` with the exact receptive-field margin; with
    ``flips``, the mean over the test-time flips)."""
    import dask
    import dask.array as da
    network = model.network
    chw = _as_chw(image)
    if chw.shape[0] != network.config.in_channels:
        raise ModelFileError(f"the model expects {network.config.in_channels} channel(s), "
                             f"the image has {chw.shape[0]}")
    chy, chx = grid.chunks
    chw = chw.rechunk(((chw.shape[0],), chy, chx))
    margin, depth = default_margin(network), overlap_depth(network, flips)
    channels = head_channels(network)
    payload = dask.delayed(NetworkPayload(network, device, amp), name=f"lazylabels-network-{uuid.uuid4().hex}")
    around = {0: 0, 1: depth if len(chy) > 1 else 0, 2: depth if len(chx) > 1 else 0}
    # map_overlap, spelt out: it takes no dask.delayed argument (the network, shipped once per worker)
    overlapped = da.overlap.overlap(chw, depth=around, boundary="none")
    stacked = da.map_blocks(_predict_block, overlapped, payload, chunks=((sum(channels.values()),), chy, chx),
                            dtype=np.float32, ranges=[np.asarray(r) for r in ranges], grid=grid, margin=margin,
                            depth=depth, multiple=network.config.size_multiple, flips=flips,
                            meta=np.empty((0, 0, 0), np.float32))
    out, start = {}, 0
    for name in network.task_names:
        out[name] = stacked[start:start + channels[name]]
        start += channels[name]
    return out
