"""Screenshots of both docks in a napari window of a laptop's and a desktop's size (docs/usage.md).

Opens napari at 1366 x 768 and 1920 x 1080 (the Qt main window resized to the
screen), docks *Lazy annotation* and *Train & predict*, opens the HeLa sample,
paints blobs, two interface strokes and one exact mask with the kind buttons,
trains a few steps and predicts (``--steps``; 0 skips training), prints the
image's layers, and saves ``fit_1366x768.png`` and
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


def _spin(done, seconds: float) -> None:
    import time

    from qtpy.QtWidgets import QApplication
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def paint_train_predict(viewer, ann, train, steps: int) -> None:
    """What a user does first: blobs, two interface strokes and one mask with the kind buttons, then a short
    training and Predict (the layers a person then sees)."""
    import numpy as np

    from napari_lazylabels.engine.regimes.detection import detection_blobs
    from napari_lazylabels.plugin.sample_data import REAL_NAME, real_instances
    from napari_lazylabels.engine.regimes import registry
    from napari_lazylabels.engine.tasks import BOUNDARIES, FOREGROUND, SEEDS
    seeds, boundaries, foreground = (registry.input_with_role(r).key for r in (SEEDS, BOUNDARIES, FOREGROUND))
    truth = real_instances()
    ann.input_buttons[seeds].click()
    blobs = viewer.layers.selection.active
    blobs.data = detection_blobs(truth, rng=np.random.default_rng(0)).astype(blobs.data.dtype)
    ann.input_buttons[boundaries].click()
    strokes = viewer.layers.selection.active
    for y, x in ((60, 60), (140, 90)):
        strokes.paint((y, x), 1)
    ann.input_buttons[foreground].click()
    masks = viewer.layers.selection.active
    masks.data = np.where(truth == (int(truth[128, 128]) or 1), 1, 0).astype(masks.data.dtype)
    ann.refresh_summary()
    if steps <= 0:
        return
    import tempfile
    train.checkpoint_root = tempfile.mkdtemp(prefix="lazylabels-fit-")
    train.form.set_values(preset_name="tiny", steps=steps, patch=64, batch=2, device="cpu", threads=1)
    train.train_button.click()
    _spin(lambda: not train.running, 600)
    panel = train.model_panel
    panel.image_combo.setCurrentText(REAL_NAME)
    panel.predict_button.click()
    _spin(lambda: not panel.busy, 300)
    viewer.layers.selection.active = blobs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "img"))
    p.add_argument("--width", type=int, default=1000, help="width of the saved pictures (px)")
    p.add_argument("--sizes", default="1366x768,1920x1080")
    p.add_argument("--steps", type=int, default=6, help="training steps before the pictures (0: no training)")
    args = p.parse_args(argv)
    import tempfile
    os.environ.setdefault("LAZYLABELS_SETTINGS", str(Path(tempfile.mkdtemp()) / "settings.ini"))
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
        win.resize(w, h)
        for _ in range(10):
            QApplication.processEvents()
        paint_train_predict(viewer, ann, train, args.steps)
        from napari_lazylabels.plugin.layers import image_of
        names = [layer.name for layer in viewer.layers if image_of(layer) or layer.name == "HeLa nuclei (real)"]
        print(f"  {len(names)} layers: {', '.join(names)}")
        for _ in range(10):
            QApplication.processEvents()
        canvas = viewer.window._qt_viewer.canvas.native
        print(f"{w}x{h}: window {win.width()}x{win.height()}, canvas {canvas.width()}x{canvas.height()} "
              f"({100 * canvas.width() / win.width():.0f} % of the width), "
              f"annotation dock {d1.width()}x{d1.height()}, train dock {d2.width()}x{d2.height()}")
        for name, dock in (("annotation", d1), ("train", d2)):
            missing = reachable(dock, win)
            print(f"  {name}: buttons outside the window: {missing or 'none'}")
        titles = [train.tabs.tabText(i) for i in range(train.tabs.count())]
        for tab, suffix in ((0, ""), (titles.index("Model"), "_model")):    # the Images tab, the Model tab
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
