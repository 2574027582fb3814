"""Block-wise (out-of-core) prediction with dask: the result of :func:`~.pipeline.segment`, block by block.

The image (a dask array, read lazily by whoever made it) is cut into blocks on
the network's pooling grid (:class:`BlockGrid`). Four passes, each a list of
dask tasks that a scheduler runs (the in-process one, or a
``dask.distributed`` cluster the caller connected to):

1. **Normalisation.** The percentiles of each channel, exactly those the
   in-memory path takes of the whole image (:mod:`.normalize`: two passes of
   block histograms over the values' bit patterns; no subsample).
2. **Probabilities.** ``dask.array.map_overlap`` with the exact
   receptive-field margin (:func:`~.inference.default_margin`): each block is
   predicted with its margin of real pixels (clipped at the image's edges,
   reflected up to the pooling multiple at the bottom and right as the
   in-memory path pads the whole image), and only its core is kept, so every
   kept pixel saw its whole receptive field: the probabilities equal a
   whole-image pass up to float rounding. With the test-time flips
   (``PostProcessing.flips``) each block is predicted four times, flipped
   as the in-memory path flips the whole image: a flipped pass sits on the
   pooling grid of the flipped image, which starts at the image's far edge,
   so its window is placed on that grid (up to one pooling multiple more of
   context) and reaches the whole image's padding at the near edge; the
   mean of the four is the in-memory one, up to float rounding. Each core is
   written to its sink.
3. **Instances.** The post-processing of the model (watershed or final
   growth) runs on each block's window (its core plus ``halo`` px, read back
   from the probability sinks). Its result on a *unit* — an 8-connected
   region of the support (foreground, or a seed head's foreground), the
   pixels the post-processing of an object can reach — depends only on the
   probabilities around that unit; so a unit that lies, with a small reach,
   inside a window is post-processed there exactly as in the whole image.
   Each object is named by a key, the raster index of its first pixel: every
   block that sees an object whole names it alike, so an object cut by a
   block edge keeps one id. A unit larger than a window is post-processed
   again, alone, in a window grown around it until it fits.
4. **Labels.** The keys, sorted, become ids 1..N (in raster order of the
   objects' first pixels), written block by block.

**Memory.** A block's arrays are freed when its task ends, but glibc's ``malloc`` keeps the pages of
freed chunks in each thread's arena (torch's and zarr's threads each have one), fragmented, so the
resident memory grew with every block. :func:`release_memory` (``malloc_trim``) hands them back before
each block's task, so the passes' peak stays that of one block (about 0.9 GB with 1024 px blocks and
the ``tiny`` network, at 2048 and 4096 px alike). What is not bounded by the block: a unit (pass 3)
that spans the image, as the foreground of confluent cells can, is post-processed in one window of
its size (:func:`_resolve`), and that takes memory in proportion to it (about 75 bytes a pixel with
the ``tiny`` network). For the watershed a unit is a region of the foreground alone (:func:`support`).

The engine reads and writes only array-likes (``sinks``): the files are
:mod:`napari_lazylabels.io`'s business. Instances equal the in-memory ones up
to relabelling; the semantic map and the probabilities (to float rounding)
equal them as they are (``tests/test_blockwise.py``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import torch
from scipy import ndimage as ndi

from ..errors import AnnotationError, ModelFileError, SettingsError, warn
from .annotations import MIN_IMAGE_SIZE
from .config import NormalizationConfig
from .inference import _round_up, default_margin, mean_over_flips, predict_whole
from .labels import smallest_uint
from .model import LazyUNet
from .normalize import key_histogram, rank_bins, normalize_with, percentile_ranks, ranges_from_histograms
from .pipeline import Segmentation, segmentation_from_probabilities
from .postprocess.settings import DISTANCE, GROWTH, PostProcessing
from .prediction_spec import HALO, PredictionSpec
from .tasks import FOREGROUND, PARTIAL, SEEDS, TaskSpec, heads_by_role
from .trained_model import LazyLabelsModel

#: A unit post-processed in a window of more pixels than this is said (memory).
LARGE_WINDOW = 8192 * 8192

_EIGHT = ndi.generate_binary_structure(2, 2)

Progress = Callable[[str, int, int], None]


# -- memory ------------------------------------------------------------------------------------------

_LIBC: list = []


def release_memory() -> bool:
    """Give the pages of freed memory back to the system (glibc's ``malloc_trim`` over every arena;
    without it the arenas of torch's and zarr's threads keep a fragmented copy of every block's
    arrays). Called at the start of each block's task; a no-op (False) off glibc."""
    if not _LIBC:
        trim = None
        if sys.platform.startswith("linux"):
            try:
                trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
                trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
            except (OSError, AttributeError):
                trim = None
        _LIBC.append(trim)
    if _LIBC[0] is None:
        return False
    _LIBC[0](0)
    return True


