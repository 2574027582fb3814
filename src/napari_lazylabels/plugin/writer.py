"""napari writer for Labels layers: a zlib-compressed TIFF (uint16, or uint32 for large ids).

Written with :func:`~napari_lazylabels.io.label_tiff.write_labels_tiff` (the
format ``lazylabels train`` reads back); a stack (2D+t, 2D+z) as a multi-page
TIFF, one page per plane. Writes are atomic. napari's Save dialog
asks before replacing a file, so the writer replaces what it is pointed at.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io.label_tiff import write_labels_tiff

EXTENSIONS = (".tif", ".tiff")


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write one Labels layer to ``path`` (.tif/.tiff); return the paths written."""
    p = Path(os.fspath(path))
    if p.suffix.lower() not in EXTENSIONS:
        p = p.with_name(p.name + ".tif")
    return [str(write_labels_tiff(p, np.asarray(data), overwrite=True, planar=False))]
