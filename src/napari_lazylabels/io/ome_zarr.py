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

A project is a folder of such stores plus ``project.json``::

    {"format": "napari-lazylabels project", "version": 1,
     "images": [{"name": ..., "path": "<name>.ome.zarr"}, ...],
     "class_names": [...]}

Every write is atomic (:mod:`napari_lazylabels.io.atomic`): nothing is left
behind by a failed write, and nothing existing is replaced without
``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..engine.annotations import LazyAnnotations, PixelSize
from .atomic import atomic_write_dir, atomic_write_file, check_writable, recover
from .imageio import ImageFile, LazyArray, from_axes, ngff_unit
from ..errors import ImageReadError, LazyLabelsError, OutputExistsError
from ..engine.regimes import registry
from ..engine.regimes.base import POINTS

#: The group of the points tables (named like the points layer type).
POINTS_GROUP = POINTS

__all__ = [
    "NGFF_VERSION", "STORE_SUFFIX", "PROJECT_FILE", "ROI_LABEL", "ImageStore",
    "write_image_store", "read_image_store", "is_image_store", "is_project",
    "write_project", "read_project", "read_project_info", "add_to_project",
    "project_to_annotations", "annotations_to_store", "store_problem", "open_image_store", "PredictionStore",
]

NGFF_VERSION = "0.5"
#: NGFF versions read (0.4: Zarr v2 with the attributes at the top level).
NGFF_READ_VERSIONS = ("0.4", "0.5")
STORE_SUFFIX = ".ome.zarr"
PROJECT_FILE = "project.json"
PROJECT_FORMAT = "napari-lazylabels project"
PROJECT_VERSION = 1
STORE_VERSION = 1
#: Name of the label layer holding the region of interest.
ROI_LABEL = "roi"
#: Largest spatial chunk edge.
CHUNK = 512

_BAD_NAME = re.compile(r"[/\\\x00-\x1f:*?\"<>|]")

# A colour-blind friendly cycle (Okabe-Ito) for NGFF image-label colours.
_PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
            (0, 114, 178), (213, 94, 0), (204, 121, 167), (153, 153, 153)]
_MAX_COLOURS = 256


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


# ----------------------------------------------------------------- helpers

def _store_name(path: Path) -> str:
    name = path.name
    for suffix in (STORE_SUFFIX, ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_name(name: str, what: str, source: str) -> str:
    if (not isinstance(name, str) or not name.strip() or name != name.strip()
            or name.startswith((".", "__")) or _BAD_NAME.search(name)):
        raise ValueError(f"{source}: {what} name {name!r} is not usable as a file name "
                         f"(no slashes, control characters or :*?\"<>|, no leading '.' or '__')")
    return name


def _chunks(shape: Sequence[int]) -> tuple[int, ...]:
    """Full extent on the leading (channel) axis when small, at most CHUNK on Y and X."""
    lead = tuple(s if s <= 16 else 1 for s in shape[:-2])
    return lead + tuple(max(1, min(CHUNK, s)) for s in shape[-2:])


def _axes(names: str, pixel_size: PixelSize | None = None) -> list[dict[str, str]]:
    kinds = {"c": "channel", "y": "space", "x": "space", "z": "space", "t": "time"}
    axes = [{"name": n, "type": kinds[n]} for n in names]
    if pixel_size is not None:
        for a in axes:
            if a["name"] in "yx":
                a["unit"] = pixel_size.unit
    return axes


def _multiscales(axes: str, name: str, pixel_size: PixelSize | None = None) -> list[dict]:
    sizes = {"y": pixel_size.y, "x": pixel_size.x} if pixel_size is not None else {}
    return [{
        "name": name,
        "axes": _axes(axes, pixel_size),
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [float(sizes.get(a, 1.0)) for a in axes]}]}],
    }]


def _colours(max_value: int) -> list[dict]:
    n = min(max_value, _MAX_COLOURS)
    return [{"label-value": k, "rgba": [*_PALETTE[(k - 1) % len(_PALETTE)], 255]} for k in range(1, n + 1)]


def _write_array(group, name: str, data: np.ndarray, dims: Sequence[str]) -> None:
    group.create_array(name, data=np.ascontiguousarray(data), chunks=_chunks(data.shape),
                       dimension_names=list(dims))