# -- the grid ----------------------------------------------------------------------------------

def _edges(length: int, block: int, least: int) -> list[int]:
    """Block boundaries along an axis: every ``block`` px, the last block at least ``least`` px."""
    edges = list(range(0, length, block)) + [length]
    if len(edges) > 2 and edges[-1] - edges[-2] < least:
        del edges[-2]
    return edges


@dataclass(frozen=True)
class BlockGrid:
    """The blocks of a YX image: cores of ``block`` px (the last ones longer, up to ``block + least``)."""

    shape: tuple[int, int]
    block: int
    least: int = 0

    @property
    def ys(self) -> list[int]:
        return _edges(self.shape[0], self.block, self.least)

    @property
    def xs(self) -> list[int]:
        return _edges(self.shape[1], self.block, self.least)

    @property
    def chunks(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(np.diff(self.ys).tolist()), tuple(np.diff(self.xs).tolist())

    def boxes(self) -> list[tuple[int, int, int, int]]:
        """``(y0, y1, x0, x1)`` of every core, row by row."""
        ys, xs = self.ys, self.xs
        return [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]

    def window(self, box: tuple[int, int, int, int], halo: int) -> tuple[int, int, int, int]:
        y0, y1, x0, x1 = box
        h, w = self.shape
        return max(y0 - halo, 0), min(y1 + halo, h), max(x0 - halo, 0), min(x1 + halo, w)


def overlap_depth(network: LazyUNet, flips: bool = False) -> int:
    """The pixels a block's probabilities read around its core: the receptive-field margin, and with the
    test-time flips one pooling multiple more (a flipped pass sits on the flipped image's grid)."""
    return default_margin(network) + (network.config.size_multiple if flips else 0)


def block_grid(shape: Sequence[int], network: LazyUNet, spec: PredictionSpec) -> BlockGrid:
    """The blocks of ``spec`` on the network's pooling grid, each at least as long as what it reads
    around it (:func:`overlap_depth`)."""
    m = network.config.size_multiple
    depth = overlap_depth(network, spec.postprocess.flips)
    return BlockGrid((int(shape[0]), int(shape[1])), max(_round_up(int(spec.block_size), m), _round_up(depth, m)),
                     depth)


# -- the network on the workers ------------------------------------------------------------------

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


# -- pass 1: normalisation -------------------------------------------------------------------------

def _as_chw(image):
    """A dask array YX or YXC -> CYX (lazily)."""
    import dask.array as da
    image = image if isinstance(image, da.Array) else da.from_array(image)
    return image[None] if image.ndim == 2 else da.moveaxis(image, -1, 0)


def check_lazy_image(image, source: str | None = None) -> None:
    """:func:`~.annotations.check_image`'s checks that need no pixels (shape and type)."""
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


def _histograms(block: np.ndarray, wanted: Sequence[tuple[int, int]] | None) -> tuple[bool, dict]:
    """Per channel of a CYX block: the high-bits histogram (``wanted`` None) or the low-bits
    histograms of the wanted (channel, top) pairs; and whether every value is finite."""
    release_memory()
    values = np.asarray(block).astype(np.float32, copy=False)
    finite = bool(np.isfinite(values).all()) if np.issubdtype(values.dtype, np.floating) else True
    if wanted is None:
        return finite, {(c, None): key_histogram(values[c]) for c in range(values.shape[0])}
    return finite, {(c, top): key_histogram(values[c], top) for c, top in wanted}


def normalization_ranges(image, config: NormalizationConfig, run: "Executor", source: str | None = None
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
    release_memory()   # the previous block's arrays, freed, back to the system before this one's
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


# -- pass 3 and 4: instances -----------------------------------------------------------------------

class BlockSinks(Protocol):
    """Where the block-wise results go (array-likes written by slices; zarr arrays, for instance).

    ``probabilities``: task -> (C, Y, X) float32; ``semantic``: (Y, X) class ids; ``keys``:
    (Y, X) int64 scratch (the objects' keys between passes 3 and 4); ``instances(dtype)``: the
    (Y, X) instance ids, made once their number is known.
    """

    probabilities: Mapping[str, Any]
    semantic: Any
    keys: Any

    def instances(self, dtype: np.dtype) -> Any: ...


def reach(postprocess: PostProcessing, roles: Sequence[str]) -> int:
    """How far (px) beyond a unit the post-processing of its objects looks: the growth's and the
    watershed's filters, and with distance seeds the smoothing and the peaks' spacing."""
    distance = postprocess.instances.seed_source == DISTANCE or not ({SEEDS, PARTIAL} & set(roles))
    return 3 + (5 + int(postprocess.instances.min_peak_distance) if distance else 0)


def support(heads: Mapping[str, np.ndarray], postprocess: PostProcessing) -> np.ndarray:
    """Where the post-processing can put or move objects: the foreground, and for the final growth the
    seed heads' too. The watershed keeps everything inside the foreground (its seeds are cut to it), so
    there the seed heads add nothing: a seed head positive everywhere (a little-trained model's) would
    make the whole image one unit, post-processed in one piece (issue 12)."""
    from .postprocess.instances import class_map_of
    mask = class_map_of(heads[FOREGROUND], postprocess.instances.probability_threshold) > 0
    if postprocess.method != GROWTH:
        return mask
    for role in (SEEDS, PARTIAL):
        if role in heads:
            mask |= np.argmax(heads[role], axis=0) > 0
    return mask


def _whole_units(units: np.ndarray, window: tuple[int, int, int, int], shape: tuple[int, int],
                 pad: int) -> np.ndarray:
    """Per unit (index = unit id): whether it lies at least ``pad`` px inside every side of the window
    that is not the image's edge (so it and what its post-processing sees are in the window)."""
    wy0, wy1, wx0, wx1 = window
    h, w = shape
    ok = np.ones(int(units.max()) + 1, bool)
    for i, box in enumerate(ndi.find_objects(units), start=1):
        if box is None:
            continue
        sy, sx = box
        ok[i] = ((wy0 == 0 or sy.start >= pad) and (wy1 == h or sy.stop <= (wy1 - wy0) - pad)
                 and (wx0 == 0 or sx.start >= pad) and (wx1 == w or sx.stop <= (wx1 - wx0) - pad))
    return ok


def _object_keys(instances: np.ndarray, origin: tuple[int, int], width: int) -> np.ndarray:
    """Lookup table id -> key: 1 + the raster index (in the whole image) of the object's first pixel."""
    flat = np.flatnonzero(instances)
    lut = np.zeros(int(instances.max(initial=0)) + 1, np.int64)
    if flat.size:
        ids, first = np.unique(instances.ravel()[flat], return_index=True)
        pos = flat[first]
        wy, wx = np.divmod(pos, instances.shape[1])
        lut[ids] = (wy + origin[0]) * np.int64(width) + wx + origin[1] + 1
    return lut


def _read_window(sinks_probs: Mapping[str, Any], window) -> dict[str, np.ndarray]:
    y0, y1, x0, x1 = window
    return {k: np.asarray(v[:, y0:y1, x0:x1]) for k, v in sinks_probs.items()}


def _window_result(probs, tasks, postprocess, window, shape, pad):
    seg = segmentation_from_probabilities(probs, tasks, postprocess)
    units, _ = ndi.label(support(heads_by_role(probs, tasks), postprocess), structure=_EIGHT)
    whole = _whole_units(units, window, shape, pad)
    keys = _object_keys(seg.instances, window[::2], shape[1])[seg.instances]
    keys[(units > 0) & ~whole[units]] = -1
    return seg, units, whole, keys


def _post_block(sinks: BlockSinks, box, window, tasks, postprocess, shape, pad):
    """Pass 3 on one block: keys and semantic labels of its core; the unsure pixels (-1) of units that
    do not fit in its window are left to :func:`_resolve`."""
    release_memory()
    seg, units, whole, keys = _window_result(_read_window(sinks.probabilities, window), tasks, postprocess,
                                             window, shape, pad)
    y0, y1, x0, x1 = box
    core = (slice(y0 - window[0], y1 - window[0]), slice(x0 - window[2], x1 - window[2]))
    core_keys = keys[core]
    semantic = seg.semantic[core].astype(sinks.semantic.dtype)
    unsure = core_keys < 0
    semantic[unsure] = 0
    sinks.semantic[y0:y1, x0:x1] = semantic
    sinks.keys[y0:y1, x0:x1] = core_keys
    anchors = []
    if unsure.any():   # one pixel of each unit that did not fit
        for unit in np.unique(units[core][unsure]):
            py, px = np.argwhere((units[core] == unit) & unsure)[0]
            anchors.append((int(py) + y0, int(px) + x0))
    return np.unique(core_keys[core_keys > 0]), anchors


def _resolve(sinks: BlockSinks, anchor, grid: BlockGrid, tasks, postprocess, pad, halo) -> np.ndarray:
    """The unit holding ``anchor``, post-processed alone in a window grown until it fits; its keys and
    semantic labels written over its pixels. Returns its objects' keys."""
    release_memory()
    h, w = grid.shape
    ay, ax = anchor
    size = halo
    while True:
        size *= 2
        window = (max(ay - size, 0), min(ay + size, h), max(ax - size, 0), min(ax + size, w))
        probs = _read_window(sinks.probabilities, window)
        units, _ = ndi.label(support(heads_by_role(probs, tasks), postprocess), structure=_EIGHT)
        unit = units[ay - window[0], ax - window[2]]
        one = (units == unit).astype(np.int32)
        if _whole_units(one, window, grid.shape, pad)[1]:
            break
    box = ndi.find_objects(one)[0]
    wy0, _, wx0, _ = window
    # only the unit's bounding box (and the reach around it) is needed for its objects
    sub = (max(box[0].start - 2 * pad, 0), min(box[0].stop + 2 * pad, window[1] - wy0),
           max(box[1].start - 2 * pad, 0), min(box[1].stop + 2 * pad, window[3] - wx0))
    window = (wy0 + sub[0], wy0 + sub[1], wx0 + sub[2], wx0 + sub[3])
    pixels = (window[1] - window[0]) * (window[3] - window[2])
    if pixels > LARGE_WINDOW:
        warn(f"a foreground region of {window[1] - window[0]} x {window[3] - window[2]} px is post-processed "
             f"in one piece (its objects cannot be told apart block by block); this takes memory in proportion")
    probs = {k: v[:, sub[0]:sub[1], sub[2]:sub[3]] for k, v in probs.items()}
    seg, units, _, keys = _window_result(probs, tasks, postprocess, window, grid.shape, pad)
    mine = units == units[ay - window[0], ax - window[2]]
    y0, y1, x0, x1 = window
    for (by0, by1, bx0, bx1) in grid.boxes():   # read-modify-write, block by block, only the unit's pixels
        oy0, oy1, ox0, ox1 = max(by0, y0), min(by1, y1), max(bx0, x0), min(bx1, x1)
        if oy0 >= oy1 or ox0 >= ox1:
            continue
        part = (slice(oy0 - y0, oy1 - y0), slice(ox0 - x0, ox1 - x0))
        sel = mine[part]
        if not sel.any():
            continue
        k = np.asarray(sinks.keys[oy0:oy1, ox0:ox1])
        s = np.asarray(sinks.semantic[oy0:oy1, ox0:ox1])
        k[sel] = keys[part][sel]
        s[sel] = seg.semantic[part][sel]
        sinks.keys[oy0:oy1, ox0:ox1] = k
        sinks.semantic[oy0:oy1, ox0:ox1] = s
    return np.unique(keys[mine & (keys > 0)])


def _label_block(sinks_keys, target, box, keys: np.ndarray) -> int:
    release_memory()
    y0, y1, x0, x1 = box
    k = np.asarray(sinks_keys[y0:y1, x0:x1])
    ids = np.where(k > 0, np.searchsorted(keys, k) + 1, 0)
    target[y0:y1, x0:x1] = ids.astype(target.dtype)
    return 0


# -- running the passes ----------------------------------------------------------------------------

class Executor(Protocol):
    """Runs a list of dask tasks and returns their results in order (``what`` names the pass)."""

    def __call__(self, tasks: Sequence[Any], what: str) -> list: ...


@dataclass
class LocalExecutor:
    """The in-process dask scheduler (``synchronous``: one block at a time, the least memory; or
    ``threads``), with a progress callback ``progress(what, done, total)``."""

    scheduler: str = "synchronous"
    workers: int | None = None
    progress: Progress | None = None

    def __call__(self, tasks, what):
        import dask
        if not tasks:
            return []
        if self.progress is None:
            return list(dask.compute(*tasks, scheduler=self.scheduler, num_workers=self.workers))
        from dask.callbacks import Callback
        keys = {t.key for t in tasks}
        done = [0]
        report = self.progress

        class _Tick(Callback):
            def _posttask(self, key, result, dsk, state, id):
                if key in keys:
                    done[0] += 1
                    report(what, done[0], len(keys))

        report(what, 0, len(keys))
        with _Tick():
            return list(dask.compute(*tasks, scheduler=self.scheduler, num_workers=self.workers))


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
    """:func:`~.pipeline.segment_in_memory` of a raw YX or YXC image (a dask array, or any array-like),
    block by block, into ``sinks`` (see the module docstring), as ``spec`` says (its blocks, halo,
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


def instances_blockwise(sinks: BlockSinks, tasks: Sequence[TaskSpec], postprocess: PostProcessing,
                        grid: BlockGrid, *, halo: int = HALO, run: Executor | None = None) -> tuple[int, int]:
    """Passes 3 and 4 on the probabilities in ``sinks``: the semantic map and the instances, stitched.
    Returns the number of objects and of units post-processed alone (larger than a block's window)."""
    import dask
    run = run or LocalExecutor()
    roles = list(heads_by_role({t.name: None for t in tasks}, tasks))
    pad = 2 * reach(postprocess, roles)
    halo = max(int(halo), 2 * pad)
    found = run([dask.delayed(_post_block)(sinks, box, grid.window(box, halo), tasks, postprocess,
                                           grid.shape, pad) for box in grid.boxes()], "instances")
    keys = [k for k, _ in found]
    resolved = 0
    for anchor in (a for _, more in found for a in more):
        if np.asarray(sinks.keys[anchor[0]:anchor[0] + 1, anchor[1]:anchor[1] + 1])[0, 0] >= 0:
            continue   # resolved with another block's anchor of the same unit
        keys.append(_resolve(sinks, anchor, grid, tasks, postprocess, pad, halo))
        resolved += 1
    keys = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    target = sinks.instances(smallest_uint(len(keys)))
    table = dask.delayed(keys, pure=True)
    run([dask.delayed(_label_block)(sinks.keys, target, box, table) for box in grid.boxes()], "labels")
    return len(keys), resolved


def _store_probabilities(targets: Mapping[str, Any], chunks: Mapping[str, np.ndarray], box) -> int:
    y0, y1, x0, x1 = box
    for name, values in chunks.items():
        targets[name][:, y0:y1, x0:x1] = values
    return 0


# -- in memory, for images that fit (and the tests) --------------------------------------------------

class MemorySinks:
    """:class:`BlockSinks` in NumPy arrays (for an image that fits; the tests compare both paths)."""

    def __init__(self, shape: Sequence[int], channels: Mapping[str, int], semantic_dtype=np.uint8):
        h, w = shape
        self.probabilities = {k: np.zeros((c, h, w), np.float32) for k, c in channels.items()}
        self.semantic = np.zeros((h, w), semantic_dtype)
        self.keys = np.zeros((h, w), np.int64)
        self.labels: np.ndarray | None = None

    def instances(self, dtype):
        self.labels = np.zeros(self.keys.shape, dtype)
        return self.labels

    def segmentation(self) -> Segmentation:
        return Segmentation(dict(self.probabilities), self.semantic.astype(np.int32),
                            self.labels.astype(np.int32))


def semantic_dtype(model: LazyLabelsModel) -> np.dtype:
    """The dtype of the semantic map: the smallest that holds the model's class ids."""
    fg = next((t for t in model.tasks if t.role == FOREGROUND), None)
    return smallest_uint(max(1, (fg.n_classes if fg else 2) - 1))
