"""A write that fails inside a serialising library, as the ``OSError`` it is.

A disk that fills while a model is written does not raise ``OSError`` from
every library: safetensors raises its own ``SafetensorError`` (``Error while
serializing: I/O error: No space left on device (os error 28)``), and
``torch.save`` a ``RuntimeError`` (``[enforce fail at inline_container.cc:672]
. unexpected pos 576 vs 534``, or ``file write failed``) that names no cause.
:func:`serialiser_errors` turns those into ``OSError`` (``ENOSPC`` when the
folder has no room left), which the writers' callers already report in one
line; any other error passes unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path
from typing import Iterator

from .atomic import SPARE_BYTES, free_bytes

__all__ = ["serialiser_errors", "as_os_error"]

# torch's zip writer, when a write came up short
_TORCH_WRITE = ("unexpected pos", "file write failed", "PytorchStreamWriter failed writing")
_OS_ERROR = re.compile(r"os error (\d+)")


def as_os_error(exc: BaseException, folder: str | os.PathLike) -> OSError | None:
    """The ``OSError`` behind a serialiser's exception, or None when it is not a failed write.

    ``folder`` is where the write went: a torch write that came up short is ``ENOSPC`` when it has
    less than a spare MiB free, else ``EIO`` with torch's words.
    """
    if isinstance(exc, OSError):
        return exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if type(exc).__name__ == "SafetensorError":
        code = _OS_ERROR.search(text)
        if code is not None:
            return OSError(int(code.group(1)), os.strerror(int(code.group(1))))
        if "I/O error" in text:
            return OSError(errno.EIO, text)
        return None
    if isinstance(exc, RuntimeError) and any(mark in text for mark in _TORCH_WRITE):
        free = free_bytes(folder)
        if free is not None and free < SPARE_BYTES:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return OSError(errno.EIO, f"write failed ({text.split('] ')[-1].strip(' .')})")
    return None


@contextlib.contextmanager
def serialiser_errors(folder: str | os.PathLike) -> Iterator[None]:
    """Re-raise a serialiser's failed write into ``folder`` as its ``OSError`` (see :func:`as_os_error`)."""
    try:
        yield
    except Exception as exc:
        error = as_os_error(exc, Path(folder))
        if error is None or error is exc:
            raise
        raise error from exc