def _prepare_points(points: Mapping[str, np.ndarray] | None, source: str) -> dict[str, np.ndarray]:
    """Points tables as (N, 3) float64 (y, x, class; class 1 where only y, x are given)."""
    out: dict[str, np.ndarray] = {}
    for key, pts in (points or {}).items():
        _check_name(key, "points table", source)
        pts = np.asarray(pts, dtype=np.float64) if np.size(pts) else np.zeros((0, 3))
        if pts.ndim != 2 or pts.shape[1] not in (2, 3) or not np.isfinite(pts).all():
            raise ValueError(f"{source}: points {key!r} must be a finite (N, 2) or (N, 3) array, got {pts.shape}")
        out[key] = pts if pts.shape[1] == 3 else np.column_stack([pts, np.ones(len(pts))])
    return out


def _prepare(image: np.ndarray, labels: Mapping[str, np.ndarray],
             probabilities: Mapping[str, np.ndarray], metadata: Mapping | None,
             source: str) -> tuple[np.ndarray, dict, dict, dict]:
    """Check everything before any byte is written."""
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"{source}: image must be YX or YXC, got shape {image.shape}")
    yx = image.shape[:2]
    labs: dict[str, np.ndarray] = {}
    for key, lab in (labels or {}).items():
        _check_name(key, "label", source)
        lab = np.asarray(lab)
        if lab.shape != yx:
            raise ValueError(f"{source}: label {key!r} has shape {lab.shape} but the image is {yx}")
        if not (lab.dtype == bool or np.issubdtype(lab.dtype, np.integer)):
            raise ValueError(f"{source}: label {key!r} must be integer or bool, got {lab.dtype}")
        labs[key] = lab
    probs: dict[str, np.ndarray] = {}
    for key, prob in (probabilities or {}).items():
        _check_name(key, "probability", source)
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
        "ome": {"version": NGFF_VERSION, "multiscales": _multiscales("cyx" if yxc else "yx", name, pixel_size)},
        "lazylabels": {"version": STORE_VERSION, "image_axes": "yxc" if yxc else "yx",
                       "metadata": metadata},
    }
    root = zarr.open_group(LocalStore(root_dir), mode="w", zarr_format=3, attributes=attrs)
    _write_array(root, "0", np.moveaxis(image, -1, 0) if yxc else image, "cyx" if yxc else "yx")
    _write_labels(root, labels, pixel_size)
    _write_probabilities(root, probabilities, pixel_size)
    _write_points(root, points or {})
    _record_written(root)


def _write_labels(root, labels: dict[str, np.ndarray], pixel_size: PixelSize | None = None) -> None:
    if not labels:
        return
    group = root.create_group("labels", attributes={"ome": {"version": NGFF_VERSION,
                                                            "labels": list(labels)}})
    for key, lab in labels.items():
        is_bool = lab.dtype == bool
        data = lab.astype(np.uint8) if is_bool else lab
        top = int(data.max()) if data.size else 0
        attrs = {"ome": {"version": NGFF_VERSION, "multiscales": _multiscales("yx", key, pixel_size),
                         "image-label": {"version": NGFF_VERSION, "colors": _colours(top),
                                         "source": {"image": "../../"}}},
                 "lazylabels": {"dtype": "bool" if is_bool else str(lab.dtype)}}
        sub = group.create_group(key, attributes=attrs)
        _write_array(sub, "0", data, "yx")


def _write_probabilities(root, probabilities: dict[str, np.ndarray], pixel_size: PixelSize | None = None) -> None:
    if not probabilities:
        return
    group = root.create_group("probabilities", attributes={"lazylabels": {"probabilities": list(probabilities)}})
    for key, prob in probabilities.items():
        sub = group.create_group(key, attributes={"ome": {"version": NGFF_VERSION,
                                                          "multiscales": _multiscales("cyx", key, pixel_size)}})
        _write_array(sub, "0", prob, "cyx")


def _write_points(root, points: dict[str, np.ndarray]) -> None:
    if not points:
        return
    group = root.create_group(POINTS_GROUP, attributes={"lazylabels": {"tables": list(points),
                                                                       "columns": ["y", "x", "class"]}})
    for key, pts in points.items():
        group.create_array(key, data=np.ascontiguousarray(pts, np.float64), chunks=(max(1, len(pts)), 3),
                           dimension_names=["point", "column"])


# ----------------------------------------------------------------- integrity

