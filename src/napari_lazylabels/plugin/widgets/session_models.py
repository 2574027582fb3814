"""The session's model folders: each Train gets its own, named after its images and the time."""

from __future__ import annotations

import time
from pathlib import Path


def session_model_name(images: list[str], root: Path) -> str:
    """A new model's folder name: its first image (and how many more), the time, a number if taken."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in images[0])[:32].strip("_") or "model"
    stem += f"+{len(images) - 1}" if len(images) > 1 else ""
    name = f"{stem}-{time.strftime('%H%M%S')}"
    n = 1
    while (root / name).exists() or (root / f"{name}.partial").exists():
        n += 1
        name = f"{stem}-{time.strftime('%H%M%S')}-{n}"
    return name


def format_seconds(s: float) -> str:
    if not s == s or s == float("inf"):
        return "-"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
