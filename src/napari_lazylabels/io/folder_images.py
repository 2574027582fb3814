"""The images of a folder to predict on, without the label files that lie beside them.

A folder a person predicts on often holds labels too: the results of an
earlier run written into the same folder (``a_labels.tif`` beside ``a.tif``),
prediction stores, and the label files a manifest in the folder names (its
blobs, masks... columns). :func:`images_to_predict` leaves those out and says
which it left out; everything else :func:`~.inputs.expand_inputs` finds is an
image. A label TIFF is recognised by the Software tag this tool writes (a
user's own uint16 image saved by tifffile is not mistaken for one), or by
being the output another image of the folder would get.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .inputs import expand_inputs
from .label_tiff import SOFTWARE
from .manifest import label_files
from .output_paths import output_for
from .own_outputs import is_prediction_store

__all__ = ["FolderImages", "images_to_predict"]


@dataclass
class FolderImages:
    """The images to predict on, and the label files left out (with why)."""

    images: list[Path] = field(default_factory=list)
    left_out: dict[Path, str] = field(default_factory=dict)


def _key(path: Path) -> str:
    return os.path.normcase(os.path.abspath(path))


def _tagged_tiff(path: Path) -> bool:
    """A TIFF whose Software tag is this tool's (only the first page's tags are read)."""
    if path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
        return False
    import tifffile

    from .tiff_metadata import _quiet_tifffile
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            return str(tif.pages.first.software or "") == SOFTWARE
    except Exception:  # not a TIFF, a broken one: an image to try (and fail on) like any other
        return False


def images_to_predict(folder: str | os.PathLike, templates: Sequence[str] = ("{stem}_labels.tif",
                                                                          "{stem}_labels.zarr")) -> FolderImages:
    """The images of ``folder`` (see :func:`~.inputs.expand_inputs`), without: the label files a manifest
    (``*.csv``) in it names, the outputs (``templates``) of its other images, label TIFFs and prediction
    stores this tool wrote.

    Raises:
        ImageReadError: the folder holds no image at all.
    """
    folder = Path(folder)
    found = expand_inputs([folder])
    named = {_key(p): m.name for m in sorted(folder.glob("*.csv")) for p in label_files(m)}
    outputs = {_key(output_for(image, folder, t)): image.name for image in found for t in templates}
    out = FolderImages()
    for path in found:
        key = _key(path)
        if key in named:
            out.left_out[path] = f"a label file of {named[key]}"
        elif key in outputs:
            out.left_out[path] = f"the result of {outputs[key]}"
        elif _tagged_tiff(path):
            out.left_out[path] = "a label image this tool wrote"
        elif path.is_dir() and is_prediction_store(path):
            out.left_out[path] = "a prediction this tool wrote"
        else:
            out.images.append(path)
    return out
