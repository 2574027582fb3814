"""What a TIFF declares besides its pixels: its first series' axes and the pixel size (OME, ImageJ, the
resolution tags), read with tifffile's complaints kept off the terminal; and the OME metadata written."""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

from ..engine.annotations import UNITS_IN_MICROMETERS, PixelSize
from ..errors import LazyLabelsError
from .image_file import UnreadableImage, ngff_unit, rounded_pixel_size


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
    return rounded_pixel_size(sizes[0], sizes[1], "micrometer")


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
        return None if unit is None else rounded_pixel_size(1 / yres, 1 / xres, unit)
    res_unit = page.tags.get("ResolutionUnit")
    if res_unit is not None and int(res_unit.value) == 3:  # centimetre
        return rounded_pixel_size(1e4 / yres, 1e4 / xres, "micrometer")
    return None


def _clean_log(message: str) -> str:
    """tifffile's log line without the object it is about (``<tifffile.TiffPages @8> invalid ...``)."""
    return re.sub(r"^<[^>]*>\s*", "", message.strip().splitlines()[0]) if message.strip() else message


#: TIFF compressions that are zlib (deflate), and the most zlib expands data (1032 to 1, with room to spare).
_DEFLATE = (8, 32946)
_DEFLATE_RATIO = 1100


class TruncatedImage(UnreadableImage):
    """A TIFF whose pixels lie (partly) beyond the end of the file."""


def check_complete(tif, series) -> None:
    """Refuse a TIFF whose pixels (as its tags place them) end beyond the end of the file (a truncated
    copy, or a tiny file declaring a huge image), or whose zlib-compressed pixels are too few bytes to
    decompress to what it declares; found from the tags, before any pixel is read.

    Raises:
        TruncatedImage.
    """
    size = int(tif.filehandle.size)
    if series.dataoffset is not None:
        end = int(series.dataoffset) + int(series.nbytes)
    else:
        end = 0
        for page in series.pages:
            counts = [int(c) for c in getattr(page, "databytecounts", ()) or ()]
            for offset, count in zip(getattr(page, "dataoffsets", ()) or (), counts):
                end = max(end, int(offset) + count)
            key = getattr(page, "keyframe", page)
            if int(getattr(key, "compression", 1) or 1) in _DEFLATE and \
                    int(key.nbytes) > _DEFLATE_RATIO * sum(counts) + (1 << 16):
                raise TruncatedImage(f"not a valid TIFF: its {sum(counts):,} bytes of zlib data cannot hold the "
                                     f"{int(key.nbytes):,} bytes of pixels it declares")
    if end > size:
        raise TruncatedImage(f"truncated file: its pixels end at byte {end:,}, the file has {size:,} bytes")


@contextmanager
def tiff_series(path: Path):
    """The open TIFF, its first series, the axes, the pixel size and where the axes are declared ("" if
    nowhere); what goes wrong inside, with a tifffile complaint about the header, is that complaint. A
    truncated file is refused first (:func:`check_complete`)."""
    import tifffile

    with _quiet_tifffile() as messages:
        try:
            with tifffile.TiffFile(path) as tif:
                if not tif.series or not len(tif.pages):
                    raise UnreadableImage("no image in it")
                series = tif.series[0]
                check_complete(tif, series)
                axes = series.axes.upper()
                declared = ("OME metadata" if tif.is_ome else "ImageJ metadata" if tif.is_imagej else
                            "TIFF tags" if "S" in axes else "")
                yield tif, series, axes, _tiff_pixel_size(tif), declared
        except (TruncatedImage, LazyLabelsError):
            raise
        except Exception as exc:
            if messages:  # tifffile said what is wrong with the header: that is the clearer reason
                raise UnreadableImage(f"not a valid TIFF: {_clean_log(messages[0])}") from None
            raise exc


#: OME-XML unit symbols of the NGFF length units.
_OME_UNITS = {"angstrom": "Å", "nanometer": "nm", "micrometer": "µm", "millimeter": "mm", "centimeter": "cm",
              "meter": "m", "inch": "in"}


def ome_metadata(axes: str | None, pixel_size: PixelSize | None) -> dict | None:
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
