"""What ``lazylabels predict`` reads: the images of a batch (files, folders, patterns) and each image lazily.

:func:`expand_inputs` turns the ``--image`` arguments into a list of images:
a file is itself, an OME-Zarr store (a folder) is itself, another folder is
every image file and store directly in it (sorted), and an argument with
``*``, ``?`` or ``[`` is a pattern (quoted, so the shell leaves it alone)
matched by :mod:`glob`. :func:`open_image` reads any of them without reading
its pixels (:func:`.imageio.open_image_file`, :func:`.ome_zarr.open_image_store`): the one place
predict opens an image. Where each image's prediction goes is :mod:`.output_paths`'s business.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Sequence

from ..errors import ImageReadError
from .image_file import ImageFile
from .imageio import BIOIO_EXTENSIONS, IMAGE_EXTENSIONS, bioio_available, open_image_file
from .ngff import STORE_SUFFIX, is_image_store
from .ome_zarr import open_image_store

__all__ = ["expand_inputs", "open_image", "image_stem"]

_PATTERN = set("*?[")


def _readable_suffixes() -> tuple[str, ...]:
    return IMAGE_EXTENSIONS + (BIOIO_EXTENSIONS if bioio_available() else ())


def _is_image(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    if path.is_dir():
        return is_image_store(path)
    return path.is_file() and path.suffix.lower() in _readable_suffixes()


def expand_inputs(specs: Sequence[str | os.PathLike]) -> list[Path]:
    """The images named by ``specs`` (files, OME-Zarr stores, folders of images, glob patterns), each
    once, in the order given (a folder's and a pattern's sorted by name).

    A file that does not exist is kept (its prediction fails with one line, like an unreadable one).

    Raises:
        ImageReadError: a folder with no image in it, a pattern that matches no image.
    """
    out: list[Path] = []
    for spec in specs:
        text = str(spec)
        path = Path(text)
        if path.is_dir() and not is_image_store(path):
            found = sorted(p for p in path.iterdir() if _is_image(p))
            if not found:
                raise ImageReadError(f"no image in this folder (looked for {', '.join(_readable_suffixes())} "
                                     f"files and OME-Zarr stores)", source=text)
            out += found
        elif not path.exists() and _PATTERN & set(text):
            found = sorted(Path(p) for p in glob.glob(text) if _is_image(Path(p)))
            if not found:
                raise ImageReadError("this pattern matches no image", source=text)
            out += found
        else:
            out.append(path)
    seen, unique = set(), []
    for p in out:
        key = os.path.normcase(os.path.abspath(p))
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def open_image(path: str | os.PathLike) -> ImageFile:
    """An image file or an OME-Zarr store with its axes and pixel size, its pixels a dask array read
    when needed."""
    path = Path(path)
    if path.is_dir() and is_image_store(path):
        return open_image_store(path)
    return open_image_file(path)


def image_stem(path: str | os.PathLike) -> str:
    """The file's name without its extension (``a.ome.zarr`` and ``a.ome.tif`` -> ``a``)."""
    name = Path(path).name
    for suffix in (STORE_SUFFIX, ".zarr", ".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


