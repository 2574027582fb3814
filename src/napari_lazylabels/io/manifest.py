"""Training sets on disk: a CSV manifest or a project folder.

A CSV manifest has one row per image and a header naming at least ``image``
and the required inputs of the regimes (:mod:`napari_lazylabels.engine.regimes`;
``lazylabels train --help`` lists them); the other inputs' columns are
optional. Column order is free, names are matched case-insensitively (an
input's older names too), and an optional ``roi`` column (non-zero = inside
the region of interest) and an optional ``name`` column are used; any other
column is refused, with the list of the known ones (a misspelt column would
otherwise be silently not trained on)::

    image,detection,separation,segmentation,roi
    img/a.tif,lab/a_blobs.tif,,lab/a_masks.tif,
    img/b.tif,lab/b_blobs.tif,lab/b_scribbles.tif,,

Paths are relative to the CSV's folder (absolute paths work too). An empty
cell means "not annotated for that task". A label file that is given but
entirely 0 follows METHOD section 1: not annotated. An image listed on more
than one row is trained on as often: a warning says so.

Instead of a CSV, :func:`load_manifest` takes a project folder written by
:func:`napari_lazylabels.io.project.write_project` (or a single ``.ome.zarr``
store).

Every problem is a one-line :class:`~napari_lazylabels.errors.LazyLabelsError`
naming the offending file (and the manifest row).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..engine.annotations import ROI, PaintedImage, PaintedSet
from .atomic import atomic_write_file, check_writable
from .csv_rows import read_csv_rows
from ..errors import AnnotationError, ImageReadError, LazyLabelsError, warn
from .image_file import stack_refused
from .imageio import read_image, read_image_file
from .points import read_points_csv
from ..engine.regimes import registry
from ..engine.regimes.base import LabelInput
from ..engine.regimes.targets import check_painted, painted_set
from .ngff import is_image_store
from .ome_zarr import ImageStore, read_image_store
from .project import ROI_LABEL, is_project, project_to_annotations, read_project

__all__ = ["IMAGE_COLUMN", "NAME_COLUMN", "ROI_COLUMN", "load_manifest", "write_manifest", "known_columns", "label_files",
           "manifest_files"]

IMAGE_COLUMN = "image"
ROI_COLUMN = ROI_LABEL
NAME_COLUMN = "name"


def default_columns() -> tuple[str, ...]:
    """``image`` and the required inputs' columns, in registry order (the columns of the other
    inputs are written when the rows have them)."""
    return (IMAGE_COLUMN, *(i.key for i in registry.required_inputs()))


def _strip_source(exc: LazyLabelsError) -> str:
    text = str(exc)
    prefix = f"{exc.source}: " if exc.source else ""
    return text[len(prefix):] if prefix and text.startswith(prefix) else text


def _with_context(exc: LazyLabelsError, context: str) -> LazyLabelsError:
    """The same error (same class, same source) with ``context`` appended."""
    new = type(exc)(f"{_strip_source(exc)} ({context})", source=exc.source)
    return new


def _resolve(cell: str, base: Path) -> Path:
    p = Path(os.path.expanduser(cell.strip()))
    return p if p.is_absolute() else base / p


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header (lower-cased, stripped) and (line number, row) pairs of non-blank rows."""
    def no_extra_cells(line: int, header: list[str], row: list[str]) -> None:
        if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
            raise AnnotationError(f"line {line} has {len(row)} cells but the header has {len(header)}",
                                  source=str(path))

    header, rows = read_csv_rows(path, "manifest", "manifest is empty (no header, no rows)", no_extra_cells)
    return header, [(line, dict(zip(header, [c.strip() for c in row] + [""] * (len(header) - len(row)))))
                    for line, row in rows]


def _column_of(spec: LabelInput, header: Sequence[str]) -> str | None:
    """The header column holding ``spec`` (its key, or an older name), or None."""
    return next((n.lower() for n in spec.names if n.lower() in header), None)


def known_columns(inputs: Sequence[LabelInput] | None = None) -> list[str]:
    """The columns a manifest may have: ``image``, every input's key, ``roi``, ``name`` (lower case)."""
    inputs = registry.label_inputs() if inputs is None else inputs
    return [IMAGE_COLUMN, *(i.key.lower() for i in inputs), ROI_COLUMN, NAME_COLUMN]


