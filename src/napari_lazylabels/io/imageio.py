"""Where image files are opened: read whole, or lazily a window at a time.

Supported: TIFF (``.tif``/``.tiff``, via tifffile; LZW, JPEG, zstd, ... via
imagecodecs), PNG and JPEG (via OpenCV, colour converted to RGB), NumPy
``.npy`` (no pickles) and, when the optional ``bioio`` package (with its
reader plug-ins) is installed, the microscope formats it reads (``.czi``,
``.nd2``, ``.lif``).

:func:`read_image_file` gives the array with its axes and pixel size as the
file declares them (an :class:`~.image_file.ImageFile`: a TIFF's series axes
and pixel size, :mod:`.tiff_metadata`; a file that declares no axes read as
:func:`~.image_file.guess_axes` says). :func:`open_image_file` gives the same
with the pixels a dask array read from the file where and when needed
(:mod:`.lazy_array`; ``.npy`` and TIFF, other formats read whole).

:func:`read_image` is for what training reads (one 2D image or label
layer): a stack is refused with a message saying how to pass its planes.
``lazylabels predict`` takes a stack as it is and predicts it plane by plane.
Label layers are written by :mod:`.label_tiff`.

A file that is missing, has an unknown extension or cannot be decoded gives a
one-line :class:`~napari_lazylabels.errors.ImageReadError` naming it, never a
traceback (nor a stray log line) from the underlying library: every reader
runs through ``_decoded``, eager and lazy alike.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..engine.annotations import check_image, check_labels
from ..errors import AnnotationError, ImageReadError, LazyLabelsError, one_line
from .files import regular_file
from .image_file import ImageFile, UnreadableImage, from_axes, guess_axes, rounded_pixel_size, stack_refused
from .lazy_array import LazyArray, as_dask, lazy_chunks, lazy_edge
from .memory import array_bytes, check_fits, check_piece_fits, shape_text
from .tiff_metadata import tiff_series

__all__ = ["IMAGE_EXTENSIONS", "BIOIO_EXTENSIONS", "read_image_file", "open_image_file", "read_image", "load_image",
           "load_labels"]

#: File extensions :func:`read_image` understands without optional packages (lower case).
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy")
#: Microscope formats read through ``bioio`` when it is installed.
BIOIO_EXTENSIONS = (".czi", ".nd2", ".lif")


def _decoded(reader: Callable[[Path], ImageFile], path: Path) -> ImageFile:
    """``reader(path)``, the eager or the lazy one: where any failure of a reader becomes the tool's
    one-line error (a decoder's exception, a file it found no image in), and complex pixels are refused.

    Raises:
        ImageReadError, AnnotationError.
    """
    suffix = path.suffix.lower()
    try:
        image = reader(path)
    except (MemoryError, LazyLabelsError):
        raise
    except Exception as exc:  # any decoder failure becomes one clear line
        detail = str(exc) if isinstance(exc, UnreadableImage) else one_line(exc)
        raise ImageReadError(f"cannot read {suffix[1:].upper()} file ({detail})", source=str(path)) from None
    if np.issubdtype(image.data.dtype, np.complexfloating):
        raise AnnotationError(f"has complex values ({image.data.dtype}); save its magnitude (np.abs) or "
                              f"its real part as a real-valued image", source=str(path))
    return image


def _read_tiff(path: Path) -> ImageFile:
    with tiff_series(path) as (tif, series, axes, pixel_size, declared):
        _check_read_fits(series.shape, series.dtype, path)
        data = np.asarray(series.asarray())
    if data.size == 0:
        raise UnreadableImage("not a valid TIFF: it holds no pixels")
    if not declared:  # a shaped or plain multi-page TIFF: the axes are not declared
        return guess_axes(data, str(path), pixel_size)
    return from_axes(data, axes, str(path), pixel_size, declared)


def _check_read_fits(shape, dtype, path: Path) -> None:
    """Refuse, before it is allocated, an image whose declared shape does not fit in memory."""
    check_fits(array_bytes(shape, dtype), f"reading the image ({shape_text(shape, dtype)})", str(path))


def _read_cv2(path: Path) -> ImageFile:
    import cv2

    # imdecode from bytes: works for non-ASCII paths, unlike cv2.imread on Windows.
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ValueError("OpenCV could not decode it")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return ImageFile(image, "yxc" if image.ndim == 3 else "yx", None, str(path), "")


def _read_npy(path: Path) -> ImageFile:
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)   # its header (and the file's size) first
    if not isinstance(mapped, np.ndarray):
        raise ValueError("not a single .npy array")
    _check_read_fits(mapped.shape, mapped.dtype, path)
    image = np.array(mapped)
    del mapped
    return guess_axes(image, str(path))


def bioio_available() -> bool:
    return importlib.util.find_spec("bioio") is not None


def _read_bioio(path: Path) -> ImageFile:
    """CZI, ND2, LIF, ... through ``bioio`` (its TCZYX[S] dimensions and physical pixel sizes)."""
    from bioio import BioImage

    image = BioImage(path)
    dims = str(image.dims.order).upper()
    data = np.asarray(image.data)
    sizes = image.physical_pixel_sizes
    pixel_size = None
    if sizes is not None and sizes.Y and sizes.X:
        pixel_size = rounded_pixel_size(float(sizes.Y), float(sizes.X), "micrometer")
    return from_axes(data, dims, str(path), pixel_size, "bioio")


_READERS = {".tif": _read_tiff, ".tiff": _read_tiff, ".png": _read_cv2, ".jpg": _read_cv2,
            ".jpeg": _read_cv2, ".npy": _read_npy, **{e: _read_bioio for e in BIOIO_EXTENSIONS}}


def read_image_file(path: str | os.PathLike) -> ImageFile:
    """Read an image with the axes and pixel size its file declares (no value checks).

    Raises:
        ImageReadError: the file is missing, is not a regular file (a folder, a FIFO, a device), has
            an unknown extension, needs ``bioio`` that is not installed, or cannot be decoded.
    """
    path = Path(path)
    source = str(path)
    regular_file(path, "an image file")
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise ImageReadError(
            f"unknown image format {path.suffix or '(no extension)'!r}; "
            f"use one of {', '.join(IMAGE_EXTENSIONS + BIOIO_EXTENSIONS)}", source=source)
    if reader is _read_bioio and not bioio_available():
        raise ImageReadError(f"{suffix} files are read through the optional bioio package: pip install bioio "
                             f"and its reader for {suffix} (e.g. bioio-{suffix[1:]}), or convert the file "
                             f"to OME-TIFF in Fiji", source=source)
    image = _decoded(reader, path)
    image.data = np.ascontiguousarray(image.data)
    return image


def _open_tiff(path: Path) -> ImageFile:
    with tiff_series(path) as (tif, series, axes, pixel_size, declared):
        shape, dtype = series.shape, series.dtype
        page = series.pages[0] if series.pages else tif.pages[0]
        memmappable = series.dataoffset is not None
        native_yx = ((page.tilelength, page.tilewidth) if page.is_tiled else
                     (max(1, int(getattr(page, "rowsperstrip", 0) or page.imagelength)), page.imagewidth))
    if int(np.prod(shape)) == 0:
        raise UnreadableImage("not a valid TIFF: it holds no pixels")
    native = [1] * len(shape)                 # what the file stores in one piece, per axis
    if "Y" in axes and "X" in axes:
        native[axes.index("Y")], native[axes.index("X")] = native_yx
    if axes.endswith("S"):
        native[-1] = shape[-1]
    if not memmappable:                       # a compressed strip or tile is decoded whole
        check_piece_fits(native, dtype, str(path), "save it tiled (e.g. tifffile.imwrite(..., tile=(512, 512)))")
    chunks = tuple(lazy_edge(n, c) if a in "YX" else c for n, c, a in zip(shape, native, axes))
    kind = "tiff-memmap" if memmappable else "tiff-zarr"
    data = as_dask(LazyArray(str(path), kind, shape, dtype, chunks, 0))
    if not declared:
        return guess_axes(data, str(path), pixel_size)
    return from_axes(data, axes, str(path), pixel_size, declared)


def _open_npy(path: Path) -> ImageFile:
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    shape, dtype = mapped.shape, mapped.dtype
    del mapped
    data = as_dask(LazyArray(str(path), "npy", shape, dtype, lazy_chunks(shape)))
    return guess_axes(data, str(path))


_LAZY_READERS = {".tif": _open_tiff, ".tiff": _open_tiff, ".npy": _open_npy}


def open_image_file(path: str | os.PathLike) -> ImageFile:
    """:func:`read_image_file`, but the pixels are a dask array read from the file only where and when
    they are needed (``.npy`` and TIFF; other formats are read whole, then wrapped). Nothing is
    checked that needs the pixels (NaN values are found while predicting).

    Raises:
        ImageReadError: as :func:`read_image_file`.
        AnnotationError: complex values.
    """
    path = Path(path)
    reader = _LAZY_READERS.get(path.suffix.lower())
    if reader is None or not path.is_file():
        image = read_image_file(path)
        image.data = as_dask(image.data)
        return image
    return _decoded(reader, path)


def read_image(path: str | os.PathLike, what: str = "image") -> np.ndarray:
    """Read one 2D image or label file as a YX or YXC array (no value checks).

    Raises:
        ImageReadError: see :func:`read_image_file`.
        AnnotationError: the file is a stack (T, Z or pages), or has complex values.
    """
    image = read_image_file(path)
    if image.is_stack:
        raise stack_refused(image, what)
    return image.data


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image and refuse what the network cannot use (see :func:`check_image`).

    Raises:
        ImageReadError: unreadable file.
        AnnotationError: wrong dimensions, too small, NaN/inf pixels...
    """
    return check_image(read_image(path), source=str(path))


def load_labels(path: str | os.PathLike, shape: Sequence[int], max_label: int,
                what: str = "labels") -> np.ndarray:
    """Read a label layer and check it against the image ``shape`` (YX); return int32.

    Raises:
        ImageReadError: unreadable file.
        AnnotationError: wrong shape, non-integer or negative values, values
            above ``max_label``.
    """
    return check_labels(read_image(path, what), shape, max_label, source=str(path), what=what)
