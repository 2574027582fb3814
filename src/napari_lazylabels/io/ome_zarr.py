"""OME-Zarr (NGFF 0.5, Zarr v3) stores for images, lazy labels and predictions.

One image store (``<name>.ome.zarr``) holds::

    zarr.json                 attrs: {"ome": {"version": "0.5", "multiscales": [...]},
                                      "lazylabels": {"version": 1, "image_axes": "yx"|"yxc",
                                                     "metadata": {...}}}
    0/                        the image, axes (y, x) or (c, y, x)
    labels/zarr.json          attrs: {"ome": {"version": "0.5", "labels": [names]}}
    labels/<name>/            one NGFF image-label group per label layer
    labels/<name>/0/          the label array (y, x), integer dtype as given
    probabilities/<task>/0/   a task's class probabilities (c, y, x), float
    points/<name>             a points input's table (n, 3) float64: y, x, class (pixel coordinates)

The lazy-label layers are named like the inputs of the regimes (their keys,
the manifest columns; older names of an input are read too) plus an optional
``roi``; any other name (e.g. instance ids from inference) is stored but not
trained on. Probabilities are per-class maps,
not labels, so they live outside the NGFF ``labels`` group; so do the points
of an input whose napari layer is a Points layer (one click per object), a
small table of y, x and class per point (an empty table: annotated with no
point). A single scale
level is written: the images are 2D and napari reads them directly.

The pixel size, when known, is the ``scale`` of each array's
``coordinateTransformations`` with the ``unit`` of the y and x axes (NGFF
space units, e.g. ``micrometer``); without one the scale is 1 and the axes
have no unit. Stores of NGFF 0.4 (Zarr v2: ``.zattrs``, attributes at the
top level) are read too; 2D images only: a store with more than one time
point or z-plane is refused (:func:`store_problem` says why without reading
the pixels).

Free-form, JSON-serialisable metadata is kept under
``attrs["lazylabels"]["metadata"]``. Conventional keys: ``annotated`` (input
key -> bool, marks an input annotated even when its layer is empty, or not
annotated though it is painted), ``class_names`` (list of str) and ``model``
(provenance of the probabilities). JSON turns tuples into lists.

The metadata they share is :mod:`.ngff`'s; a folder of such stores is a project
(:mod:`.project`); a prediction written block by block is a
:class:`~.prediction_store.PredictionStore`. Every write is atomic
(:mod:`napari_lazylabels.io.atomic`): nothing is left behind by a failed write,
and nothing existing is replaced without ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ..engine.annotations import PixelSize
from ..engine.regimes.base import POINTS
from ..errors import ImageReadError, LazyLabelsError, one_line
from .atomic import atomic_write_dir, check_writable, recover
from .image_file import ImageFile, from_axes
from .lazy_array import LazyArray, lazy_edge
from .memory import MemoryBudget, check_piece_fits
from .ngff import (NGFF_VERSION, STORE_VERSION, check_name, check_written, first_dataset, is_image_store,
                   label_colours, multiscales, ome_attributes, pixel_size_of, record_written, store_name, to_yx,
                   write_array)

#: The group of the points tables (named like the points layer type).
POINTS_GROUP = POINTS


@dataclass
class ImageStore:
    """The content of one OME-Zarr image store.

    Attributes:
        image: YX or YXC array, exactly as written.
        labels: label layer name -> YX integer (or bool) array.
        probabilities: task name -> (C, Y, X) float array.
        points: points input name -> (N, 3) float array of y, x, class.
        name: the image's name (multiscales name; file stem by default).
        metadata: JSON-serialisable project metadata (see module docstring).
        path: where it was read from (``None`` when built in memory).
        pixel_size: the Y/X pixel size with its unit (``None``: unknown, scale 1).
    """

    image: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "image"
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    pixel_size: PixelSize | None = None
    points: dict[str, np.ndarray] = field(default_factory=dict)


def prepare_points(points: Mapping[str, np.ndarray] | None, source: str) -> dict[str, np.ndarray]:
    """Points tables as (N, 3) float64 (y, x, class; class 1 where only y, x are given)."""
    out: dict[str, np.ndarray] = {}
    for key, pts in (points or {}).items():
        check_name(key, "points table", source)
        pts = np.asarray(pts, dtype=np.float64) if np.size(pts) else np.zeros((0, 3))
        if pts.ndim != 2 or pts.shape[1] not in (2, 3) or not np.isfinite(pts).all():
            raise ValueError(f"{source}: points {key!r} must be a finite (N, 2) or (N, 3) array, got {pts.shape}")
        out[key] = pts if pts.shape[1] == 3 else np.column_stack([pts, np.ones(len(pts))])
    return out


def prepare_store(image: np.ndarray, labels: Mapping[str, np.ndarray],
             probabilities: Mapping[str, np.ndarray], metadata: Mapping | None,
             source: str) -> tuple[np.ndarray, dict, dict, dict]:
    """Check everything before any byte is written."""
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"{source}: image must be YX or YXC, got shape {image.shape}")
    yx = image.shape[:2]
    labs: dict[str, np.ndarray] = {}
    for key, lab in (labels or {}).items():
        check_name(key, "label", source)
        lab = np.asarray(lab)
        if lab.shape != yx:
            raise ValueError(f"{source}: label {key!r} has shape {lab.shape} but the image is {yx}")
        if not (lab.dtype == bool or np.issubdtype(lab.dtype, np.integer)):
            raise ValueError(f"{source}: label {key!r} must be integer or bool, got {lab.dtype}")
        labs[key] = lab
    probs: dict[str, np.ndarray] = {}
    for key, prob in (probabilities or {}).items():
        check_name(key, "probability", source)
        prob = np.asarray(prob)
        if prob.ndim != 3 or prob.shape[1:] != yx:
            raise ValueError(f"{source}: probabilities {key!r} must be (C, Y, X) with YX = {yx}, "
                             f"got {prob.shape}")
        if not np.issubdtype(prob.dtype, np.floating):
            raise ValueError(f"{source}: probabilities {key!r} must be float, got {prob.dtype}")
        probs[key] = prob
    meta = dict(metadata or {})
    try:
        meta = json.loads(json.dumps(meta))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: metadata is not JSON-serialisable ({exc})") from None
    return image, labs, probs, meta


def _fill_store(root_dir: Path, image: np.ndarray, labels: dict, probabilities: dict,
                name: str, metadata: dict, pixel_size: PixelSize | None = None,
                points: dict | None = None) -> None:
    import zarr
    from zarr.storage import LocalStore

    yxc = image.ndim == 3
    attrs = {
        "ome": {"version": NGFF_VERSION, "multiscales": multiscales("cyx" if yxc else "yx", name, pixel_size)},
        "lazylabels": {"version": STORE_VERSION, "image_axes": "yxc" if yxc else "yx",
                       "metadata": metadata},
    }
    root = zarr.open_group(LocalStore(root_dir), mode="w", zarr_format=3, attributes=attrs)
    write_array(root, "0", np.moveaxis(image, -1, 0) if yxc else image, "cyx" if yxc else "yx")
    _write_labels(root, labels, pixel_size)
    _write_probabilities(root, probabilities, pixel_size)
    _write_points(root, points or {})
    record_written(root)


def _write_labels(root, labels: dict[str, np.ndarray], pixel_size: PixelSize | None = None) -> None:
    if not labels:
        return
    group = root.create_group("labels", attributes={"ome": {"version": NGFF_VERSION,
                                                            "labels": list(labels)}})
    for key, lab in labels.items():
        is_bool = lab.dtype == bool
        data = lab.astype(np.uint8) if is_bool else lab
        top = int(data.max()) if data.size else 0
        attrs = {"ome": {"version": NGFF_VERSION, "multiscales": multiscales("yx", key, pixel_size),
                         "image-label": {"version": NGFF_VERSION, "colors": label_colours(top),
                                         "source": {"image": "../../"}}},
                 "lazylabels": {"dtype": "bool" if is_bool else str(lab.dtype)}}
        sub = group.create_group(key, attributes=attrs)
        write_array(sub, "0", data, "yx")


def _write_probabilities(root, probabilities: dict[str, np.ndarray], pixel_size: PixelSize | None = None) -> None:
    if not probabilities:
        return
    group = root.create_group("probabilities", attributes={"lazylabels": {"probabilities": list(probabilities)}})
    for key, prob in probabilities.items():
        sub = group.create_group(key, attributes={"ome": {"version": NGFF_VERSION,
                                                          "multiscales": multiscales("cyx", key, pixel_size)}})
        write_array(sub, "0", prob, "cyx")


def _write_points(root, points: dict[str, np.ndarray]) -> None:
    if not points:
        return
    group = root.create_group(POINTS_GROUP, attributes={"lazylabels": {"tables": list(points),
                                                                       "columns": ["y", "x", "class"]}})
    for key, pts in points.items():
        group.create_array(key, data=np.ascontiguousarray(pts, np.float64), chunks=(max(1, len(pts)), 3),
                           dimension_names=["point", "column"])


def write_image_store(path: str | os.PathLike, image: np.ndarray,
                      labels: Mapping[str, np.ndarray] | None = None,
                      probabilities: Mapping[str, np.ndarray] | None = None, *,
                      name: str | None = None, metadata: Mapping[str, Any] | None = None,
                      overwrite: bool = False, pixel_size: PixelSize | None = None,
                      points: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write an image, its label layers and probabilities as one OME-Zarr store.

    Args:
        path: the store folder, conventionally ``<name>.ome.zarr``.
        image: YX or YXC array (stored as (y, x) or (c, y, x)).
        labels: layer name -> YX integer/bool array; dtype kept exactly.
        probabilities: task name -> (C, Y, X) float array.
        name: image name; defaults to the folder name without ``.ome.zarr``.
        metadata: JSON-serialisable dict kept under ``attrs["lazylabels"]``.
        overwrite: replace an existing store (atomically).
        pixel_size: the Y/X pixel size: the scale of every array, with the unit of its axes.
        points: points input name -> (N, 2) or (N, 3) array of y, x[, class] (a small table).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: arrays of the wrong shape or type, bad names, metadata
            that is not JSON.
    """
    path = check_writable(path, overwrite)
    name = name or store_name(path)
    image, labs, probs, meta = prepare_store(image, labels or {}, probabilities or {}, metadata, str(path))
    pts = prepare_points(points, str(path))
    return atomic_write_dir(path, lambda tmp: _fill_store(tmp, image, labs, probs, name, meta, pixel_size, pts),
                            overwrite=overwrite, replaceable=is_image_store, what="an OME-Zarr store")


