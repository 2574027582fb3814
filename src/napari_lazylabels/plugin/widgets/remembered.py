"""The user's settings, remembered across sessions (Qt settings, as stardist-napari does).

A form's values are stored under one key as JSON when they change and put back
when the form is made again. Where they are stored: the ``LAZYLABELS_SETTINGS``
environment variable names an .ini file (the tests use one per test), else
Qt's place for the user's settings of "napari-lazylabels".
A stored value that no longer fits a field (a removed choice, a bad number) is
skipped: the field keeps its default.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

from qtpy.QtCore import QSettings

ENV = "LAZYLABELS_SETTINGS"


def store() -> QSettings:
    path = os.environ.get(ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("napari-lazylabels", "napari-lazylabels")


def load(key: str) -> dict[str, Any]:
    raw = store().value(key, "")
    try:
        values = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def save(key: str, values: Mapping[str, Any]) -> None:
    s = store()
    s.setValue(key, json.dumps(dict(values)))
    s.sync()


def remember(key: str, widgets: Mapping[str, Any]) -> None:
    """Put back the stored values of ``widgets`` (magicgui value widgets by name) and store them on change."""
    for name, value in load(key).items():
        widget = widgets.get(name)
        if widget is None:
            continue
        try:
            widget.value = value
        except (ValueError, TypeError):
            pass

    def changed(*_args) -> None:
        save(key, {name: w.value for name, w in widgets.items()})
    for widget in widgets.values():
        widget.changed.connect(changed)
