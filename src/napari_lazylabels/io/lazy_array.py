"""Pixels read from their file a window at a time: :class:`LazyArray` and the dask array made of it."""

from __future__ import annotations

import os
import threading
from typing import Sequence

import numpy as np

from ..errors import ImageReadError, LazyLabelsError, one_line
from .image_file import MAX_LEADING_CHANNELS

#: Edge (px) of the chunks a lazily read image is cut in (before the block-wise prediction regroups them).
LAZY_CHUNK = 1024

_OPEN: dict[tuple, object] = {}
_OPEN_LOCK = threading.Lock()


class LazyArray:
    """An array in a file, read a window at a time: a ``.npy`` or an uncompressed TIFF through a memory
    map (mapped for the read only, so what was read does not stay in memory), a compressed TIFF through
    tifffile's Zarr store (its strips or tiles), an OME-Zarr array through zarr. It pickles as its
    path, so dask workers open the file themselves."""

    def __init__(self, path: str, kind: str, shape: Sequence[int], dtype, chunks: Sequence[int],
                 key: str | int | None = None):
        self.path, self.kind, self.key = str(path), kind, key
        self.shape, self.dtype = tuple(int(n) for n in shape), np.dtype(dtype)
        self.chunks = tuple(int(n) for n in chunks)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __reduce__(self):
        return LazyArray, (self.path, self.kind, self.shape, self.dtype.str, self.chunks, self.key)

    def _opened(self):
        key = (self.path, self.kind, self.key)
        with _OPEN_LOCK:
            if key not in _OPEN:
                if self.kind == "tiff-zarr":
                    import tifffile
                    import zarr
                    store = tifffile.imread(self.path, aszarr=True, series=int(self.key or 0), level=0)
                    _OPEN[key] = zarr.open_array(store, mode="r")
                else:
                    import zarr
                    from zarr.storage import LocalStore
                    _OPEN[key] = zarr.open_array(LocalStore(self.path, read_only=True), mode="r")
            return _OPEN[key]

    def __getitem__(self, index):
        """The pixels at ``index``; a failure of the file (truncated, changed, unreadable since it was opened)
        is the tool's one-line :class:`~napari_lazylabels.errors.ImageReadError`, wherever the read runs."""
        try:
            return self._read(index)
        except (MemoryError, LazyLabelsError):
            raise
        except Exception as exc:  # a reader's failure (e.g. "mmap length is greater than file size")
            raise ImageReadError(f"cannot read the pixels ({one_line(exc)})", source=self.path) from None

    def _read(self, index):
        if self.kind == "npy":
            mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)
        elif self.kind == "tiff-memmap":
            import tifffile
            mapped = tifffile.memmap(self.path, mode="r", series=int(self.key or 0))
        else:
            array = self._opened()
            if self.kind == "tiff-zarr":
                with _OPEN_LOCK:       # one file handle per process, not safe for two threads at once
                    return np.asarray(array[index])
            return np.asarray(array[index])
        try:
            return np.array(mapped[index])
        finally:
            del mapped


def lazy_edge(length: int, native: int) -> int:
    """A chunk edge along a spatial axis of ``length`` px that the file stores in pieces of ``native``:
    about :data:`LAZY_CHUNK`, a multiple of ``native``, at most ``length``."""
    return min(length, max(native, (LAZY_CHUNK // native) * native))


def lazy_chunks(shape: Sequence[int], edge: int = LAZY_CHUNK) -> tuple[int, ...]:
    """Chunks of ``edge`` px on the last two axes (YX; a trailing channel axis of at most 4 whole), 1 on
    the others."""
    channels = len(shape) >= 3 and shape[-1] <= MAX_LEADING_CHANNELS
    spatial = (len(shape) - 3, len(shape) - 2) if channels else (len(shape) - 2, len(shape) - 1)
    return tuple(min(n, edge) if i in spatial else (n if channels and i == len(shape) - 1 else 1)
                 for i, n in enumerate(shape))


def as_dask(array: "LazyArray | np.ndarray"):
    import dask.array as da
    chunks = array.chunks if isinstance(array, LazyArray) else lazy_chunks(array.shape)
    return da.from_array(array, chunks=chunks, asarray=True, name=f"image-{_token(array)}")


def _token(array) -> str:
    import hashlib
    import uuid
    if isinstance(array, LazyArray):
        try:
            stat = os.stat(array.path)
            return hashlib.sha1(repr((array.path, array.kind, array.key, stat.st_mtime_ns, stat.st_size)).encode()
                                ).hexdigest()[:16]
        except OSError:
            pass
    return uuid.uuid4().hex[:16]
