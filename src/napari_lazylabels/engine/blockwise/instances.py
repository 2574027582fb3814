"""Passes 3 and 4 of the block-wise prediction: the post-processing of each block's window, stitched
across block borders, then the objects' ids (see the package docstring); the sinks they write to."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

import numpy as np
from scipy import ndimage as ndi

from ...errors import warn
from ..labels import smallest_uint
from ..pipeline import Segmentation, segmentation_from_probabilities
from ..postprocess.settings import DISTANCE, GROWTH, PostProcessing
from ..prediction_spec import HALO
from ..tasks import FOREGROUND, PARTIAL, SEEDS, TaskSpec, heads_by_role
from ..trained_model import LazyLabelsModel
from .executors import Executor, LocalExecutor, trim_freed_memory
from .grid import BlockGrid

#: A unit post-processed in a window of more pixels than this is said (memory).
LARGE_WINDOW = 8192 * 8192

_EIGHT = ndi.generate_binary_structure(2, 2)


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
    from ..postprocess.instances import class_map_of
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
    trim_freed_memory()
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
    trim_freed_memory()
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
    trim_freed_memory()
    y0, y1, x0, x1 = box
    k = np.asarray(sinks_keys[y0:y1, x0:x1])
    ids = np.where(k > 0, np.searchsorted(keys, k) + 1, 0)
    target[y0:y1, x0:x1] = ids.astype(target.dtype)
    return 0


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
