"""Whether an output path is one of this tool's outputs, and not one of its inputs: what ``--overwrite`` may
replace.

Every writer of a prediction asks here before it writes (and again before it swaps a folder in):

* :func:`check_not_input`: an output is never one of the images it is made from: not the same path, not
  the same file through a link (symbolic or hard: the same inode), not a folder holding an input (a
  project around its store), not inside an input (a store);
* :func:`check_replaceable_output`: with ``--overwrite``, an existing output is replaced only when this
  tool recognisably wrote it: a label TIFF (:func:`is_own_tiff`: our marker in its Software tag, or a
  label image as earlier versions wrote it) or a prediction store or project (:func:`is_prediction_store`,
  :func:`is_prediction_project`) that holds no painted labels. Anything else (a CSV named ``man.tif``, a
  microscope image, another tool's OME-Zarr, a store with painted lazy labels) is left alone, in one line.

A model folder is :func:`foreign_model_entries`'s business: what in it this tool did not write (a model
folder holding the user's own files is refused by ``--overwrite``, not emptied).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import OutputExistsError
from .label_tiff import SOFTWARE
from .ngff import STORE_SUFFIX, group_attributes, is_image_store, ome_attributes
from .project import PROJECT_FILE, is_project

__all__ = ["SOFTWARE", "PREDICTION_LABELS", "Inputs", "check_not_input", "check_replaceable_output", "is_own_tiff",
           "is_prediction_store", "is_prediction_project", "painted_layers", "foreign_model_entries", "readable_list"]

#: The label layers of a prediction store; any other layer was painted (lazy labels, a region of interest).
PREDICTION_LABELS = ("instances", "semantic")
#: What a model folder holds that this tool wrote (besides a regime's FOLDER/FILE.npz|.json artifacts).
MODEL_FILES = ("config.json", "model.safetensors", "training_state.pt")


def _is_tiff(path: Path) -> bool:
    return path.name.lower().endswith((".tif", ".tiff"))


def _key(path: Path) -> Path:
    return Path(os.path.normcase(os.path.abspath(path))).resolve()


class Inputs:
    """The images of a batch, indexed once (paths with links resolved, inodes, the folders above them), so
    that each output is checked against all of them at the cost of a few look-ups."""

    def __init__(self, images: Iterable[str | os.PathLike]):
        self.by_key: dict[Path, Path] = {}
        self.by_inode: dict[tuple[int, int], Path] = {}
        self.around: dict[Path, Path] = {}           # a folder above an input -> that input
        for image in map(Path, images):
            key = _key(image)
            self.by_key.setdefault(key, image)
            try:
                info = os.stat(image)
                self.by_inode.setdefault((info.st_dev, info.st_ino), image)
            except (OSError, ValueError):
                pass
            for parent in key.parents:
                self.around.setdefault(parent, image)

    def why_not(self, out: Path) -> str:
        """Why ``out`` may not be written ("" when it may)."""
        target = _key(out)
        try:
            info = os.stat(out)
            image = self.by_inode.get((info.st_dev, info.st_ino))
        except (OSError, ValueError):
            image = None
        image = image or self.by_key.get(target)
        if image is not None:
            if os.path.abspath(out) == os.path.abspath(image):
                return "is the image it is predicted from"
            return f"is the image {image} (the same file through a link)"
        if target in self.around:
            return f"holds the image {self.around[target]}"
        inside = next((self.by_key[p] for p in target.parents if p in self.by_key), None)
        return f"lies inside the image {inside}" if inside is not None else ""


def check_not_input(out: str | os.PathLike, inputs: "Inputs | Iterable[str | os.PathLike]") -> None:
    """Refuse an output that is one of ``inputs`` (the same path, or the same file through a symbolic or hard
    link), holds one (a folder around it) or lies inside one. ``inputs``: the images, or :class:`Inputs` of
    them (for many outputs).

    Raises:
        OutputExistsError: naming the input; nothing has been written.
    """
    inputs = inputs if isinstance(inputs, Inputs) else Inputs(inputs)
    why = inputs.why_not(Path(out))
    if why:
        raise OutputExistsError(f"{why}; predict never writes over its input: give another output",
                                source=str(out))


def is_own_tiff(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a label TIFF this tool wrote: our Software tag, or (earlier versions, no tag) one
    channel of unsigned integers, zlib-compressed by tifffile. Only the first page's tags are read."""
    import tifffile

    from .tiff_metadata import _quiet_tifffile
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            software = str(page.software or "")
            if software == SOFTWARE:
                return True
            return (software.startswith("tifffile") and page.dtype is not None and page.dtype.kind == "u"
                    and page.samplesperpixel == 1 and int(page.compression) == 8)
    except Exception:  # not a TIFF (a CSV named man.tif), a broken one: not ours
        return False


