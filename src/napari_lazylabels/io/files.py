"""Reading the files a user names: regular files only, and no more bytes than they may hold.

A FIFO named ``a.tif`` blocks the first ``open`` forever, ``/dev/zero`` never
ends, and a folder is not a file: :func:`regular_file` looks at a path with
``stat`` (following links) before anything opens it, and refuses all of these
in one line. Every reader of the package calls it first: images, manifests,
points files, model configs, weights, training states, a regime's files.

:func:`read_bytes` reads a small file whole (a config, a lock file), but
refuses one whose ``stat`` says it is larger than its limit, and never reads
more than the limit. :func:`check_zip_members` refuses a zip file (a
bioimage.io package, a PyTorch checkpoint) whose members declare more bytes
than allowed, before any is extracted: a 2.5 MB zip can declare 2 GiB.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path
from typing import Iterable

from ..errors import ImageReadError, LazyLabelsError
from .atomic import size_text

__all__ = ["regular_file", "read_bytes", "check_zip_members", "file_kind", "named"]

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a ``stat`` mode is, in words (``a folder``, ``a FIFO (named pipe)``, ...)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def named(path: Path, source: str | None) -> tuple[str, str]:
    """The error's source and the subject of its message: the path itself, or ``source`` (e.g. a model
    folder) with the file's name leading the message."""
    return (str(path), "") if source is None else (source, f"{path.name} ")


def regular_file(path: str | os.PathLike, what: str = "a file", *, error: type[LazyLabelsError] = ImageReadError,
                 source: str | None = None, missing: str = "file not found") -> os.stat_result:
    """The ``stat`` of ``path`` (links followed), which must be a regular file; nothing is opened.

    ``what`` names what the file should be (``an image file``); ``source`` is what the error names
    (default: the path; else the path's name leads the message); ``missing`` is the message for a
    path that does not exist.

    Raises:
        ``error``: missing, not readable, or a folder, FIFO, device or socket.
    """
    path = Path(path)
    src, subject = named(path, source)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{subject}{missing}", source=src) from None
    except (OSError, ValueError) as exc:
        raise error(f"{subject}cannot be read ({getattr(exc, 'strerror', None) or exc})", source=src) from None
    if not stat.S_ISREG(info.st_mode):
        kind = file_kind(info.st_mode)
        tail = "" if stat.S_ISDIR(info.st_mode) else " (only regular files are read)"
        raise error(f"{subject}is {kind}, not {what}{tail}", source=src)
    return info


def read_bytes(path: str | os.PathLike, limit: int, what: str = "a file", *,
               error: type[LazyLabelsError] = ImageReadError, source: str | None = None,
               missing: str = "file not found") -> bytes:
    """The content of the regular file ``path``, refused when it holds more than ``limit`` bytes
    (by its ``stat``, before reading; and it is never read beyond ``limit``).

    Raises:
        ``error``: see :func:`regular_file`; too large; a read error.
    """
    path = Path(path)
    src, subject = named(path, source)
    size = regular_file(path, what, error=error, source=source, missing=missing).st_size
    too_large = error(f"{subject}is larger than the {size_text(limit)} {what} may have"
                      + (f" ({size_text(size)})" if size > limit else ""), source=src)
    if size > limit:
        raise too_large
    try:
        # O_NONBLOCK: should the path have become a FIFO since the stat, opening it does not wait
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise error(f"{subject}is not {what} (only regular files are read)", source=src)
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{subject}cannot be read ({exc.strerror or exc})", source=src) from None
    if len(data) > limit:
        raise too_large
    return data


def check_zip_members(archive: zipfile.ZipFile, limit: int, what: str, *, names: Iterable[str] | None = None,
                      error: type[LazyLabelsError] = ImageReadError, source: str = "") -> int:
    """Refuse a zip whose members (``names``, default all) declare more than ``limit`` bytes
    uncompressed, together; their declared total is returned. Nothing is extracted: the sizes are
    those of the zip's directory, which zipfile also holds a member's reading to.

    Raises:
        ``error``: naming ``what`` (e.g. ``the package's weights.pt``), its declared size and the limit.
    """
    infos = archive.infolist() if names is None else [archive.getinfo(n) for n in names]
    total = sum(max(0, int(i.file_size)) for i in infos)
    if total > limit:
        raise error(f"{what} declares {size_text(total)} uncompressed, more than the {size_text(limit)} it "
                    f"may have", source=source)
    return total
