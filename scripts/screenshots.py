"""Screenshots of every widget in use, for docs/usage.md (run under Xvfb; takes several minutes).

The walk-through of the user guide, driven as a user would through the
plugin's own menus and buttons:

 1. open the real HeLa sample, dock *Lazy annotation*, add the lazy-label
    layers and paint blobs (painted here from the crop's ground truth, as a
    biologist would by hand);
 2. draft strong masks with GrabCut;
 3. open the synthetic sample (a stack with blobs, interface scribbles and
    masks on one plane) and look at its summary;
 4. dock *Train & predict*, train the ``cpu`` preset on both (screenshot while
    it trains: progress, loss curves, the streamed prediction layers);
 5. when it is done;
 6. predict on the HeLa image with the trained model;
 7. export the HeLa image with its labels and predictions to a project, and
 8. reopen the project with the reader.

Usage::

    .venv/bin/python scripts/screenshots.py [--steps 400] [--out docs/img]

A virtual display is started when there is none (pyvirtualdisplay + Xvfb).
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

PLUGIN = "napari-lazylabels"


def _display():
    if os.environ.get("DISPLAY"):
        return None
    from pyvirtualdisplay import Display

    display = Display(visible=False, size=(1920, 1200), color_depth=24)
    display.start()
    atexit.register(display.stop)       # also when something fails on the way
    return display


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--threads", type=int, default=2, help="torch threads for training")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "img"))
    p.add_argument("--width", type=int, default=1280, help="width of the saved pictures (px)")
    p.add_argument("--upto", type=int, default=0, choices=(0, 3),
                   help="3: stop after the annotation pictures (no training)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    display = _display()

    import napari
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    from napari_lazylabels.engine.regimes import registry
    from napari_lazylabels.engine.simulate import simulate_lazy_labels
    from napari_lazylabels.engine.tasks import BOUNDARIES, FOREGROUND, SEEDS
    from napari_lazylabels.plugin.layers import label_layer_name, prediction_layer_name, probability_layer_name
    from napari_lazylabels.plugin.sample_data import REAL_NAME, SYNTHETIC_NAME, real_instances
    from napari_lazylabels.plugin.widgets.training_widget import TrainingTimings

    # the walk-through paints the built-in kinds of lazy label, found by what their heads do
    seeds, boundaries, strong = (registry.input_with_role(r).key for r in (SEEDS, BOUNDARIES, FOREGROUND))
    strong_task = registry.regime_with_role(FOREGROUND).task_names[0]

    def layer_of(image: str, key: str):
        return viewer.layers[label_layer_name(image, key)]

    viewer = napari.Viewer(title="napari-lazylabels")
    win = viewer.window._qt_window
    win.resize(1600, 1000)
    app = QApplication.instance()

    def spin(seconds: float, until=None, what: str = "") -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            if until is not None and until():
                return
            time.sleep(0.02)
        if until is not None and not until():
            raise RuntimeError(f"timed out waiting for {what}")

    def shot(name: str) -> None:
        spin(0.5)
        pixmap = win.grab()
        if args.width and pixmap.width() > args.width:
            pixmap = pixmap.scaledToWidth(args.width, Qt.TransformationMode.SmoothTransformation)
        path = out / f"usage_{name}.png"
        pixmap.save(str(path))
        print(f"saved {path} ({path.stat().st_size // 1024} kB)", flush=True)

    # 1. open an image, add the lazy-label layers, paint
    viewer.open_sample(PLUGIN, "hela")
    annotate_dock, annotate = viewer.window.add_plugin_dock_widget(PLUGIN, "Lazy annotation")
    annotate.image_combo.setCurrentText(REAL_NAME)
    layers = annotate.add_layers()
    painted = simulate_lazy_labels(real_instances(), rng=np.random.default_rng(0))
    for key in (seeds, boundaries):
        layers[key].data = painted[key].astype(np.uint8)
    annotate.select_input(seeds)
    annotate.refresh_summary()
    viewer.reset_view()
    shot("1_annotate")

    # 2. GrabCut drafts of strong masks into the empty mask layer
    annotate.grabcut.button.click()
    spin(120, lambda: annotate.grabcut.last_count is not None, "GrabCut")
    annotate.select_input(strong)
    annotate.refresh_summary()
    shot("2_grabcut")

    # 3. a stack: the synthetic sample, annotated plane by plane (scribbles where nuclei touch)
    viewer.open_sample(PLUGIN, "synthetic")
    for layer in viewer.layers:
        layer.visible = layer.name.startswith(SYNTHETIC_NAME)
    annotate.image_combo.setCurrentText(SYNTHETIC_NAME)
    annotate.refresh_summary()
    scribbles = layer_of(SYNTHETIC_NAME, boundaries).data
    plane = int(np.argmax(scribbles.reshape(len(scribbles), -1).sum(1)))
    viewer.dims.set_current_step(0, plane)
    parts, n = ndi.label(scribbles[plane] > 0, structure=np.ones((3, 3)))
    centres = ndi.center_of_mass(np.ones_like(parts), parts, range(1, n + 1))
    h, w = parts.shape
    inner = max(range(n), key=lambda i: min(centres[i][0], centres[i][1], h - centres[i][0], w - centres[i][1]))
    ys, xs = np.nonzero(parts == inner + 1)          # the scribble farthest from the image's edges
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    viewer.reset_view()
    camera.center = (plane, float(ys.mean()), float(xs.mean()))
    camera.zoom = camera.zoom * 1.8
    annotate.select_input(boundaries)
    shot("3_stack")
    if args.upto == 3:
        _exit(display, 0)

    # 4. train on the synthetic sample and the HeLa image
    for layer in viewer.layers:
        layer.visible = layer.name.startswith(SYNTHETIC_NAME) and layer is not layer_of(SYNTHETIC_NAME, boundaries)
    annotate_dock.hide()
    train_dock, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train & predict")
    train.set_selected_images([REAL_NAME, SYNTHETIC_NAME])
    train.preview_combo.setCurrentText(SYNTHETIC_NAME)
    train.form.set_values(preset_name="cpu", steps=args.steps, patch=128, batch=8, device="auto",
                          threads=args.threads)
    train.observer = TrainingTimings()
    viewer.dims.set_current_step(0, 3)
    viewer.reset_view()
    viewer.layers.selection.active = viewer.layers[SYNTHETIC_NAME]
    train.checkpoint_root = tempfile.mkdtemp(prefix="lazylabels-shots-")
    t0 = time.perf_counter()
    train.train_button.click()
    spin(600, lambda: train.progress.value() >= min(args.steps, max(30, args.steps // 4)) and train.previews >= 2,
         "training progress")
    viewer.layers[probability_layer_name(SYNTHETIC_NAME, strong_task, main=True)].visible = True
    layer_of(SYNTHETIC_NAME, strong).visible = False
    shot("4_training")
    viewer.layers[probability_layer_name(SYNTHETIC_NAME, strong_task, main=True)].visible = False
    spin(3600, lambda: not train.running, "the end of training")
    print(f"trained {args.steps} steps in {time.perf_counter() - t0:.0f} s", flush=True)
    if train.last_finished is None or train.last_finished.error:
        raise RuntimeError(f"training failed: {train.last_finished}")
    for key in (seeds, strong):
        layer_of(SYNTHETIC_NAME, key).visible = False
    shot("5_trained")

    # 5. predict on the real image with the trained model
    train.model_panel.image_combo.setCurrentText(REAL_NAME)
    train.model_panel.predict_button.click()
    spin(300, lambda: not train.model_panel.busy and prediction_layer_name(REAL_NAME, "instances") in viewer.layers, "prediction")
    spin(1.0)
    for layer in viewer.layers:
        layer.visible = layer.name in (REAL_NAME, prediction_layer_name(REAL_NAME, "instances"))
    viewer.layers.selection.active = viewer.layers[prediction_layer_name(REAL_NAME, "instances")]
    viewer.reset_view()
    shot("6_predict")

    # 6. export the HeLa image with everything, reopen the project
    train_dock.hide()
    _, export = viewer.window.add_plugin_dock_widget(PLUGIN, "Export to project")
    project = Path(tempfile.mkdtemp(prefix="lazylabels-shots-")) / "my_project"
    export.image_combo.setCurrentText(REAL_NAME)
    export.folder_edit.setText(str(project))
    for layer in viewer.layers:
        layer.visible = layer.name in (REAL_NAME, prediction_layer_name(REAL_NAME, "instances"), label_layer_name(REAL_NAME, seeds))
    export.export_button.click()
    spin(120, lambda: export.last_export is not None, "export")
    shot("7_export")
    viewer.layers.clear()
    viewer.open(str(project), plugin=PLUGIN)
    for layer in viewer.layers:
        layer.visible = (layer.name != label_layer_name(REAL_NAME, boundaries)
                         and not layer.name.startswith("P("))
    viewer.reset_view()
    shot("8_reopen")
    viewer.close()
    app.processEvents()
    _exit(display, 0)


def _exit(display, code: int) -> None:
    """Leave without Qt's teardown racing the virtual display's shutdown (files are written)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if display is not None:
        display.stop()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
