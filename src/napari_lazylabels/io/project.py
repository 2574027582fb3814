"""Projects: a folder of OME-Zarr image stores plus ``project.json``, and the training items they hold.

A project is a folder of stores (:mod:`.ome_zarr`) plus ``project.json``::

    {"format": "napari-lazylabels project", "version": 1,
     "images": [{"name": ..., "path": "<name>.ome.zarr"}, ...],
     "class_names": [...]}

The lazy-label layers of its stores are named like the inputs of the regimes
(their keys, the manifest columns; older names of an input are read too)
plus an optional ``roi``: :func:`project_to_annotations` makes them training
items, :func:`annotations_to_store` the other way round. Every write is
atomic (:mod:`napari_lazylabels.io.atomic`): nothing is left behind by a
failed write, and nothing existing is replaced without ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..engine.annotations import LazyAnnotations
from ..engine.regimes import registry
from ..errors import ImageReadError, OutputExistsError
from .atomic import atomic_write_dir, atomic_write_file, check_writable
from .jsonfile import read_json
from .ngff import STORE_SUFFIX, check_name
from .ome_zarr import ImageStore, prepare_points, prepare_store, read_image_store, write_image_store

PROJECT_FILE = "project.json"
PROJECT_FORMAT = "napari-lazylabels project"
PROJECT_VERSION = 1
#: Name of the label layer holding the region of interest.
ROI_LABEL = "roi"


def as_store(item: ImageStore | Mapping[str, Any]) -> ImageStore:
    if isinstance(item, ImageStore):
        return item
    item = dict(item)
    if "image" not in item:
        raise ValueError("a project image needs an 'image' array")
    known = {f.name for f in fields(ImageStore)}
    unknown = set(item) - known
    if unknown:
        raise ValueError(f"unknown image store fields: {sorted(unknown)}")
    tables = {f.name for f in fields(ImageStore) if f.type.startswith("dict")}    # labels, probabilities...
    given = {k: (dict(v or {}) if k in tables else v) for k, v in item.items() if k != "path"}
    given["name"] = item.get("name") or "image"
    return ImageStore(**given)


def store_kwargs(store: ImageStore) -> dict:
    return dict(image=store.image, labels=store.labels, probabilities=store.probabilities,
                name=store.name, metadata=store.metadata, pixel_size=store.pixel_size, points=store.points)


def is_project(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a project folder (holds ``project.json``)."""
    return (Path(path) / PROJECT_FILE).is_file()


def _project_json(names: Sequence[str], class_names: Sequence[str]) -> dict:
    return {"format": PROJECT_FORMAT, "version": PROJECT_VERSION,
            "images": [{"name": n, "path": n + STORE_SUFFIX} for n in names],
            "class_names": list(class_names)}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_project_file(folder: str | os.PathLike, names: Sequence[str], class_names: Sequence[str]) -> None:
    """``project.json`` of a project folder being written (its stores ``<name>.ome.zarr`` are there)."""
    _write_json(Path(folder) / PROJECT_FILE, _project_json(names, class_names))