def _check_header(header: list[str], inputs: Sequence[LabelInput], path: Path) -> None:
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        raise AnnotationError(f"manifest header repeats column(s) {', '.join(dupes)}", source=str(path))
    # the required inputs' columns go together; a manifest with only other inputs' columns
    # (e.g. fg/bg scribbles alone) needs none of them
    others_only = not any(_column_of(i, header) for i in inputs if i.required) and any(
        _column_of(i, header) for i in inputs if not i.required)
    required = [IMAGE_COLUMN] + [i.key for i in inputs if i.required and not others_only]
    missing = [c for c in required if c not in header and not (
        c != IMAGE_COLUMN and _column_of(next(i for i in inputs if i.key == c), header))]
    if missing:
        raise AnnotationError(
            f"manifest header lacks column(s) {', '.join(missing)}; it must contain "
            f"{','.join(required)} (found: {','.join(header) or 'nothing'})", source=str(path))
    known = set(known_columns(inputs)) | {n.lower() for i in registry.label_inputs() for n in i.names}
    unknown = [h for h in header if h and h not in known]   # an empty name: a trailing comma
    if unknown:
        raise AnnotationError(f"manifest has unknown column(s) {', '.join(unknown)}; the columns are "
                              f"{', '.join(known_columns(inputs))} (an input's older names are read too)",
                              source=str(path))


def _load_row(row: dict[str, str], line: int, base: Path, inputs: Sequence[LabelInput], n_classes: int,
              manifest: Path) -> PaintedImage:
    """The image and labels of one row, read and checked (errors name the file and the row)."""
    where = f"row on line {line} of {manifest}"
    cell = row[IMAGE_COLUMN]
    if not cell:
        raise AnnotationError(f"line {line} has no image", source=str(manifest))
    image_path = _resolve(cell, base)
    try:
        image_file = read_image_file(image_path)
        if image_file.is_stack:
            raise stack_refused(image_file)
        labels: dict[str, np.ndarray | None] = {}
        sources = {"image": str(image_path)}
        for spec in inputs:
            column = _column_of(spec, list(row))
            if column is None:
                continue
            c = row.get(column, "")
            if not c:
                labels[spec.key] = None
                continue
            sources[spec.key] = str(_resolve(c, base))
            if spec.is_points:
                labels[spec.key] = read_points_csv(_resolve(c, base), image_file.data.shape[:2], n_classes,
                                                   what=spec.key)
            else:
                labels[spec.key] = read_image(_resolve(c, base), what=f"{spec.key} labels")
        roi = None
        if row.get(ROI_COLUMN):
            sources[ROI] = str(_resolve(row[ROI_COLUMN], base))
            roi = read_image(_resolve(row[ROI_COLUMN], base), what="region of interest")
        name = row.get(NAME_COLUMN) or _stem(image_path)
        return check_painted(PaintedImage(image=image_file.data, labels=labels, roi=roi, name=name,
                                          pixel_size=image_file.pixel_size, sources=sources), n_classes)
    except LazyLabelsError as exc:
        raise _with_context(exc, where) from None


def _stem(path: Path) -> str:
    """File name without its image suffix (and a ``.ome`` before it)."""
    stem = path.stem
    return stem[:-4] if stem.lower().endswith(".ome") and len(stem) > 4 else stem


def _unique_names(items: list[PaintedImage], cells: list[str]) -> None:
    names = [it.name for it in items]
    for it, cell in zip(items, cells):
        if names.count(it.name) > 1:
            it.name = cell


def _load_csv(path: Path, inputs: Sequence[LabelInput], n_classes: int) -> PaintedSet:
    header, rows = _read_rows(path)
    _check_header(header, inputs, path)
    if not rows:
        raise AnnotationError("manifest has a header but no rows", source=str(path))
    base = path.parent
    _warn_repeated_images(rows, base, path)
    items = [_load_row(row, line, base, inputs, n_classes, path) for line, row in rows]
    if NAME_COLUMN not in header:
        _unique_names(items, [row[IMAGE_COLUMN] for _, row in rows])
    lines = {str(_resolve(row[IMAGE_COLUMN], base)): n for n, row in rows}
    return _as_set(items, n_classes, path, lambda source: f"row on line {lines[source]} of {path}"
                   if source in lines else None)


def _as_set(items: list[PaintedImage], n_classes: int, path: Path,
            context: Callable[[str], str | None] = lambda source: None) -> PaintedSet:
    """The checked images as a set (:func:`painted_set`); an error that names an image gets
    ``context(image)`` appended, one that names none is about ``path``."""
    try:
        return painted_set(items, n_classes)
    except LazyLabelsError as exc:
        if not exc.source:
            raise type(exc)(_strip_source(exc), source=str(path)) from None
        where = context(exc.source)
        if where is None:
            raise
        raise _with_context(exc, where) from None


def _warn_repeated_images(rows: list[tuple[int, dict[str, str]]], base: Path, path: Path) -> None:
    """Warn about an image listed on more than one row (it would be trained on as many times)."""
    lines: dict[Path, list[int]] = {}
    for line, row in rows:
        if row.get(IMAGE_COLUMN):
            lines.setdefault(_resolve(row[IMAGE_COLUMN], base).absolute().resolve(), []).append(line)
    for image, where in lines.items():
        if len(where) > 1:
            warn(f"image {image.name} is listed {len(where)} times (lines {', '.join(map(str, where))}); "
                 f"it is trained on {len(where)} times as often as the others", source=str(path))


