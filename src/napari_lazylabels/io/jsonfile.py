"""JSON this package reads (model configs, project files, OME-Zarr metadata, lock files), with limits.

A ``config.json`` is a few kB. One that is gigabytes, nests thousands of
levels deep (Python's parser then raises ``RecursionError``) or holds an
integer of a million digits (whose conversion is slow, and which no size
field can be) is refused with one line instead:

* at most :data:`MAX_JSON_BYTES` bytes (read no further than that, see :func:`.files.read_bytes`);
* at most :data:`MAX_JSON_DEPTH` levels of lists and objects;
* integers of at most :data:`MAX_INT_DIGITS` digits (64-bit).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ImageReadError, LazyLabelsError
from .files import named, read_bytes

__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "MAX_INT_DIGITS", "parse_json", "read_json", "reason"]

MAX_JSON_BYTES = 4 << 20
MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 19


class _Refused(ValueError):
    """JSON that is valid but beyond the limits (its message says which)."""


def _int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"it holds an integer of {digits} digits, more than {MAX_INT_DIGITS}")
    return int(text)


def _depth(value: Any) -> int:
    """How many levels of lists and objects ``value`` nests (iteratively: no recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, level = todo.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            break
        todo.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_json(data: bytes | str) -> Any:
    """``json.loads`` within the limits (but any size: see :func:`read_json`).

    Raises:
        ValueError: not JSON (``json.JSONDecodeError``, ``UnicodeDecodeError``), or beyond a limit
            (nesting, integer digits), with a one-line message.
    """
    try:
        value = json.loads(data, parse_int=_int)
    except RecursionError:
        raise _Refused(f"it nests lists or objects more than {MAX_JSON_DEPTH} levels deep") from None
    marks = (b"[", b"{") if isinstance(data, bytes) else ("[", "{")
    if sum(data.count(m) for m in marks) > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise _Refused(f"it nests lists or objects more than {MAX_JSON_DEPTH} levels deep")
    return value


def reason(exc: ValueError) -> str:
    """What :func:`parse_json` found wrong, in words (a decoder error by its class name)."""
    return str(exc) if isinstance(exc, _Refused) else type(exc).__name__


def read_json(path: str | os.PathLike, what: str = "a JSON file", *, error: type[LazyLabelsError] = ImageReadError,
              source: str | None = None, missing: str = "file not found", limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in the regular file ``path`` (see :func:`.files.read_bytes` for ``what``,
    ``source``, ``missing``), within the limits of :func:`parse_json` and ``limit`` bytes.

    Raises:
        ``error``: the file is missing, not a regular file, too large, not JSON or beyond a limit.
    """
    data = read_bytes(path, limit, what, error=error, source=source, missing=missing)
    try:
        return parse_json(data)
    except ValueError as exc:
        src, subject = named(Path(path), source)
        raise error(f"{subject}is not valid JSON ({reason(exc)})", source=src) from None