def write_project(folder: str | os.PathLike, stores: Sequence[ImageStore | Mapping[str, Any]],
                  overwrite: bool = False, class_names: Sequence[str] | None = None) -> Path:
    """Write a project folder: one ``<name>.ome.zarr`` per image plus ``project.json``.

    Args:
        folder: the project folder (written atomically as a whole).
        stores: :class:`ImageStore` objects or dicts with the keyword
            arguments of :func:`write_image_store` (``image``, ``labels``,
            ``probabilities``, ``name``, ``metadata``).
        overwrite: replace an existing folder.
        class_names: recorded in ``project.json``; defaults to the first
            image's ``metadata["class_names"]`` (or an empty list).

    Raises:
        OutputExistsError: ``folder`` exists and ``overwrite`` is false.
        ValueError: duplicate or invalid image names, bad arrays.
    """
    folder = check_writable(folder, overwrite)
    items = [as_store(s) for s in stores]
    names = [check_name(s.name, "image", str(folder)) for s in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{folder}: duplicate image names {dupes}")
    if class_names is None:
        class_names = next((s.metadata.get("class_names") for s in items
                            if s.metadata.get("class_names")), [])
    for s in items:  # refuse bad arrays before writing anything
        prepare_store(s.image, s.labels, s.probabilities, s.metadata, f"{folder}/{s.name}{STORE_SUFFIX}")
        prepare_points(s.points, f"{folder}/{s.name}{STORE_SUFFIX}")

    def fill(tmp: Path) -> None:
        for s in items:
            write_image_store(tmp / (s.name + STORE_SUFFIX), **store_kwargs(s))
        _write_json(tmp / PROJECT_FILE, _project_json(names, class_names))

    return atomic_write_dir(folder, fill, overwrite=overwrite, replaceable=is_project,
                            what=f"a napari-lazylabels project folder (with {PROJECT_FILE})")


def read_project_info(folder: str | os.PathLike) -> dict:
    """Read and check ``project.json``.

    Raises:
        ImageReadError: folder or ``project.json`` missing, unreadable,
            or of an unknown format/version.
    """
    folder = Path(folder)
    pfile = folder / PROJECT_FILE
    if not folder.exists():
        raise ImageReadError("project folder not found", source=str(folder))
    if not pfile.is_file():
        raise ImageReadError(f"not a lazylabels project (no {PROJECT_FILE})", source=str(folder))
    info = read_json(pfile, "a project file")
    if not isinstance(info, dict) or info.get("format") != PROJECT_FORMAT:
        raise ImageReadError("not a lazylabels project file", source=str(pfile))
    if not isinstance(info.get("version"), int) or info["version"] > PROJECT_VERSION:
        raise ImageReadError(f"project version {info.get('version')!r} is newer than this "
                             f"napari-lazylabels understands ({PROJECT_VERSION})", source=str(pfile))
    images = info.get("images")
    if not isinstance(images, list) or not all(isinstance(e, dict) and "name" in e and "path" in e
                                               for e in images):
        raise ImageReadError("project file has no valid 'images' list", source=str(pfile))
    for e in images:
        if not isinstance(e["path"], str) or Path(e["path"]).name != e["path"] or e["path"].startswith("."):
            raise ImageReadError(f"image path {e['path']!r} must be a store inside the project folder",
                                 source=str(pfile))
    info.setdefault("class_names", [])
    return info


def read_project(folder: str | os.PathLike) -> list[ImageStore]:
    """Read every image store listed in a project's ``project.json``, in order.

    Raises:
        ImageReadError: bad project file, or a listed store missing/corrupt
            (the message names the store).
    """
    folder = Path(folder)
    info = read_project_info(folder)
    return [read_image_store(folder / e["path"]) for e in info["images"]]


def add_to_project(folder: str | os.PathLike, store: ImageStore | Mapping[str, Any],
                   overwrite: bool = False) -> Path:
    """Add (or, with ``overwrite``, replace) one image in a project; the others are untouched.

    A missing project folder is created. Returns the store's path.

    Raises:
        OutputExistsError: the image is already in the project (or its store
            folder exists) and ``overwrite`` is false.
    """
    folder = Path(folder)
    item = as_store(store)
    name = check_name(item.name, "image", str(folder))
    if not folder.exists():
        write_project(folder, [item])
        return folder / (name + STORE_SUFFIX)
    info = read_project_info(folder)
    names = [e["name"] for e in info["images"]]
    target = folder / (name + STORE_SUFFIX)
    if name in names and not overwrite:
        raise OutputExistsError(f"image {name!r} is already in the project; pass --overwrite to replace it",
                                source=str(target))
    write_image_store(target, **store_kwargs(item), overwrite=overwrite)
    if name not in names:
        info["images"].append({"name": name, "path": name + STORE_SUFFIX})
        if not info.get("class_names") and item.metadata.get("class_names"):
            info["class_names"] = list(item.metadata["class_names"])
        atomic_write_file(folder / PROJECT_FILE, lambda tmp: _write_json(tmp, info), overwrite=True)
    return target


def project_to_annotations(stores: Sequence[ImageStore]) -> list[LazyAnnotations]:
    """Turn image stores into training items (not validated; see ``regimes.targets.check_inputs``).

    Label layers named like a regime's input (or one of its older names)
    become that input's labels (absent: not annotated for it), and so do the
    points tables of a points input; the ``roi``
    layer becomes the region of interest; other layers are ignored.
    ``metadata["annotated"]`` (input key -> bool), when present, marks inputs
    explicitly.
    """
    inputs = registry.label_inputs()
    items = []
    for s in stores:
        marked = s.metadata.get("annotated") or {}
        marked = marked if isinstance(marked, dict) else {}
        labels, annotated = {}, {}
        for i in inputs:
            found = s.points if i.is_points else s.labels
            name = next((n for n in i.names if n in found), None)
            labels[i.key] = None if name is None else found[name]
            flag = next((marked[n] for n in i.names if n in marked), None)
            if flag is not None:
                annotated[i.key] = bool(flag)
        roi = s.labels.get(ROI_LABEL)
        items.append(LazyAnnotations(image=s.image, labels=labels,
                                     roi=None if roi is None else np.asarray(roi) > 0,
                                     name=s.name, annotated=annotated, pixel_size=s.pixel_size))
    return items


def annotations_to_store(item: LazyAnnotations, metadata: Mapping[str, Any] | None = None) -> ImageStore:
    """The inverse of :func:`project_to_annotations` for one image (``None`` layers are left out)."""
    points_keys = {i.key for i in registry.label_inputs() if i.is_points}
    labels = {k: v for k, v in item.labels.items() if v is not None and k not in points_keys}
    points = {k: v for k, v in item.labels.items() if v is not None and k in points_keys}
    if item.roi is not None:
        labels[ROI_LABEL] = np.asarray(item.roi)
    meta = dict(metadata or {})
    if item.annotated:
        meta.setdefault("annotated", {k: bool(v) for k, v in item.annotated.items()})
    return ImageStore(image=item.image, labels=labels, name=item.name, metadata=meta, pixel_size=item.pixel_size,
                      points=points)
