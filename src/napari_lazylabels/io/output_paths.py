"""Where ``lazylabels predict`` writes: each image's output, decided and checked before any work.

One output (``--out``, :func:`single_output`) or one per image in a folder
(``--outdir`` with an ``--outname`` template, :func:`plan_outputs`; two images
that would write the same file are refused). Each output is checked before
any image is read (:func:`check_output`): its suffix (``.tif``/``.tiff``:
instance labels; ``.zarr``: an OME-Zarr store), that it is none of the
images (nor a link to one), that it does not exist (unless ``overwrite``),
that ``overwrite`` would replace only what this tool writes
(:func:`~.own_outputs.check_replaceable_output`), and that its folder can be written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import LazyLabelsError, SettingsError
from .atomic import check_can_write, check_writable
from .inputs import image_stem
from .own_outputs import Inputs, check_not_input, check_replaceable_output

__all__ = ["OUTPUT_SUFFIXES", "DEFAULT_OUTNAME", "check_outname", "output_for", "is_tiff", "check_output",
           "check_replaceable_output", "single_output", "plan_outputs"]

#: What an output may be: instance labels (TIFF) or an OME-Zarr store.
OUTPUT_SUFFIXES = (".tif", ".tiff", ".zarr")
#: The default ``--outname``.
DEFAULT_OUTNAME = "{stem}_labels.tif"


def is_tiff(out: Path) -> bool:
    """Whether ``out`` names a TIFF output (``.tif``/``.tiff``) rather than an OME-Zarr store."""
    return out.name.lower().endswith((".tif", ".tiff"))


def check_outname(template: str) -> str:
    """Refuse a ``--outname`` that is not a file name ending in .tif, .tiff or .zarr, or names nothing
    of the image (``{stem}`` or ``{name}``)."""
    try:
        example = template.format(stem="a", name="a.tif")
    except (KeyError, IndexError, ValueError) as exc:
        raise SettingsError(f"--outname {template!r}: only {{stem}} and {{name}} can be filled in ({exc})") from None
    if "/" in template or "\\" in template or not example.lower().endswith(OUTPUT_SUFFIXES):
        raise SettingsError(f"--outname {template!r} must be a file name ending in .tif, .tiff or .zarr, "
                            f"e.g. {DEFAULT_OUTNAME}")
    if template.format(stem="a", name="a.tif") == template.format(stem="b", name="b.tif"):
        raise SettingsError(f"--outname {template!r} must hold {{stem}} or {{name}}: every image would "
                            f"write the same file")
    return template


def output_for(image: str | os.PathLike, outdir: str | os.PathLike, template: str = DEFAULT_OUTNAME) -> Path:
    """The output of ``image`` in ``outdir``: ``template`` with ``{stem}`` and ``{name}`` filled in."""
    return Path(outdir) / check_outname(template).format(stem=image_stem(image), name=Path(image).name)


def check_output(out: Path, overwrite: bool, inputs: Inputs | Sequence[Path] = ()) -> Path:
    """Refuse, before any work, an output with another suffix, one of the ``inputs`` (or a link to one),
    one that exists (without ``overwrite``), one that is not this tool's output, or one whose folder
    cannot be written (see :mod:`.own_outputs`)."""
    if not out.name.lower().endswith(OUTPUT_SUFFIXES):
        raise LazyLabelsError("the output must end in .tif, .tiff or .zarr", source=str(out))
    check_not_input(out, inputs)
    check_writable(out, overwrite)
    check_replaceable_output(out)
    check_can_write(out)
    return out


def single_output(images: Sequence[Path], out: Path, overwrite: bool = False) -> list[tuple[Path, Path]]:
    """The one (image, output) pair of ``--out``, checked (:func:`check_output`).

    Raises:
        SettingsError: not exactly one image.
        LazyLabelsError: as :func:`check_output`.
    """
    if len(images) != 1:
        raise SettingsError(f"--out names the output of one image, and {len(images)} are given; "
                            f"give --outdir DIR for several")
    return [(images[0], check_output(Path(out), overwrite, images))]


def plan_outputs(images: Sequence[Path], outdir: Path, template: str, *, overwrite: bool = False,
                 skip_existing: bool = False) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Each image's output in ``outdir`` (see :func:`~napari_lazylabels.io.inputs.output_for`), checked before
    any work; outputs that exist are left out with ``skip_existing`` (and returned as skipped).

    Raises:
        LazyLabelsError: two images with the same output, an output that exists (without
            ``overwrite`` or ``skip_existing``) or cannot be written.
    """
    pairs, skipped, seen = [], [], {}
    inputs = Inputs(images)
    for image in images:
        out = output_for(image, outdir, template)
        key = os.path.normcase(os.path.abspath(out))
        if key in seen:
            raise SettingsError(f"{seen[key]} and {image} would both be written to {out}; give --outname "
                                f"another pattern (e.g. '{{name}}_labels.tif')")
        seen[key] = image
        if skip_existing and (out.exists() or out.is_symlink()):
            check_not_input(out, inputs)
            skipped.append(out)
            continue
        check_output(out, overwrite, inputs)
        pairs.append((image, out))
    return pairs, skipped
