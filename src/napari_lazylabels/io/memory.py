"""What memory a read may take: the memory available now, and the checks that refuse a read beyond it.

Sizes are checked as the file declares them (shape x dtype), before anything is read or allocated: a
368-byte TIFF can declare 100000 x 100000 px, an OME-Zarr store 10^6 x 10^6 px in one chunk.
:func:`available_memory` is the smaller of what the system has free (``MemAvailable``) and what the
process's address-space limit (``ulimit -v``) leaves it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ImageReadError, LazyLabelsError

__all__ = ["available_memory", "array_bytes", "check_fits", "check_piece_fits", "shape_text", "MemoryBudget"]


def _system_available() -> int | None:
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


def _address_space_left() -> int | None:
    """What ``ulimit -v`` (RLIMIT_AS) leaves this process (None: no limit, or unknown)."""
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft <= 0:
            return None
        with open("/proc/self/status", encoding="ascii") as fh:
            used = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        return max(0, soft - used)
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux: MemAvailable, and within ``ulimit -v``),
    or None where unknown."""
    known = [n for n in (_system_available(), _address_space_left()) if n is not None]
    return min(known) if known else None


def array_bytes(shape: Sequence[int], dtype) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (exact, without overflow)."""
    n = 1
    for s in shape:
        n *= int(s)
    return n * np.dtype(dtype).itemsize


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def shape_text(shape: Sequence[int], dtype=None) -> str:
    return " x ".join(str(int(n)) for n in shape) + (f" {np.dtype(dtype)}" if dtype is not None else "")


def check_fits(need: int, what: str, source: str, hint: str = "", *,
               error: type[LazyLabelsError] = ImageReadError) -> None:
    """Refuse, before it is allocated, what needs ``need`` bytes when less memory is available.

    ``what`` says what needs it (``reading the image (100000 x 100000 uint8)``); ``hint`` what to do instead.

    Raises:
        ``error``: one line naming the need, what is available, and the hint.
    """
    left = available_memory()
    if left is not None and need > left:
        raise error(f"{what} needs {gib(need)} of memory, {gib(left)} are available"
                    + (f"; {hint}" if hint else ""), source=source)


def check_piece_fits(piece: Sequence[int], dtype, source: str, hint: str) -> None:
    """Refuse a file that stores its pixels in pieces (chunks, strips, tiles) of ``piece`` that do not fit
    in memory: each is read whole, block by block too, so no prediction of it is bounded."""
    yx = " x ".join(str(int(n)) for n in piece[-2:]) if len(piece) >= 2 else shape_text(piece)
    check_fits(array_bytes(piece, dtype), f"reading it (it is stored in pieces of {yx} px, each read whole)",
               source, hint)


class MemoryBudget:
    """What a store's arrays may take in memory: each read is checked against what is left (one line
    naming the array, instead of a MemoryError or a machine that swaps)."""

    def __init__(self, path: Path):
        self.path = path
        self.left = available_memory()

    def read(self, arr, name: str) -> np.ndarray:
        need = array_bytes(arr.shape, arr.dtype)
        if self.left is not None and need > self.left:
            raise ImageReadError(f"array {name!r} ({shape_text(arr.shape, arr.dtype)}) needs {gib(need)} of "
                                 f"memory, {gib(self.left)} are available", source=str(self.path))
        data = arr[...]
        if self.left is not None:
            self.left -= need
        return data