def _record_written(root) -> None:
    """Record every array's shape, dtype and number of stored chunks in the store's metadata.

    Zarr reads a missing chunk as the fill value and an edited ``shape`` as
    padding or cropping; with this record :func:`_check_written` tells such a
    store from an intact one. (Chunks holding only the fill value are not
    stored at all, so the count is of the chunks actually written.)
    """
    import zarr

    record = {name: {"shape": list(arr.shape), "dtype": str(arr.dtype), "chunks": int(arr.nchunks_initialized)}
              for name, arr in sorted(root.members(max_depth=None)) if isinstance(arr, zarr.Array)}
    own = dict(root.attrs.get("lazylabels", {}) or {})
    root.attrs.update({"lazylabels": {**own, "arrays": record}})


def _check_written(root, path: Path) -> None:
    """Refuse a store this tool wrote whose arrays lost chunks or changed shape or type since.

    Raises:
        ImageReadError: naming the store and the array.
    """
    record = (root.attrs.get("lazylabels", {}) or {}).get("arrays")
    if not isinstance(record, dict):
        return                          # written by another tool or an earlier version: nothing to check
    for name, info in record.items():
        if not isinstance(info, dict):
            continue
        try:
            arr = root[name]
        except KeyError:
            raise ImageReadError(f"cannot read OME-Zarr store: array {name!r} is missing (it was written)",
                                 source=str(path)) from None
        if list(arr.shape) != list(info.get("shape", arr.shape)) or str(arr.dtype) != info.get("dtype", str(arr.dtype)):
            raise ImageReadError(f"cannot read OME-Zarr store: array {name!r} is {tuple(arr.shape)} {arr.dtype}, "
                                 f"it was written as {tuple(info.get('shape', ()))} {info.get('dtype')} "
                                 f"(its metadata was edited)", source=str(path))
        stored, written = int(arr.nchunks_initialized), int(info.get("chunks", 0))
        if stored < written:
            raise ImageReadError(f"cannot read OME-Zarr store: array {name!r} has lost {written - stored} of the "
                                 f"{written} chunks written (they would read as zeros)", source=str(path))


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux: MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


class _MemoryBudget:
    """What a store's arrays may take in memory: each read is checked against what is left (one line
    naming the array, instead of a MemoryError or a machine that swaps)."""

    def __init__(self, path: Path):
        self.path = path
        self.left = available_memory()

    def read(self, arr, name: str) -> np.ndarray:
        need = int(np.prod(arr.shape, dtype=np.float64) * np.dtype(arr.dtype).itemsize)
        if self.left is not None and need > self.left:
            shape = " x ".join(str(n) for n in arr.shape)
            raise ImageReadError(f"array {name!r} ({shape} {arr.dtype}) needs {_gib(need)} of memory, "
                                 f"{_gib(self.left)} are available", source=str(self.path))
        data = arr[...]
        if self.left is not None:
            self.left -= need
        return data


# ----------------------------------------------------------------- one store

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
    name = name or _store_name(path)
    image, labs, probs, meta = _prepare(image, labels or {}, probabilities or {}, metadata, str(path))
    pts = _prepare_points(points, str(path))
    return atomic_write_dir(path, lambda tmp: _fill_store(tmp, image, labs, probs, name, meta, pixel_size, pts),
                            overwrite=overwrite, replaceable=is_image_store, what="an OME-Zarr store")


def _group_attributes(path: Path) -> dict | None:
    """The attributes of the Zarr group at ``path`` (v3 ``zarr.json``, or v2 ``.zattrs``), None if none."""
    try:
        if (path / "zarr.json").is_file():
            meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
            return meta.get("attributes", {}) if isinstance(meta, dict) else None
        if (path / ".zattrs").is_file():
            meta = json.loads((path / ".zattrs").read_text(encoding="utf-8"))
            return meta if isinstance(meta, dict) else None
    except (OSError, ValueError, AttributeError):
        return None
    return None


def _ome(attrs: Mapping) -> dict:
    """The OME metadata of a group: under ``"ome"`` (NGFF 0.5) or at the top level (0.4)."""
    ome = attrs.get("ome")
    return ome if isinstance(ome, dict) else dict(attrs)