def manifest_files(path: str | os.PathLike) -> list[Path]:
    """The files a training set is read from: the manifest and every file its rows name (or the
    project folder), without reading any image (an output must not replace them)."""
    path = Path(path)
    if path.is_dir() or not path.is_file():
        return [path]
    try:
        header, rows = _read_rows(path)
    except LazyLabelsError:
        return [path]
    files = [path]
    for _, row in rows:
        files += [_resolve(cell, path.parent) for column, cell in row.items() if cell and column != NAME_COLUMN]
    return files


def label_files(path: str | os.PathLike) -> list[Path]:
    """The label files a manifest's rows name (every column but the image and the name), without reading
    them; none for a file that is no manifest."""
    try:
        _, rows = _read_rows(Path(path))
    except LazyLabelsError:
        return []
    return [_resolve(cell, Path(path).parent) for _, row in rows for column, cell in row.items()
            if cell and column not in (IMAGE_COLUMN, NAME_COLUMN)]


def _store_sources(store: ImageStore, inputs: Sequence[LabelInput]) -> dict[str, str]:
    """Where the store's image and each input's layer lie (the store, its label folder or points table)."""
    sources = {"image": str(store.path)}
    for spec in inputs:
        found, kind = (store.points, "points") if spec.is_points else (store.labels, "labels")
        name = next((n for n in spec.names if n in found), None)
        if name is not None:
            sources[spec.key] = f"{store.path}/{kind}/{name}"
    return sources


def _load_project(path: Path, inputs: Sequence[LabelInput], n_classes: int) -> PaintedSet:
    stores = read_project(path) if is_project(path) else [read_image_store(path)]
    if not stores:
        raise AnnotationError("project has no images", source=str(path))
    keys = {i.key for i in inputs}
    items = []
    for store, item in zip(stores, project_to_annotations(stores)):
        item.labels = {k: v for k, v in item.labels.items() if k in keys}
        item.sources = _store_sources(store, inputs)
        items.append(check_painted(item, n_classes))
    return _as_set(items, n_classes, path)


def load_manifest(path: str | os.PathLike, n_classes: int = 1,
                  inputs: Sequence[LabelInput] | None = None) -> PaintedSet:
    """Load and check a training set from a CSV manifest or a project folder (once: a training run
    trusts the :class:`~napari_lazylabels.engine.annotations.PaintedSet` it returns).

    Args:
        path: the CSV file, a project folder or one OME-Zarr store.
        n_classes: K, the number of object classes (labels are checked against it).
        inputs: the regimes' inputs to read (default: all of them).

    Returns:
        The checked painted images (labels keyed by input key, as int32; ROI
        as bool), in manifest order, as a sequence; a column the manifest
        lacks is absent from the labels, an empty cell is None.

    Raises:
        ImageReadError: manifest, image or label file missing or unreadable.
        AnnotationError: empty manifest, bad header, label shape or values
            wrong, or no image annotated for any task.
    """
    path = Path(path)
    source = str(path)
    inputs = list(registry.label_inputs() if inputs is None else inputs)
    if not path.exists():
        raise ImageReadError("manifest not found", source=source)
    if path.is_dir() and not (is_project(path) or is_image_store(path)):
        raise ImageReadError("folder is neither a lazylabels project (no project.json) "
                             "nor an OME-Zarr store", source=source)
    return _load_project(path, inputs, n_classes) if path.is_dir() else _load_csv(path, inputs, n_classes)


def _cell(value: Any, base: Path) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if not text:
            return ""
        p = Path(text)
        if p.is_absolute():
            try:
                p = Path(os.path.relpath(p, base))
            except ValueError:  # another drive on Windows
                return p.as_posix()
        return p.as_posix()
    return str(value)


def write_manifest(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]],
                   columns: Sequence[str] | None = None, overwrite: bool = False) -> Path:
    """Write a CSV manifest atomically; absolute paths are made relative to its folder.

    Args:
        path: the CSV file.
        rows: one mapping per image, column -> path (e.g. ``{"image": "a.tif",
            <input key>: "a_blobs.tif"}``); missing keys and ``None`` give
            empty cells. Paths may be ``str`` or ``Path``.
        columns: header; default ``image`` and the required inputs' columns
            (:func:`default_columns`), followed by any other key found in ``rows``.
        overwrite: replace an existing file.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: a row without an image.
    """
    path = check_writable(path, overwrite)
    rows = [dict(r) for r in rows]
    for i, r in enumerate(rows):
        if not r.get(IMAGE_COLUMN):
            raise ValueError(f"{path}: row {i} has no {IMAGE_COLUMN!r}")
    if columns is None:
        columns = list(default_columns())
        for r in rows:
            columns += [k for k in r if k not in columns]
    base = path.absolute().parent

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(columns)
            for r in rows:
                w.writerow([_cell(r.get(c), base) for c in columns])

    return atomic_write_file(path, write, overwrite=overwrite)
