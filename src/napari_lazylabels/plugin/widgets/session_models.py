"""The session's models: each Train gets its own folder, named after its images and the time; its
instance settings are fitted to the exact masks (or the points) unless the user set them."""

from __future__ import annotations

import time
from pathlib import Path

from ...engine.postprocess.settings import InstanceParams


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


def own_instances(instances: InstanceParams | None) -> InstanceParams | None:
    """The instance settings a run keeps as given: the form's, unless they are the defaults, in which case
    None lets the run fit them to the exact masks painted, or the points (recipes/instance_fit.py)."""
    return None if instances is None or instances == InstanceParams() else instances


def fitted_words(record: dict | None) -> str:
    """What a run's instance fit changed, in a few words ('' when it changed nothing)."""
    changed = (record or {}).get("changed") or {}
    if not changed:
        return ""
    moved = ", ".join(f"{k.replace('_', ' ')} {a} -> {b}" for k, (a, b) in changed.items())
    target = (record or {}).get("target") or "exact masks"
    return f"instance settings fitted to your {target}: {moved}"
