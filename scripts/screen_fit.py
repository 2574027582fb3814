"""Screenshots of both docks in a napari window of a laptop's and a desktop's size (docs/usage.md).

Opens napari at 1366 x 768 and 1920 x 1080 (the Qt main window resized to the
screen), docks *Lazy annotation* and *Train & predict*, opens the HeLa sample
and adds its lazy-label layers, and saves ``fit_1366x768.png`` and
``fit_1920x1080.png`` (the Images tab of *Train & predict*) and ``..._model.png`` (its Model tab). It prints the docks' sizes and whether every button of
the docks is inside the window (reachable without resizing).

Usage::

    .venv/bin/python scripts/screen_fit.py [--out docs/img] [--width 1000]
"""

from __future__ import annotations

import argparse
import atexit
import os
from pathlib import Path

PLUGIN = "napari-lazylabels"
SIZES = ((1366, 768), (1920, 1080))


def _display(size):
    if os.environ.get("DISPLAY"):
        return
    from pyvirtualdisplay import Display
    display = Display(visible=False, size=size, color_depth=24)
    display.start()
    atexit.register(display.stop)


def reachable(dock, window) -> list[str]:
    """The text of the dock's buttons that are outside the window (none when all are reachable)."""
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QPushButton
    missing = []
    for b in dock.findChildren(QPushButton):
        if not b.isVisibleTo(dock):
            continue
        p = b.mapTo(window, QPoint(0, 0))
        if p.y() + b.height() > window.height() or p.x() + b.width() > window.width():
            missing.append(b.text())
    return missing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "img"))
    p.add_argument("--width", type=int, default=1000, help="width of the saved pictures (px)")
    p.add_argument("--sizes", default="1366x768,1920x1080")
    args = p.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    _display((1920, 1200))
    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for w, h in sizes:
        viewer = napari.Viewer(show=True)
        win = viewer.window._qt_window
        viewer.open_sample(PLUGIN, "hela")
        d1, ann = viewer.window.add_plugin_dock_widget(PLUGIN, "Lazy annotation")
        d2, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train & predict")
        ann.add_layers()
        for _ in range(5):
            QApplication.processEvents()
        win.resize(w, h)
        for _ in range(10):
            QApplication.processEvents()
        canvas = viewer.window._qt_viewer.canvas.native
        print(f"{w}x{h}: window {win.width()}x{win.height()}, canvas {canvas.width()}x{canvas.height()} "
              f"({100 * canvas.width() / win.width():.0f} % of the width), "
              f"annotation dock {d1.width()}x{d1.height()}, train dock {d2.width()}x{d2.height()}")
        for name, dock in (("annotation", d1), ("train", d2)):
            missing = reachable(dock, win)
            print(f"  {name}: buttons outside the window: {missing or 'none'}")
        for tab, suffix in ((0, ""), (train.tabs.count() - 1, "_model")):    # the Images tab, the Model tab
            train.tabs.setCurrentIndex(tab)
            for _ in range(5):
                QApplication.processEvents()
            img = win.grab().toImage()
            if args.width and img.width() > args.width:
                img = img.scaledToWidth(args.width, Qt.TransformationMode.SmoothTransformation)
            path = out / f"fit_{w}x{h}{suffix}.png"
            img.save(str(path))
            print(f"  saved {path}")
        train.tabs.setCurrentIndex(0)
        viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
