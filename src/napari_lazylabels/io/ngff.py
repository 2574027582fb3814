"""NGFF (OME-Zarr) metadata: what a store says about itself, read and written without its pixels.

The pieces every store of this package shares: the version and the names of
a store, its ``multiscales`` (axes, units, scale: the pixel size), the colours
of its image-labels, the chunking of its arrays, and the record of the arrays
written (shape, type, chunks) that tells an intact store from one that lost
chunks or was edited. Stores of NGFF 0.4 (Zarr v2: ``.zattrs``, attributes at
the top level) are read too; :func:`store_problem` says, without reading the
pixels, why a store cannot be read as a 2D image.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..engine.annotations import PixelSize
from ..errors import ImageReadError, LazyLabelsError
from .image_file import ngff_unit
from .jsonfile import read_json

NGFF_VERSION = "0.5"
#: NGFF versions read (0.4: Zarr v2 with the attributes at the top level).
NGFF_READ_VERSIONS = ("0.4", "0.5")
STORE_SUFFIX = ".ome.zarr"
STORE_VERSION = 1
#: Largest spatial chunk edge.
CHUNK = 512

_BAD_NAME = re.compile(r"[/\\\x00-\x1f:*?\"<>|]")

_PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
            (0, 114, 178), (213, 94, 0), (204, 121, 167), (153, 153, 153)]
_MAX_COLOURS = 256


def store_name(path: Path) -> str:
    name = path.name
    for suffix in (STORE_SUFFIX, ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_name(name: str, what: str, source: str) -> str:
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


def multiscales(axes: str, name: str, pixel_size: PixelSize | None = None) -> list[dict]:
    sizes = {"y": pixel_size.y, "x": pixel_size.x} if pixel_size is not None else {}
    return [{
        "name": name,
        "axes": _axes(axes, pixel_size),
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [float(sizes.get(a, 1.0)) for a in axes]}]}],
    }]


def label_colours(max_value: int) -> list[dict]:
    n = min(max_value, _MAX_COLOURS)
    return [{"label-value": k, "rgba": [*_PALETTE[(k - 1) % len(_PALETTE)], 255]} for k in range(1, n + 1)]


def write_array(group, name: str, data: np.ndarray, dims: Sequence[str]) -> None:
    group.create_array(name, data=np.ascontiguousarray(data), chunks=_chunks(data.shape),
                       dimension_names=list(dims))


def record_written(root) -> None:
    """Record every array's shape, dtype and number of stored chunks in the store's metadata.

    Zarr reads a missing chunk as the fill value and an edited ``shape`` as
    padding or cropping; with this record :func:`check_written` tells such a
    store from an intact one. (Chunks holding only the fill value are not
    stored at all, so the count is of the chunks actually written.)
    """
    import zarr

    record = {name: {"shape": list(arr.shape), "dtype": str(arr.dtype), "chunks": int(arr.nchunks_initialized)}
              for name, arr in sorted(root.members(max_depth=None)) if isinstance(arr, zarr.Array)}
    own = dict(root.attrs.get("lazylabels", {}) or {})
    root.attrs.update({"lazylabels": {**own, "arrays": record}})


def check_written(root, path: Path) -> None:
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


def group_attributes(path: Path) -> dict | None:
    """The attributes of the Zarr group at ``path`` (v3 ``zarr.json``, or v2 ``.zattrs``), None if none."""
    try:
        if (path / "zarr.json").is_file():
            meta = read_json(path / "zarr.json")
            return meta.get("attributes", {}) if isinstance(meta, dict) else None
        if (path / ".zattrs").is_file():
            meta = read_json(path / ".zattrs")
            return meta if isinstance(meta, dict) else None
    except (LazyLabelsError, AttributeError):
        return None
    return None


def ome_attributes(attrs: Mapping) -> dict:
    """The OME metadata of a group: under ``"ome"`` (NGFF 0.5) or at the top level (0.4)."""
    ome = attrs.get("ome")
    return ome if isinstance(ome, dict) else dict(attrs)


def is_image_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a Zarr group with OME multiscales (NGFF 0.5 or 0.4)."""
    attrs = group_attributes(Path(path))
    return attrs is not None and bool(ome_attributes(attrs).get("multiscales"))


def first_dataset(group, what: str) -> tuple[Any, list[str]]:
    ms = ome_attributes(group.attrs).get("multiscales") or []
    if not ms:
        raise ValueError(f"{what} has no OME multiscales metadata")
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in ms[0]["axes"]]
    array = group[ms[0]["datasets"][0]["path"]]
    return array, axes


def pixel_size_of(multiscale: Mapping) -> PixelSize | None:
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
    attrs = group_attributes(path)
    if attrs is None:
        return "not a Zarr group"
    ome = ome_attributes(attrs)
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
            shape = read_json(path / dataset / name).get("shape")
            break
        except (LazyLabelsError, AttributeError):
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


def to_yx(data: np.ndarray, axes: list[str], channel_last: bool) -> np.ndarray:
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