def is_image_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a Zarr group with OME multiscales (NGFF 0.5 or 0.4)."""
    attrs = _group_attributes(Path(path))
    return attrs is not None and bool(_ome(attrs).get("multiscales"))


def _first_dataset(group, what: str) -> tuple[Any, list[str]]:
    ms = _ome(group.attrs).get("multiscales") or []
    if not ms:
        raise ValueError(f"{what} has no OME multiscales metadata")
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in ms[0]["axes"]]
    array = group[ms[0]["datasets"][0]["path"]]
    return array, axes


def _pixel_size_of(multiscale: Mapping) -> PixelSize | None:
    """The Y/X pixel size of a multiscale's first dataset (its scale times the multiscale's own), if given."""
    axes = multiscale.get("axes") or []
    names = [a["name"] if isinstance(a, dict) else str(a) for a in axes]
    if "y" not in names or "x" not in names:
        return None
    scale = [1.0] * len(names)
    transforms = list((multiscale.get("datasets") or [{}])[0].get("coordinateTransformations") or [])
    transforms += list(multiscale.get("coordinateTransformations") or [])
    for t in transforms:
        if isinstance(t, dict) and t.get("type") == "scale" and len(t.get("scale") or []) == len(names):
            scale = [a * float(b) for a, b in zip(scale, t["scale"])]
    units = {a["name"]: a.get("unit") for a in axes if isinstance(a, dict)}
    unit = ngff_unit(units.get("y")) or ngff_unit(units.get("x"))
    if unit is None:
        return None
    sy, sx = scale[names.index("y")], scale[names.index("x")]
    return PixelSize(sy, sx, unit) if sy > 0 and sx > 0 else None


def store_problem(path: str | os.PathLike) -> str | None:
    """Why a store cannot be read as a 2D image (without reading its pixels), or None if it can.

    Looks at the NGFF version, the image's axes and the shape of its first dataset.
    """
    path = Path(path)
    attrs = _group_attributes(path)
    if attrs is None:
        return "not a Zarr group"
    ome = _ome(attrs)
    ms = ome.get("multiscales") or []
    if not ms or not isinstance(ms[0], dict):
        return "no OME multiscales metadata"
    version = str(ome.get("version") or ms[0].get("version") or "")
    if version and version not in NGFF_READ_VERSIONS:
        return f"NGFF version {version} (this napari-lazylabels reads {', '.join(NGFF_READ_VERSIONS)})"
    try:
        axes = [a["name"] if isinstance(a, dict) else str(a) for a in ms[0]["axes"]]
        dataset = str(ms[0]["datasets"][0]["path"])
    except (KeyError, IndexError, TypeError):
        return "incomplete multiscales metadata"
    shape = None
    for name in ("zarr.json", ".zarray"):
        try:
            shape = json.loads((path / dataset / name).read_text(encoding="utf-8")).get("shape")
            break
        except (OSError, ValueError, AttributeError):
            continue
    if not isinstance(shape, list) or len(shape) != len(axes):
        return f"its dataset {dataset!r} is missing or does not match the axes {axes}"
    try:
        _reduced_axes(dict(zip(axes, shape)), axes)
    except ValueError as exc:
        return str(exc)
    return None


def _reduced_axes(sizes: Mapping[str, int], axes: list[str]) -> list[str]:
    """The axes left once singleton t and z are dropped; refuses what is not YX or CYX."""
    for ax in ("t", "z"):
        if ax in sizes and int(sizes[ax]) != 1:
            raise ValueError(f"{sizes[ax]} {'time points' if ax == 't' else 'z-planes'}; "
                             f"only 2D images are supported")
    axes = [a for a in axes if a not in ("t", "z")]
    if axes[-2:] != ["y", "x"] or len(axes) > 3:
        raise ValueError(f"unsupported axes {axes}")
    return axes


def _to_yx(data: np.ndarray, axes: list[str], channel_last: bool) -> np.ndarray:
    """Reduce an NGFF (t, c, z, y, x) subset to YX / YXC."""
    if len(axes) != data.ndim:
        raise ValueError(f"axes {axes} do not match array shape {data.shape}")
    _reduced_axes(dict(zip(axes, data.shape)), axes)
    for ax in ("t", "z"):
        if ax in axes:
            i = axes.index(ax)
            data = np.take(data, 0, axis=i)
            axes = axes[:i] + axes[i + 1:]
    if len(axes) == 3 and channel_last:
        data = np.moveaxis(data, 0, -1)
    return np.ascontiguousarray(data)


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
    try:
        return _read_store(path)
    except LazyLabelsError:
        raise
    except MemoryError:
        raise ImageReadError("not enough memory to read the OME-Zarr store", source=source) from None
    except Exception as exc:
        text = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        raise ImageReadError(f"cannot read OME-Zarr store ({detail})", source=source) from None


def _read_store(path: Path) -> ImageStore:
    import zarr
    from zarr.storage import LocalStore

    root = zarr.open_group(LocalStore(path, read_only=True), mode="r")
    _check_written(root, path)
    budget = _MemoryBudget(path)
    own = root.attrs.get("lazylabels", {}) or {}
    array, axes = _first_dataset(root, "image")
    image = _to_yx(budget.read(array, "image"), axes, channel_last=True)
    ms = _ome(root.attrs)["multiscales"][0]
    name = ms.get("name") or _store_name(path)

    labels: dict[str, np.ndarray] = {}
    if "labels" in root:
        group = root["labels"]
        for key in _ome(group.attrs).get("labels", []):
            sub = group[key]
            arr, lab_axes = _first_dataset(sub, f"label {key!r}")
            data = _to_yx(budget.read(arr, f"labels/{key}"), lab_axes, channel_last=False)
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
            arr, _ = _first_dataset(group[key], f"probabilities {key!r}")
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
                      metadata=dict(own.get("metadata", {}) or {}), path=str(path), pixel_size=_pixel_size_of(ms),
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
    try:
        root = zarr.open_group(LocalStore(path, read_only=True), mode="r")
        _check_written(root, path)
        array, axes = _first_dataset(root, "image")
        ms = _ome(root.attrs)["multiscales"][0]
        dataset = str(ms["datasets"][0]["path"])
        if any(a not in "tczyx" for a in axes) or "y" not in axes or "x" not in axes:
            raise ValueError(f"unsupported axes {axes}")
        lazy = LazyArray(str(path / dataset), "zarr", array.shape, array.dtype,
                         tuple(min(n, max(c, (1024 // c) * c)) if a in "yx" else (n if a == "c" else 1)
                               for n, c, a in zip(array.shape, array.chunks, axes)))
        data = da.from_array(lazy, chunks=lazy.chunks, asarray=True,
                             name=f"store-{uuid.uuid4().hex}")
        image = from_axes(data, "".join(axes).upper(), source, _pixel_size_of(ms), "OME-Zarr metadata")
    except LazyLabelsError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        raise ImageReadError(f"cannot read OME-Zarr store ({detail})", source=source) from None
    return image


class PredictionStore:
    """An OME-Zarr store written block by block (out-of-core prediction), laid out as
    :func:`write_image_store` lays out a prediction: the image, ``labels/instances``,
    ``labels/semantic`` and ``probabilities/<task>``, with the same metadata. Its arrays are the sinks
    of :func:`napari_lazylabels.engine.blockwise.segment.segment_blockwise`; ``keys`` is scratch, deleted by
    :meth:`finish`, which also records the arrays written (the chunk check). With ``keep_image``
    false (a scratch store, from which a TIFF is written) it has no image array: ``image`` is None.
    """

    SCRATCH = "scratch"

    def __init__(self, root_dir: str | os.PathLike, *, image_shape: Sequence[int], image_dtype,
                 channels: Mapping[str, int], semantic_dtype, chunk: int, name: str,
                 metadata: Mapping[str, Any] | None = None, pixel_size: PixelSize | None = None,
                 keep_image: bool = True):
        import zarr
        from zarr.storage import LocalStore

        self.root_dir = Path(root_dir)
        self.pixel_size = pixel_size
        h, w = int(image_shape[0]), int(image_shape[1])
        self.shape = (h, w)
        yxc = len(image_shape) == 3
        meta = json.loads(json.dumps(dict(metadata or {})))
        attrs = {"ome": {"version": NGFF_VERSION,
                         "multiscales": _multiscales("cyx" if yxc else "yx", name, pixel_size)},
                 "lazylabels": {"version": STORE_VERSION, "image_axes": "yxc" if yxc else "yx", "metadata": meta}}
        root = zarr.open_group(LocalStore(self.root_dir), mode="w", zarr_format=3, attributes=attrs)
        self.root = root
        yx = (min(chunk, h), min(chunk, w))
        image_chunks = ((int(image_shape[2]),) + yx) if yxc else yx
        self.image = root.create_array("0", shape=((int(image_shape[2]),) if yxc else ()) + (h, w),
                                       dtype=np.dtype(image_dtype), chunks=image_chunks,
                                       dimension_names=list("cyx" if yxc else "yx")) if keep_image else None
        self._labels = root.create_group("labels", attributes={"ome": {"version": NGFF_VERSION,
                                                                       "labels": ["instances", "semantic"]}})
        self.semantic = self._label_array("semantic", np.dtype(semantic_dtype), yx)
        group = root.create_group("probabilities", attributes={"lazylabels": {"probabilities": list(channels)}})
        self.probabilities = {}
        for key, c in channels.items():
            _check_name(key, "probability", str(self.root_dir))
            sub = group.create_group(key, attributes={"ome": {"version": NGFF_VERSION,
                                                              "multiscales": _multiscales("cyx", key, pixel_size)}})
            self.probabilities[key] = sub.create_array("0", shape=(int(c), h, w), dtype=np.float32,
                                                       chunks=(int(c),) + yx, dimension_names=list("cyx"))
        self.keys = root.create_group(self.SCRATCH).create_array("keys", shape=(h, w), dtype=np.int64,
                                                                 chunks=yx, fill_value=0)
        self._chunks = yx
        self._instances = None

    def _label_array(self, key: str, dtype: np.dtype, chunks):
        attrs = {"ome": {"version": NGFF_VERSION, "multiscales": _multiscales("yx", key, self.pixel_size),
                         "image-label": {"version": NGFF_VERSION, "colors": [], "source": {"image": "../../"}}},
                 "lazylabels": {"dtype": str(dtype)}}
        return self._labels.create_group(key, attributes=attrs).create_array(
            "0", shape=self.shape, dtype=dtype, chunks=chunks, dimension_names=["y", "x"], fill_value=0)

    def instances(self, dtype):
        """The instance array, made once the number of objects (hence its dtype) is known."""
        self._instances = self._label_array("instances", np.dtype(dtype), self._chunks)
        return self._instances

    @property
    def instances_array(self):
        return self._instances

    @property
    def labels_dtype(self) -> np.dtype:
        return np.dtype(self._instances.dtype)

    def _max(self, array) -> int:
        h, w = self.shape
        cy, cx = self._chunks
        return max((int(np.max(array[y:y + cy, x:x + cx])) for y in range(0, h, cy) for x in range(0, w, cx)),
                   default=0)

    def finish(self, n_objects: int) -> None:
        """Label colours, the scratch deleted, the record of the arrays written."""
        import shutil
        for key, array, top in (("instances", self._instances, n_objects), ("semantic", self.semantic, None)):
            group = self._labels[key]
            ome = dict(group.attrs["ome"])
            ome["image-label"] = {**ome["image-label"], "colors": _colours(self._max(array) if top is None else top)}
            group.attrs.update({"ome": ome})
        del self.root[self.SCRATCH]
        shutil.rmtree(self.root_dir / self.SCRATCH, ignore_errors=True)
        _record_written(self.root)


# ----------------------------------------------------------------- projects

def _as_store(item: ImageStore | Mapping[str, Any]) -> ImageStore:
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


def _store_kwargs(store: ImageStore) -> dict:
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
    items = [_as_store(s) for s in stores]
    names = [_check_name(s.name, "image", str(folder)) for s in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{folder}: duplicate image names {dupes}")
    if class_names is None:
        class_names = next((s.metadata.get("class_names") for s in items
                            if s.metadata.get("class_names")), [])
    for s in items:  # refuse bad arrays before writing anything
        _prepare(s.image, s.labels, s.probabilities, s.metadata, f"{folder}/{s.name}{STORE_SUFFIX}")
        _prepare_points(s.points, f"{folder}/{s.name}{STORE_SUFFIX}")

    def fill(tmp: Path) -> None:
        for s in items:
            write_image_store(tmp / (s.name + STORE_SUFFIX), **_store_kwargs(s))
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
    try:
        info = json.loads(pfile.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ImageReadError(f"cannot read project file ({type(exc).__name__})", source=str(pfile)) from None
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
    item = _as_store(store)
    name = _check_name(item.name, "image", str(folder))
    if not folder.exists():
        write_project(folder, [item])
        return folder / (name + STORE_SUFFIX)
    info = read_project_info(folder)
    names = [e["name"] for e in info["images"]]
    target = folder / (name + STORE_SUFFIX)
    if name in names and not overwrite:
        raise OutputExistsError(f"image {name!r} is already in the project; pass --overwrite to replace it",
                                source=str(target))
    write_image_store(target, **_store_kwargs(item), overwrite=overwrite)
    if name not in names:
        info["images"].append({"name": name, "path": name + STORE_SUFFIX})
        if not info.get("class_names") and item.metadata.get("class_names"):
            info["class_names"] = list(item.metadata["class_names"])
        atomic_write_file(folder / PROJECT_FILE, lambda tmp: _write_json(tmp, info), overwrite=True)
    return target


# ----------------------------------------------------------------- annotations

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
