"""napari writer for Labels layers: a zlib-compressed TIFF (uint16, or uint32 for large ids).

A 2D layer is written with :func:`~napari_lazylabels.imageio.write_labels_tiff`
(the format ``lazylabels train`` reads back); a stack (2D+t, 2D+z) as a
multi-page TIFF, one page per plane. Writes are atomic. napari's Save dialog
asks before replacing a file, so the writer replaces what it is pointed at.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_file
from .imageio import labels_for_tiff, write_labels_tiff

EXTENSIONS = (".tif", ".tiff")


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write one Labels layer to ``path`` (.tif/.tiff); return the paths written."""
    p = Path(os.fspath(path))
    if p.suffix.lower() not in EXTENSIONS:
        p = p.with_name(p.name + ".tif")
    arr = np.asarray(data)
    if arr.ndim == 2:
        return [str(write_labels_tiff(p, arr, overwrite=True))]
    import tifffile

    stack = labels_for_tiff(arr, str(p), planar=False)
    atomic_write_file(p, lambda tmp: tifffile.imwrite(tmp, stack, compression="zlib"), overwrite=True)
    return [str(p)]