def read_image_store(path: str | os.PathLike) -> ImageStore:
    """Read a store written by :func:`write_image_store` (or a 2D NGFF image).

    Raises:
        ImageReadError: missing folder, not a Zarr v3 OME store, or corrupt.
    """
    path = recover(Path(path))
    source = str(path)
    if not path.exists():
        raise ImageReadError("OME-Zarr store not found", source=source)
    if not path.is_dir():
        raise ImageReadError("not an OME-Zarr store (not a folder)", source=source)
    if not ((path / "zarr.json").is_file() or (path / ".zattrs").is_file()):
        raise ImageReadError("not an OME-Zarr store (no zarr.json, nor .zattrs for NGFF 0.4)", source=source)
    with _store_errors(source):
        return _read_store(path)


@contextmanager
def _store_errors(source: str) -> Iterator[None]:
    """What goes wrong inside while a store is read, said in one line (this tool's errors pass as they are)."""
    try:
        yield
    except LazyLabelsError:
        raise
    except MemoryError:
        raise ImageReadError("not enough memory to read the OME-Zarr store", source=source) from None
    except Exception as exc:
        raise ImageReadError(f"cannot read OME-Zarr store ({one_line(exc)})", source=source) from None


def _read_store(path: Path) -> ImageStore:
    import zarr
    from zarr.storage import LocalStore

    root = zarr.open_group(LocalStore(path, read_only=True), mode="r")
    check_written(root, path)
    budget = MemoryBudget(path)
    own = root.attrs.get("lazylabels", {}) or {}
    array, axes = first_dataset(root, "image")
    image = to_yx(budget.read(array, "image"), axes, channel_last=True)
    ms = ome_attributes(root.attrs)["multiscales"][0]
    name = ms.get("name") or store_name(path)

    labels: dict[str, np.ndarray] = {}
    if "labels" in root:
        group = root["labels"]
        for key in ome_attributes(group.attrs).get("labels", []):
            sub = group[key]
            arr, lab_axes = first_dataset(sub, f"label {key!r}")
            data = to_yx(budget.read(arr, f"labels/{key}"), lab_axes, channel_last=False)
            if data.ndim != 2:
                raise ValueError(f"label {key!r} is not 2D")
            if (sub.attrs.get("lazylabels", {}) or {}).get("dtype") == "bool":
                data = data.astype(bool)
            labels[key] = data

    probabilities: dict[str, np.ndarray] = {}
    if "probabilities" in root:
        group = root["probabilities"]
        names = (group.attrs.get("lazylabels", {}) or {}).get("probabilities")
        if names is None:
            names = sorted(k for k, _ in group.groups())
        for key in names:
            arr, _ = first_dataset(group[key], f"probabilities {key!r}")
            probabilities[key] = np.ascontiguousarray(budget.read(arr, f"probabilities/{key}"))

    points: dict[str, np.ndarray] = {}
    if POINTS_GROUP in root:
        group = root[POINTS_GROUP]
        for key in (group.attrs.get("lazylabels", {}) or {}).get("tables") or []:
            data = np.asarray(budget.read(group[key], f"points/{key}"), np.float64)
            if data.ndim != 2 or data.shape[1] != 3:
                raise ValueError(f"points {key!r} are not an (N, 3) table")
            points[key] = data

    return ImageStore(image=image, labels=labels, probabilities=probabilities, name=name,
                      metadata=dict(own.get("metadata", {}) or {}), path=str(path), pixel_size=pixel_size_of(ms),
                      points=points)