def painted_layers(store: str | os.PathLike) -> list[str]:
    """The label layers of an OME-Zarr store that a prediction does not write (painted lazy labels, a region
    of interest), and ``points`` when it holds point tables."""
    store = Path(store)
    attrs = group_attributes(store / "labels") or {}
    layers = ome_attributes(attrs).get("labels") or []
    painted = [str(n) for n in layers if str(n) not in PREDICTION_LABELS]
    extra = [p.name for p in (store / "labels").glob("*") if p.is_dir() and p.name not in PREDICTION_LABELS
             and p.name not in painted] if (store / "labels").is_dir() else []
    return painted + extra + (["points"] if (store / "points").exists() else [])


def is_prediction_store(store: str | os.PathLike) -> bool:
    """Whether ``store`` is an OME-Zarr store a prediction of this tool wrote (its metadata names the model)
    and holds nothing painted."""
    store = Path(store)
    if not (store.is_dir() and is_image_store(store)):
        return False
    own = (group_attributes(store) or {}).get("lazylabels")
    meta = own.get("metadata") if isinstance(own, dict) else None
    return isinstance(meta, dict) and "model" in meta and not painted_layers(store)


def is_prediction_project(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a project of prediction stores (a stack's prediction) and nothing else."""
    folder = Path(folder)
    if not is_project(folder):
        return False
    entries = [p for p in folder.iterdir() if p.name != PROJECT_FILE]
    return all(p.name.endswith(STORE_SUFFIX) and is_prediction_store(p) for p in entries)


def _store_problem(out: Path) -> str:
    """Why an existing ``.zarr`` output may not be replaced ("" when it may)."""
    if not out.is_dir():
        return "is not an OME-Zarr store"
    if not any(out.iterdir()) or is_prediction_store(out) or is_prediction_project(out):
        return ""
    stores = [out] if is_image_store(out) else sorted(out.glob(f"*{STORE_SUFFIX}")) if is_project(out) else []
    painted = sorted({layer for s in stores for layer in painted_layers(s)})
    if painted:
        return (f"holds painted labels ({', '.join(painted)}); predict never replaces them: write the "
                f"prediction beside it (e.g. --out {out.name.split('.')[0]}_prediction{STORE_SUFFIX})")
    if is_project(out):
        return "is a project that holds more than predictions"
    return "is not an OME-Zarr store this tool's prediction wrote"


def check_replaceable_output(out: str | os.PathLike) -> None:
    """Refuse an existing output that ``--overwrite`` may not replace (see the module docstring); a missing
    one passes.

    Raises:
        OutputExistsError: one line saying what the path is and that it is left alone.
    """
    out = Path(out)
    if not (out.exists() or out.is_symlink()):
        return
    if _is_tiff(out):
        if out.is_dir():
            raise OutputExistsError("is a folder; refusing to replace it with a file", source=str(out))
        if not is_own_tiff(out):
            raise OutputExistsError("is not a label TIFF this tool wrote; --overwrite only replaces those, so it "
                                    "is left alone (give another output, or move it away yourself)",
                                    source=str(out))
        return
    problem = _store_problem(out)
    if problem:
        raise OutputExistsError(f"{problem}; --overwrite only replaces a prediction this tool wrote, so it is "
                                f"left alone", source=str(out))


def foreign_model_entries(folder: str | os.PathLike) -> list[str]:
    """What a model folder holds that this tool did not write (sorted relative paths): anything besides
    config.json, model.safetensors, training_state.pt and a regime's FOLDER/FILE.npz|.json artifacts."""
    folder = Path(folder)
    foreign: list[str] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return foreign
    for entry in entries:
        if entry.name in MODEL_FILES:        # ours by name (one that is no regular file is refused when read)
            continue
        if entry.is_dir() and not entry.is_symlink():
            inner = sorted(entry.iterdir())
            foreign += [f"{entry.name}/{p.name}" for p in inner
                        if not (p.is_file() and not p.is_symlink() and p.suffix in (".npz", ".json"))]
            if inner:
                continue
        foreign.append(entry.name)
    return foreign


def readable_list(names: Sequence[str], most: int = 3) -> str:
    """``a, b, c and 2 more``."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
