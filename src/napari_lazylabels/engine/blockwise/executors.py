"""Running a pass's block tasks: the executors, and the freed memory handed back before each task."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

#: ``progress(what, done, total)``: the tasks done of the pass ``what``.
Progress = Callable[[str, int, int], None]

_LIBC: list = []


def trim_freed_memory() -> bool:
    """Give the pages of freed memory back to the system (glibc's ``malloc_trim`` over every arena;
    without it the arenas of torch's and zarr's threads keep a fragmented copy of every block's
    arrays). Called at the start of each block's task; a no-op (False) off glibc."""
    if not _LIBC:
        trim = None
        if sys.platform.startswith("linux"):
            try:
                trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
                trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
            except (OSError, AttributeError):
                trim = None
        _LIBC.append(trim)
    if _LIBC[0] is None:
        return False
    _LIBC[0](0)
    return True


class Executor(Protocol):
    """Runs a list of dask tasks and returns their results in order (``what`` names the pass)."""

    def __call__(self, tasks: Sequence[Any], what: str) -> list: ...


@dataclass
class LocalExecutor:
    """The in-process dask scheduler (``synchronous``: one block at a time, the least memory; or
    ``threads``), with a progress callback ``progress(what, done, total)``."""

    scheduler: str = "synchronous"
    workers: int | None = None
    progress: Progress | None = None

    def __call__(self, tasks, what):
        import dask
        if not tasks:
            return []
        if self.progress is None:
            return list(dask.compute(*tasks, scheduler=self.scheduler, num_workers=self.workers))
        from dask.callbacks import Callback
        keys = {t.key for t in tasks}
        done = [0]
        report = self.progress

        class _Tick(Callback):
            def _posttask(self, key, result, dsk, state, id):
                if key in keys:
                    done[0] += 1
                    report(what, done[0], len(keys))

        report(what, 0, len(keys))
        with _Tick():
            return list(dask.compute(*tasks, scheduler=self.scheduler, num_workers=self.workers))