def open_image_store(path: str | os.PathLike) -> ImageFile:
    """The image of an OME-Zarr store (NGFF 0.5 or 0.4) as a dask array read chunk by chunk, with its
    axes (time points and z-planes become planes) and pixel size; labels and probabilities are not read.

    Raises:
        ImageReadError: as :func:`read_image_store` (the store's record of its arrays is checked).
    """
    import dask.array as da
    import zarr
    from zarr.storage import LocalStore

    path = recover(Path(path))
    source = str(path)
    if not (path.is_dir() and is_image_store(path)):
        raise ImageReadError("not an OME-Zarr store (no multiscales metadata)", source=source)
    with _store_errors(source):
        root = zarr.open_group(LocalStore(path, read_only=True), mode="r")
        check_written(root, path)
        array, axes = first_dataset(root, "image")
        ms = ome_attributes(root.attrs)["multiscales"][0]
        dataset = str(ms["datasets"][0]["path"])
        if any(a not in "tczyx" for a in axes) or "y" not in axes or "x" not in axes:
            raise ValueError(f"unsupported axes {axes}")
        check_piece_fits(array.chunks, array.dtype, source, "rechunk it (e.g. chunks of 1024 x 1024 px)")
        lazy = LazyArray(str(path / dataset), "zarr", array.shape, array.dtype,
                         tuple(lazy_edge(n, c) if a in "yx" else (n if a == "c" else 1)
                               for n, c, a in zip(array.shape, array.chunks, axes)))
        data = da.from_array(lazy, chunks=lazy.chunks, asarray=True,
                             name=f"store-{uuid.uuid4().hex}")
        return from_axes(data, "".join(axes).upper(), source, pixel_size_of(ms), "OME-Zarr metadata")
