"""The npe2 manifest: it validates, and its samples, widgets and writer work through napari."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_lazylabels.plugin.sample_data import SYNTHETIC_NAME
from napari_lazylabels.plugin.layers import label_layer_name

pytestmark = pytest.mark.gui
PLUGIN = "napari-lazylabels"
MANIFEST = Path(__file__).resolve().parents[2] / "src" / "napari_lazylabels" / "napari.yaml"


def test_manifest_validates():
    out = subprocess.run([sys.executable, "-m", "npe2", "validate", str(MANIFEST)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_widgets_dock_from_the_plugin_menu(viewer):
    for name in ("Lazy annotation", "Train & predict", "Export to project"):
        dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        assert widget is not None and dock is not None


def test_samples_open(viewer):
    viewer.open_sample(PLUGIN, "synthetic")
    image = viewer.layers[SYNTHETIC_NAME]
    assert image.data.shape == (8, 256, 256)
    for suffix in ("blobs", "interfaces", "masks"):
        labels = viewer.layers[f"{suffix} · {SYNTHETIC_NAME}"]
        assert labels.data.shape == (8, 256, 256)
    assert viewer.layers[label_layer_name(SYNTHETIC_NAME, "detection")].data.any()
    viewer.open_sample(PLUGIN, "hela")
    real = viewer.layers["HeLa nuclei (real)"]
    assert real.data.shape == (256, 256) and real.data.dtype == np.uint16
    viewer.open_sample(PLUGIN, "noisy")
    strokes = viewer.layers["fg-bg scribbles · noisy nuclei"]
    assert strokes.data.shape == (4, 256, 256) and strokes.data[:2].any() and not strokes.data[2:].any()
    assert set(np.unique(strokes.data)) == {0, 1, 2}


def test_writer_saves_labels_as_tiff(viewer, tmp_path):
    viewer.open_sample(PLUGIN, "synthetic")
    blobs = viewer.layers[label_layer_name(SYNTHETIC_NAME, "detection")]
    out = tmp_path / "blobs.tif"
    blobs.save(str(out), plugin=PLUGIN)
    np.testing.assert_array_equal(tifffile.imread(out), blobs.data)
    plane = tmp_path / "plane.tif"
    from napari_lazylabels.plugin.writer import write_labels
    write_labels(str(plane), blobs.data[0], {})
    np.testing.assert_array_equal(tifffile.imread(plane), blobs.data[0])


def test_instance_colours_are_bright():
    """Outlines must stay visible on grey nuclei: no dark or grey instance colour."""
    import colorsys

    from napari.layers import Labels

    from napari_lazylabels.plugin.layers import instances_layer_kwargs

    layer = Labels(np.zeros((4, 4), np.int32), **instances_layer_kwargs("x"))
    colours = layer.colormap.map(np.arange(0, 60))
    assert colours[0, 3] == 0                                   # background transparent
    for r, g, b, a in colours[1:]:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        assert a == 1 and v >= 0.99 and s >= 0.5
    assert not np.allclose(colours[1], colours[2])              # neighbouring ids differ
