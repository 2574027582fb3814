"""The colour legend of the painted kinds: a swatch per kind (and per named value), in the annotation dock.

Each kind of lazy label paints in its own colours (:meth:`LabelInput.colours`):
the legend shows, for the chosen image's classes, the colour of each kind's
first class and of its named values (e.g. the background strokes), so a
person can tell the layers apart on the image. The kind buttons carry the
same swatch as their icon.
"""

from __future__ import annotations

from html import escape
from typing import Sequence

from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

from ..layer_names import input_spec

RGB = tuple[int, int, int]


def _hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def legend_entries(key: str, class_names: Sequence[str]) -> list[tuple[str, RGB]]:
    """(words, colour) of the values of an input worth telling apart: its first class under its own name, then
    its other named values (fixed names and extra values such as "background")."""
    spec = input_spec(key)
    colours = spec.colours(len(class_names))
    names = spec.names_of_values(class_names)
    kind = spec.title.lower()
    out = [(kind, colours[1])]
    n_first = len(class_names) if spec.class_values else 1
    for value in range(n_first + 1, len(names) + 1):
        out.append((f"{kind.split()[0]} {names[value - 1]}", colours[value]))
    return out


def _entry_html(words: str, rgb: RGB) -> str:
    return f"<span style='color:{_hex(rgb)}'>&#9632;</span>&nbsp;{escape(words)}"


def legend_html(keys: Sequence[str], class_names: Sequence[str]) -> str:
    """Rich text: a coloured square and the words of each entry of each input."""
    return " &nbsp; ".join(_entry_html(words, rgb) for key in keys for words, rgb in legend_entries(key, class_names))


class KindsLegend(QWidget):
    """The legend: one label per entry in a grid of ``columns`` (an entry never breaks across lines; a long
    one is cut at the end, the whole in its tooltip)."""

    def __init__(self, columns: int = 2, parent=None):
        super().__init__(parent)
        self.columns = columns
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(8)
        self.grid.setVerticalSpacing(0)
        self._html = ""

    def show_kinds(self, keys: Sequence[str], class_names: Sequence[str]) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        entries = [e for key in keys for e in legend_entries(key, class_names)]
        for i, (words, rgb) in enumerate(entries):
            label = QLabel(_entry_html(words, rgb))
            label.setToolTip(words)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            self.grid.addWidget(label, i // self.columns, i % self.columns)
        self._html = legend_html(keys, class_names)

    def text(self) -> str:
        """Every entry as rich text (what the labels show)."""
        return self._html


def swatch(rgb: RGB, size: int = 12) -> QIcon:
    """A square icon of one colour (the kind buttons)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*rgb))
    return QIcon(pixmap)
