"""Points files: one point per row of a CSV, as napari saves a Points layer or as a script writes them.

Columns (names matched case-insensitively, in any order):

* the coordinates: ``y,x``, or napari's ``axis-0,axis-1`` (a Points layer
  saved with File > Save Selected Layers); pixel coordinates, pixel centres at
  whole numbers, fractions allowed;
* optionally ``class``: the object class 1..K of each point (default 1).

Other columns (napari's ``index``, other features) are ignored. A file with a
header and no rows holds no point (the image is not annotated for them).
Written by :func:`write_points_csv` as ``y,x`` (and ``class`` when a point is
not class 1).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..engine.points import check_points, empty_points
from ..errors import AnnotationError
from .atomic import atomic_write_file, check_writable
from .csv_rows import read_csv_rows

#: The coordinate columns a points file may use: (y, x) names, in order of preference.
COORDINATE_COLUMNS = (("y", "x"), ("axis-0", "axis-1"))
CLASS_COLUMN = "class"


def read_points_csv(path: str | os.PathLike, shape: Sequence[int], n_classes: int = 1,
                    what: str = "the points") -> np.ndarray:
    """Read and check a points CSV against the image ``shape`` (YX); (N, 3) float64 of y, x, class.

    Raises:
        ImageReadError: the file is missing or unreadable.
        AnnotationError: no coordinate columns, a cell that is not a number,
            three coordinates for a 2D image, a point outside the image, a class
            outside 1..K.
    """
    path = Path(path)
    header, rows = read_csv_rows(path, "points file", "points file is empty (no header)")
    pair = next((p for p in COORDINATE_COLUMNS if all(c in header for c in p)), None)
    if pair is None:
        found = ",".join(h for h in header if h) or "nothing"
        raise AnnotationError(f"points file has no coordinate columns: it needs y,x (or napari's axis-0,axis-1); "
                              f"found {found}", source=str(path))
    if pair[0] == "axis-0" and "axis-2" in header:
        raise AnnotationError("points have 3 coordinates (axis-0, axis-1, axis-2) but the image is 2D: save the "
                              "points of one plane", source=str(path))
    columns = [header.index(c) for c in pair]
    cls = header.index(CLASS_COLUMN) if CLASS_COLUMN in header else None
    if not rows:
        return empty_points()
    values = []
    for line, row in rows:
        cells = [row[i] if i < len(row) else "" for i in columns]
        if cls is not None:
            cells.append(row[cls] if cls < len(row) and row[cls].strip() else "1")
        try:
            values.append([float(c) for c in cells])
        except ValueError:
            bad = next(c for c in cells if not _is_number(c))
            raise AnnotationError(f"line {line}: {bad.strip()!r} is not a number", source=str(path)) from None
    return check_points(np.asarray(values), shape, n_classes, source=str(path), what=what)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def write_points_csv(path: str | os.PathLike, points: np.ndarray, overwrite: bool = False) -> Path:
    """Write points (an (N, 2) or (N, 3) array of y, x[, class]) as a ``y,x[,class]`` CSV, atomically.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = check_writable(path, overwrite)
    pts = np.asarray(points, np.float64).reshape(-1, np.shape(points)[-1] if np.size(points) else 3)
    if pts.shape[1] == 2:
        pts = np.column_stack([pts, np.ones(len(pts))])
    with_class = bool(len(pts)) and bool(np.any(pts[:, 2] != 1))

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["y", "x", CLASS_COLUMN] if with_class else ["y", "x"])
            for y, x, c in pts:
                w.writerow([f"{y:.10g}", f"{x:.10g}", int(c)] if with_class else [f"{y:.10g}", f"{x:.10g}"])

    return atomic_write_file(path, write, overwrite=overwrite)
