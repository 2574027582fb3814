"""Read images and label layers from files; write label layers as TIFF.

Supported: TIFF (``.tif``/``.tiff``, via tifffile; LZW, JPEG, zstd, ... via
imagecodecs), PNG and JPEG (via OpenCV, colour converted to RGB), NumPy
``.npy`` (no pickles) and, when the optional ``bioio`` package (with its
reader plug-ins) is installed, the microscope formats it reads (``.czi``,
``.nd2``, ``.lif``).

:func:`read_image_file` gives the array with its axes and pixel size as the
file declares them: a TIFF's series axes (ImageJ hyperstack or OME metadata,
RGB samples), ImageJ's or OME's pixel size and unit. A file that declares no
axes (a plain multi-page TIFF, a ``.npy``) is read as before: singleton axes
dropped, a small leading axis (at most 4) taken as channels and moved last,
a small trailing one as channels; a 3D array with more than 4 entries on both
ends is a stack of pages. The result is always ``(*planes, Y, X[, C])``: plane
axes (``t``, ``z``, ``p`` for undeclared pages) first, then Y, X and the
channels last.

:func:`read_image` is for what training reads (one 2D image or label
layer): a stack is refused with a message saying how to pass its planes.
``lazylabels predict`` takes a stack as it is and predicts it plane by plane.

A file that is missing, has an unknown extension or cannot be decoded gives a
one-line :class:`~napari_lazylabels.errors.ImageReadError` naming it, never a
traceback (nor a stray log line) from the underlying library.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import math
import os
import re
import threading
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..engine.annotations import UNITS_IN_MICROMETERS, PixelSize, check_image, check_labels
from ..engine.labels import integer_labels, smallest_uint
from .atomic import atomic_write_file, check_writable
from .files import regular_file
from ..errors import AnnotationError, ImageReadError

__all__ = ["IMAGE_EXTENSIONS", "BIOIO_EXTENSIONS", "ImageFile", "read_image_file", "read_image", "load_image",
           "load_labels", "write_labels_tiff", "ngff_unit", "LazyArray", "open_image_file", "write_labels_tiff_blocks"]

#: File extensions :func:`read_image` understands without optional packages (lower case).
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy")
#: Microscope formats read through ``bioio`` when it is installed.
BIOIO_EXTENSIONS = (".czi", ".nd2", ".lif")

#: Largest axis taken for channels when the file does not say (CYX -> YXC).
MAX_LEADING_CHANNELS = 4

#: What the plane axes are called in messages.
PLANE_WORDS = {"t": "time point", "z": "z-plane", "p": "page"}

#: Unit spellings of ImageJ, OME and TIFF -> NGFF names.
_UNIT_ALIASES = {"um": "micrometer", "µm": "micrometer", "μm": "micrometer", "micron": "micrometer",
                 "microns": "micrometer", "micrometre": "micrometer", "nm": "nanometer",
                 "nanometre": "nanometer", "mm": "millimeter", "millimetre": "millimeter", "cm": "centimeter",
                 "m": "meter", "a": "angstrom", "å": "angstrom", "in": "inch"}


def ngff_unit(unit: str | None) -> str | None:
    """The NGFF name of a length unit (``um``, ``micron``, ``µm`` -> ``micrometer``), None if not one."""
    if not unit:
        return None
    text = str(unit).strip().lower().replace("\\u00b5", "µ")
    text = _UNIT_ALIASES.get(text, text)
    return text if text in UNITS_IN_MICROMETERS else None


@dataclass
class ImageFile:
    """An image as its file declares it.

    Attributes:
        data: ``(*planes, Y, X)`` or ``(*planes, Y, X, C)``.
        axes: one lower-case letter per axis of ``data``: plane axes (``t``,
            ``z``, ``p`` for pages the file does not name) then ``y``, ``x``
            and ``c`` for channels.
        pixel_size: the Y/X pixel size, when the file gives it.
        source: the file.
        declared: where the axes come from (``"ImageJ metadata"``, ``"OME
            metadata"``, ``"the TIFF"``, ``"bioio"``, or ``""`` when guessed).
    """

    data: np.ndarray
    axes: str
    pixel_size: PixelSize | None = None
    source: str = ""
    declared: str = ""

    @property
    def plane_axes(self) -> str:
        return self.axes[: self.axes.index("y")]

    @property
    def plane_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[: len(self.plane_axes)])

    @property
    def is_stack(self) -> bool:
        return bool(self.plane_axes)

    def planes(self) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
        """``(index, YX or YXC plane)`` for every plane (``((), data)`` for a 2D image)."""
        for index in itertools.product(*(range(n) for n in self.plane_shape)):
            yield index, self.data[index] if index else self.data

    def describe(self) -> str:
        """E.g. ``3 time points x 5 z-planes (axes TZYX, from the ImageJ metadata)``."""
        parts = [f"{n} {PLANE_WORDS[a]}{'s' if n != 1 else ''}" for a, n in zip(self.plane_axes, self.plane_shape)]
        where = f", from the {self.declared}" if self.declared else ", guessed from the shape"
        return f"{' x '.join(parts) or 'one 2D image'} (axes {self.axes.upper()}{where}; shape {self.data.shape})"


def stack_refused(image: ImageFile, what: str = "image") -> AnnotationError:
    """The one-line refusal of a stack where a single 2D image is needed."""
    return AnnotationError(
        f"{what} is a stack of {image.describe()}; training takes 2D images (YX or YXC): save each plane "
        f"as its own file (Fiji: Image > Stacks > Stack to Images) and list one row per plane in the "
        f"manifest, or annotate the stack plane by plane in napari; `lazylabels predict` takes the stack "
        f"as it is", source=image.source)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _quiet_tifffile():
    """Keep tifffile's warnings (e.g. about a corrupt header) off the terminal; collect them instead."""
    logger = logging.getLogger("tifffile")
    handler = _Collect()
    old_propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


# -- TIFF ------------------------------------------------------------------------------------

#: tifffile's axis letters: channels, planes; anything else is a page axis the file does not name.
_TIFF_CHANNELS = {"C", "S"}
_TIFF_PLANES = {"T": "t", "Z": "z"}


def _ome_pixel_size(xml: str) -> PixelSize | None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    sizes = []
    for axis in ("Y", "X"):
        value = pixels.get(f"PhysicalSize{axis}")
        unit = ngff_unit(pixels.get(f"PhysicalSize{axis}Unit") or "µm")
        if value is None or unit is None:
            return None
        sizes.append(float(value) * UNITS_IN_MICROMETERS[unit])
    return _pixel_size(sizes[0], sizes[1], "micrometer")


def _pixel_size(y: float, x: float, unit: str) -> PixelSize | None:
    """A pixel size rounded to 9 significant digits (TIFF resolutions are fractions: 1 / (20/13) px)."""
    if not all(math.isfinite(v) and v > 0 for v in (y, x)):
        return None
    return PixelSize(float(f"{y:.9g}"), float(f"{x:.9g}"), unit)


def _resolution(page, tag: str) -> float | None:
    t = page.tags.get(tag)
    if t is None:
        return None
    num, den = t.value if isinstance(t.value, tuple) else (t.value, 1)
    return num / den if den else None


def _tiff_pixel_size(tif) -> PixelSize | None:
    """OME PhysicalSize, else ImageJ's unit with the resolution tags, else a resolution in centimetres.

    A resolution in inches (or with no unit) is a screen DPI, not a microscope's pixel size: ignored.
    """
    if tif.is_ome and tif.ome_metadata:
        size = _ome_pixel_size(tif.ome_metadata)
        if size is not None:
            return size
    page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
    xres, yres = _resolution(page, "XResolution"), _resolution(page, "YResolution")
    if not xres or not yres:
        return None
    if tif.is_imagej:
        unit = ngff_unit((tif.imagej_metadata or {}).get("unit"))
        return None if unit is None else _pixel_size(1 / yres, 1 / xres, unit)
    res_unit = page.tags.get("ResolutionUnit")
    if res_unit is not None and int(res_unit.value) == 3:  # centimetre
        return _pixel_size(1e4 / yres, 1e4 / xres, "micrometer")
    return None


class _Unreadable(ValueError):
    """A file we looked at and found no image in (its message is said as it is)."""


def _clean_log(message: str) -> str:
    """tifffile's log line without the object it is about (``<tifffile.TiffPages @8> invalid ...``)."""
    return re.sub(r"^<[^>]*>\s*", "", message.strip().splitlines()[0]) if message.strip() else message


@contextmanager
def _tiff_series(path: Path):
    """The open TIFF, its first series, the axes, the pixel size and where the axes are declared ("" if
    nowhere); what goes wrong inside, with a tifffile complaint about the header, is that complaint."""
    import tifffile

    with _quiet_tifffile() as messages:
        try:
            with tifffile.TiffFile(path) as tif:
                if not tif.series or not len(tif.pages):
                    raise _Unreadable("no image in it")
                series = tif.series[0]
                axes = series.axes.upper()
                declared = ("OME metadata" if tif.is_ome else "ImageJ metadata" if tif.is_imagej else
                            "TIFF tags" if "S" in axes else "")
                yield tif, series, axes, _tiff_pixel_size(tif), declared
        except Exception as exc:
            if messages:  # tifffile said what is wrong with the header: that is the clearer reason
                raise _Unreadable(f"not a valid TIFF: {_clean_log(messages[0])}") from None
            raise exc


def _read_tiff(path: Path) -> ImageFile:
    with _tiff_series(path) as (tif, series, axes, pixel_size, declared):
        data = np.asarray(series.asarray())
    if data.size == 0:
        raise _Unreadable("not a valid TIFF: it holds no pixels")
    if not declared:  # a shaped or plain multi-page TIFF: the axes are not declared
        return _guess_axes(data, str(path), pixel_size)
    return from_axes(data, axes, str(path), pixel_size, declared)


def from_axes(data: np.ndarray, axes: str, source: str, pixel_size: PixelSize | None,
               declared: str) -> ImageFile:
    """Reorder an array with declared (tifffile-style, upper-case) axes to (*planes, Y, X[, C])."""
    if len(axes) != data.ndim or "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} do not fit shape {data.shape}")
    # singleton axes other than Y and X carry nothing
    keep = [i for i, a in enumerate(axes) if a in "YX" or data.shape[i] > 1]
    data = data.reshape([data.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    channels = [i for i, a in enumerate(axes) if a in _TIFF_CHANNELS]
    if len(channels) > 1:
        raise ValueError(f"it has two channel axes ({axes}); merge them into one first")
    plane = [i for i, a in enumerate(axes) if a not in "YX" and a not in _TIFF_CHANNELS]
    order = plane + [axes.index("Y"), axes.index("X")] + channels
    names = "".join(_TIFF_PLANES.get(axes[i], "p") for i in plane) + "yx" + ("c" if channels else "")
    return ImageFile(np.transpose(data, order), names, pixel_size, source, declared)


def _guess_axes(data: np.ndarray, source: str, pixel_size: PixelSize | None = None) -> ImageFile:
    """Axes of an array whose file does not declare them: YX, a small channel axis, else pages."""
    image = np.squeeze(data) if data.ndim > 2 else data
    if image.ndim == 3 and image.shape[0] <= MAX_LEADING_CHANNELS and min(image.shape[1:]) > MAX_LEADING_CHANNELS:
        return ImageFile(np.moveaxis(image, 0, -1), "yxc", pixel_size, source)
    if image.ndim == 3 and image.shape[-1] <= MAX_LEADING_CHANNELS:
        return ImageFile(image, "yxc", pixel_size, source)
    if image.ndim < 2:
        raise ValueError(f"it holds a {image.ndim}D array of shape {data.shape}, not an image")
    if image.ndim > 4:
        raise ValueError(f"it holds a {image.ndim}D array of shape {data.shape} without axis names")
    return ImageFile(image, "p" * (image.ndim - 2) + "yx", pixel_size, source)


# -- other formats ---------------------------------------------------------------------------

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
    image = np.load(path, allow_pickle=False)
    if not isinstance(image, np.ndarray):
        raise ValueError("not a single .npy array")
    return _guess_axes(image, str(path))


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
        pixel_size = _pixel_size(float(sizes.Y), float(sizes.X), "micrometer")
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
    try:
        image = reader(path)
    except MemoryError:
        raise
    except Exception as exc:  # any decoder failure becomes one clear line
        detail = str(exc) if isinstance(exc, _Unreadable) else _one_line(exc)
        raise ImageReadError(f"cannot read {suffix[1:].upper()} file ({detail})", source=source) from None
    if np.iscomplexobj(image.data):
        raise AnnotationError(f"has complex values ({image.data.dtype}); save its magnitude (np.abs) or "
                              f"its real part as a real-valued image", source=source)
    image.data = np.ascontiguousarray(image.data)
    return image


# -- lazily, a window at a time -----------------------------------------------------------------

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


def lazy_chunks(shape: Sequence[int], edge: int = LAZY_CHUNK) -> tuple[int, ...]:
    """Chunks of ``edge`` px on the last two axes (YX; a trailing channel axis of at most 4 whole), 1 on
    the others."""
    channels = len(shape) >= 3 and shape[-1] <= MAX_LEADING_CHANNELS
    spatial = (len(shape) - 3, len(shape) - 2) if channels else (len(shape) - 2, len(shape) - 1)
    return tuple(min(n, edge) if i in spatial else (n if channels and i == len(shape) - 1 else 1)
                 for i, n in enumerate(shape))


def _as_dask(array: "LazyArray | np.ndarray"):
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


def _open_tiff(path: Path) -> ImageFile:
    with _tiff_series(path) as (tif, series, axes, pixel_size, declared):
        shape, dtype = series.shape, series.dtype
        page = series.pages[0] if series.pages else tif.pages[0]
        memmappable = series.dataoffset is not None
        native_yx = ((page.tilelength, page.tilewidth) if page.is_tiled else
                     (max(1, int(getattr(page, "rowsperstrip", 0) or page.imagelength)), page.imagewidth))
    if int(np.prod(shape)) == 0:
        raise _Unreadable("not a valid TIFF: it holds no pixels")
    native = [1] * len(shape)                 # what the file stores in one piece, per axis
    if "Y" in axes and "X" in axes:
        native[axes.index("Y")], native[axes.index("X")] = native_yx
    if axes.endswith("S"):
        native[-1] = shape[-1]
    chunks = tuple(min(n, max(c, (LAZY_CHUNK // c) * c)) if a in "YX" else c
                   for n, c, a in zip(shape, native, axes))
    kind = "tiff-memmap" if memmappable else "tiff-zarr"
    data = _as_dask(LazyArray(str(path), kind, shape, dtype, chunks, 0))
    if not declared:
        return _guess_axes(data, str(path), pixel_size)
    return from_axes(data, axes, str(path), pixel_size, declared)


def _open_npy(path: Path) -> ImageFile:
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    shape, dtype = mapped.shape, mapped.dtype
    del mapped
    data = _as_dask(LazyArray(str(path), "npy", shape, dtype, lazy_chunks(shape)))
    return _guess_axes(data, str(path))


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
    source = str(path)
    suffix = path.suffix.lower()
    reader = _LAZY_READERS.get(suffix)
    if reader is None or not path.is_file():
        image = read_image_file(path)
        image.data = _as_dask(image.data)
        return image
    try:
        image = reader(path)
    except MemoryError:
        raise
    except Exception as exc:
        detail = str(exc) if isinstance(exc, _Unreadable) else _one_line(exc)
        raise ImageReadError(f"cannot read {suffix[1:].upper()} file ({detail})", source=source) from None
    if np.issubdtype(image.data.dtype, np.complexfloating):
        raise AnnotationError(f"has complex values ({image.data.dtype}); save its magnitude (np.abs) or "
                              f"its real part as a real-valued image", source=source)
    return image


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


def _labels_for_tiff(labels: np.ndarray, source: str, planar: bool = True) -> np.ndarray:
    """Check integer labels and give them the smallest TIFF dtype (uint16, or uint32).

    ``planar``: require a 2D (YX) array; with False any number of leading
    axes is allowed (a multi-page stack).

    Raises:
        AnnotationError: wrong shape, non-integer or negative values, ids above uint32.
    """
    labels = np.asarray(labels)
    if planar and labels.ndim != 2:
        raise AnnotationError(f"labels must be a 2D (YX) array, got shape {labels.shape}", source=source)
    labels = integer_labels(labels, "labels", source=source, whole_floats=True)
    top = int(labels.max()) if labels.size else 0
    if top > np.iinfo(np.uint32).max:
        raise AnnotationError(f"labels contain value {top}, too large for a uint32 TIFF", source=source)
    # at least uint16: what ImageJ/Fiji and most label tools expect
    return labels.astype(np.promote_types(smallest_uint(top), np.uint16))


#: OME-XML unit symbols of the NGFF length units.
_OME_UNITS = {"angstrom": "Å", "nanometer": "nm", "micrometer": "µm", "millimeter": "mm", "centimeter": "cm",
              "meter": "m", "inch": "in"}


def _ome_metadata(axes: str | None, pixel_size: PixelSize | None) -> dict | None:
    """tifffile's OME metadata for declared axes (t, z planes; y, x) and a pixel size, None if neither."""
    if (axes is None or "p" in axes) and pixel_size is None:
        return None
    meta: dict = {}
    if axes is not None and "p" not in axes:
        meta["axes"] = axes.upper()
    if pixel_size is not None:
        unit = _OME_UNITS[pixel_size.unit]
        meta.update(PhysicalSizeY=pixel_size.y, PhysicalSizeX=pixel_size.x, PhysicalSizeYUnit=unit,
                    PhysicalSizeXUnit=unit)
    return meta


def write_labels_tiff(path: str | os.PathLike, labels: np.ndarray, overwrite: bool = False,
                      planar: bool = True, axes: str | None = None, pixel_size: PixelSize | None = None) -> Path:
    """Write a label layer as a zlib-compressed TIFF, atomically.

    Stored as uint16, or uint32 when a value exceeds 65535. ``planar=False``
    also takes a stack (leading axes: one TIFF page per plane). ``axes``
    (e.g. ``"tyx"``) and ``pixel_size`` are written as OME metadata, which
    Fiji, QuPath and :func:`read_image_file` read back.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        AnnotationError: labels not 2D (with ``planar``), not integer, or negative.
    """
    import tifffile

    check_writable(path, overwrite)
    data = _labels_for_tiff(labels, str(path), planar)
    meta = _ome_metadata(axes, pixel_size)
    extra = {} if meta is None else {"ome": True, "metadata": meta}
    return atomic_write_file(path, lambda tmp: tifffile.imwrite(tmp, data, compression="zlib", **extra),
                             overwrite=overwrite)


#: Tile edge of the instance TIFFs written block by block.
TIFF_TILE = 512


def write_labels_tiff_blocks(path: str | os.PathLike, shape: Sequence[int], dtype,
                             read: Callable[[tuple[int, ...], int, int, int, int], np.ndarray], *,
                             overwrite: bool = False, axes: str | None = None,
                             pixel_size: PixelSize | None = None) -> Path:
    """:func:`write_labels_tiff` of labels too large to hold: a tiled TIFF (zlib, 512 px tiles; BigTIFF
    when needed), one page per plane of the leading axes of ``shape``, whose tiles
    ``read(plane index, y0, y1, x0, x1)`` gives one at a time. ``dtype``: the labels' (at least uint16
    is written, as :func:`write_labels_tiff` does); ``axes`` and ``pixel_size`` as there."""
    import tifffile

    check_writable(path, overwrite)
    shape = tuple(int(n) for n in shape)
    planes, (h, w) = shape[:-2], shape[-2:]
    dtype = np.promote_types(np.dtype(dtype), np.uint16)
    t = TIFF_TILE

    def tiles():
        for index in itertools.product(*(range(n) for n in planes)):
            for y in range(0, h, t):
                for x in range(0, w, t):
                    tile = np.zeros((t, t), dtype)
                    part = np.asarray(read(index, y, min(y + t, h), x, min(x + t, w)))
                    tile[:part.shape[0], :part.shape[1]] = part
                    yield tile

    meta = _ome_metadata(axes, pixel_size)
    extra = {} if meta is None else {"ome": True, "metadata": meta}
    big = int(np.prod(shape)) * dtype.itemsize > 2 ** 31
    return atomic_write_file(path, lambda tmp: tifffile.imwrite(tmp, tiles(), shape=shape, dtype=dtype, tile=(t, t),
                                                                compression="zlib", bigtiff=big, **extra),
                             overwrite=overwrite)
