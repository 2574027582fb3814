"""What memory a read may take: the memory available now, and a budget that refuses a read beyond it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ImageReadError


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


class MemoryBudget:
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
