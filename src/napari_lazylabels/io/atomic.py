"""Write files and folders so that a crash never leaves half an output behind.

Every output of the engine (label TIFFs, manifests, OME-Zarr stores, projects,
model folders) goes through these helpers:

* the target is refused up front, before any work, when it exists and
  ``overwrite`` is false (:func:`check_writable`);
* the content is written to a hidden temporary sibling of the target (same
  folder, hence same file system) and renamed into place only once complete;
* on any exception the temporary is removed and an existing target is left
  exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from ..errors import OutputExistsError

__all__ = ["check_writable", "atomic_write_file", "atomic_write_dir"]


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse an existing ``path`` unless ``overwrite``; return it as a Path.

    Raises:
        OutputExistsError: ``path`` exists (file, folder or link) and
            ``overwrite`` is false.
    """
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputExistsError("output exists; pass --overwrite to replace it", source=str(path))
    return path


def _fsync_path(path: Path, directory: bool = False) -> None:
    """Flush ``path`` to disk; silently skipped where the OS does not allow it."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for f in filenames:
            _fsync_path(Path(dirpath) / f)
        _fsync_path(Path(dirpath), directory=True)


def _remove(path: Path) -> None:
    """Remove a file, link or folder if it exists; ignore errors (best effort clean-up)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError:
        pass


def atomic_write_file(path: str | os.PathLike, write_fn: Callable[[Path], object],
                      overwrite: bool = False) -> Path:
    """Write one file atomically.

    ``write_fn(tmp_path)`` writes the whole content to ``tmp_path``, a hidden
    file in the target's folder that ends with the target's suffix (so writers
    that pick the format by extension, like ``cv2.imwrite``, work). The file
    is then flushed to disk and renamed onto ``path`` with :func:`os.replace`.
    Missing parent folders are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (checked
            before ``write_fn`` is called), or ``path`` is a folder.
    """
    path = check_writable(path, overwrite)
    if path.is_dir() and not path.is_symlink():
        raise OutputExistsError("is a folder; refusing to replace it with a file", source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write_fn(tmp)
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_path(path.parent, directory=True)
    return path


def atomic_write_dir(path: str | os.PathLike, write_fn: Callable[[Path], object],
                     overwrite: bool = False) -> Path:
    """Write one folder atomically.

    ``write_fn(tmp_dir)`` fills ``tmp_dir``, an empty hidden folder next to
    ``path``. When it returns, the folder is flushed to disk and renamed to
    ``path``. With ``overwrite``, an existing ``path`` is first renamed aside
    and deleted only once the new folder is in place (if that rename fails the
    old one is put back). Missing parent folders are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (checked
            before ``write_fn`` is called).
    """
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        write_fn(tmp)
        _fsync_tree(tmp)
        aside = None
        if path.exists() or path.is_symlink():
            check_writable(path, overwrite)  # it may have appeared meanwhile
            aside = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(path, aside)
        try:
            os.rename(tmp, path)
        except BaseException:
            if aside is not None:
                os.rename(aside, path)
            raise
    except BaseException:
        _remove(tmp)
        raise
    _fsync_path(path.parent, directory=True)
    if aside is not None:
        _remove(aside)
    return path
