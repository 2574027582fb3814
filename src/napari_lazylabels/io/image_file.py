"""An image as its file declares it: the pixels with their axes and pixel size.

:class:`ImageFile` is what every reader gives (:mod:`.imageio` eagerly, or
lazily with the pixels in a dask array; :func:`~.ome_zarr.open_image_store`):
``(*planes, Y, X[, C])``, plane axes (``t``, ``z``, ``p`` for undeclared
pages) first, then Y, X and the channels last. :func:`from_axes` puts an
array with declared axes (tifffile's letters, NGFF's) in that order;
:func:`guess_axes` reads an array whose file declares none: singleton axes
dropped, a small leading axis (at most 4) taken as channels and moved last,
a small trailing one as channels; a 3D array with more than 4 entries on both
ends is a stack of pages. :func:`ngff_unit` names a length unit as NGFF does.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..engine.annotations import UNITS_IN_MICROMETERS, PixelSize
from ..errors import AnnotationError

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


class UnreadableImage(ValueError):
    """A file we looked at and found no image in (its message is said as it is)."""


#: tifffile's axis letters: channels, planes; anything else is a page axis the file does not name.
#: tifffile's axis letters: channels, planes; anything else is a page axis the file does not name.
_TIFF_CHANNELS = {"C", "S"}
_TIFF_PLANES = {"T": "t", "Z": "z"}


def rounded_pixel_size(y: float, x: float, unit: str) -> PixelSize | None:
    """A pixel size rounded to 9 significant digits (TIFF resolutions are fractions: 1 / (20/13) px)."""
    if not all(math.isfinite(v) and v > 0 for v in (y, x)):
        return None
    return PixelSize(float(f"{y:.9g}"), float(f"{x:.9g}"), unit)


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


def guess_axes(data: np.ndarray, source: str, pixel_size: PixelSize | None = None) -> ImageFile:
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
