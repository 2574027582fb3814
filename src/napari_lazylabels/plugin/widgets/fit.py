"""Make a dock fit a laptop screen: scroll areas, compact layer pickers, a grid of buttons.

napari sizes a dock from its widget's minimum size hint; a long form or a row
of buttons then pushes the window past the screen. Here a dock's parts go in
scroll areas (the dock keeps the height napari gives it, and a section that
opens or closes changes what scrolls, not the dock), combo boxes of layer
names show about :data:`COMBO_CHARS` characters (the full name is in the list
and the tooltip), and shortcut buttons wrap into a grid, each dropping its
shortcut from its label where the label would be cut (:class:`ShortButton`).
"""

from __future__ import annotations

from typing import Iterable

from qtpy.QtCore import QSize, Qt, QTimer
from qtpy.QtWidgets import (QComboBox, QDockWidget, QFrame, QGridLayout, QMainWindow, QPushButton, QScrollArea,
                            QSizePolicy, QWidget)

#: The widest a dock of the plugin is (px): napari's layer list, a dock and an image view of at least
#: half the window fit 1366 px.
DOCK_WIDTH = 330
#: Characters a layer-name combo box asks room for.
COMBO_CHARS = 10


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a vertical scroll area (no horizontal bar: the widget takes the area's width)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
    return area


def compact_combos(parent: QWidget) -> None:
    """Every combo box under ``parent`` asks for room for :data:`COMBO_CHARS` characters, not its longest item
    (nor more than its longest item: a unit's box stays narrow)."""
    for combo in parent.findChildren(QComboBox):
        longest = max((len(combo.itemText(i)) for i in range(combo.count())), default=COMBO_CHARS)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(max(2, min(COMBO_CHARS, longest)))


class FittedDock(QWidget):
    """A dock's widget: at most :data:`DOCK_WIDTH` wide, asking for :attr:`HEIGHT` px of its dock area."""

    HEIGHT = 400

    def __init__(self):
        super().__init__()
        self.setMaximumWidth(DOCK_WIDTH)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return QSize(DOCK_WIDTH, self.HEIGHT)

    def showEvent(self, event):  # noqa: N802 (Qt name)
        super().showEvent(event)
        if not getattr(self, "_shared", False):
            self._shared = True
            QTimer.singleShot(0, self.share_dock_area)

    def share_dock_area(self) -> None:
        """Split the dock area this widget's dock is in among its docks by their size hints (the dock added
        last would otherwise get only its minimum height)."""
        dock, window = self.parentWidget(), self.window()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        if dock is None or not isinstance(window, QMainWindow) or dock.isFloating():
            return
        area = window.dockWidgetArea(dock)
        docks = [d for d in window.findChildren(QDockWidget) if d.isVisible() and not d.isFloating()
                 and window.dockWidgetArea(d) == area and d.widget() is not None]
        if len(docks) > 1:
            window.resizeDocks(docks, [max(d.widget().sizeHint().height(), 100) for d in docks],
                               Qt.Orientation.Vertical)


def button_grid(buttons: Iterable[QWidget], columns: int = 2) -> QGridLayout:
    """The buttons in rows of ``columns``."""
    grid = QGridLayout()
    grid.setSpacing(2)
    for i, b in enumerate(buttons):
        b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        grid.addWidget(b, i // columns, i % columns)
    return grid


class ShortButton(QPushButton):
    """A push button that shows ``short`` (e.g. its label without the shortcut, which stays in the
    tooltip) where its full text would be cut, and the full text again where it fits."""

    def __init__(self, text: str, short: str, parent: QWidget | None = None):
        super().__init__(text, parent)
        self.full_text, self.short_text = text, short

    def _needs(self, text: str) -> int:
        """The width (px) the button asks for with ``text``: its style's padding and its icon included."""
        shown = self.text()
        self.blockSignals(True)
        self.setText(text)
        width = self.sizeHint().width()
        self.setText(shown)
        self.blockSignals(False)
        return width

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        text = self.full_text if self._needs(self.full_text) <= self.width() else self.short_text
        if text != self.text():
            self.setText(text)
