"""Fixtures for the GUI tests: a napari viewer (under Xvfb, started by pytest-xvfb) with our widgets."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils.notifications import NotificationSeverity, notification_manager

from napari_lazylabels.plugin.sample_data import REAL_NAME, SYNTHETIC_NAME

PLUGIN = "napari-lazylabels"


@pytest.fixture(autouse=True)
def _own_settings(tmp_path, monkeypatch):
    """Each test starts from the defaults: the widgets remember settings in a file of its own."""
    monkeypatch.setenv("LAZYLABELS_SETTINGS", str(tmp_path / "settings.ini"))


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def synthetic_viewer(viewer):
    """A viewer with the synthetic sample opened as a user would (File > Open Sample)."""
    viewer.open_sample(PLUGIN, "synthetic")
    assert SYNTHETIC_NAME in viewer.layers
    return viewer


@pytest.fixture
def real_viewer(viewer):
    viewer.open_sample(PLUGIN, "hela")
    assert REAL_NAME in viewer.layers
    return viewer


@pytest.fixture
def errors():
    """Error notifications shown during the test (napari's notification manager)."""
    start = len(notification_manager.records)

    def collected() -> list[str]:
        return [str(n.message) for n in notification_manager.records[start:]
                if n.severity == NotificationSeverity.ERROR]
    return collected


def _tiny_settings(widget, steps: int = 4) -> None:
    """What a user types for a quick run: tiny preset, small patches, a few steps, the CPU."""
    widget.form.set_values(preset_name="tiny", steps=steps, patch=32, batch=2, device="cpu", threads=1)


def _layer_arrays(viewer) -> dict[str, np.ndarray]:
    return {layer.name: np.array(layer.data) for layer in viewer.layers}


@pytest.fixture
def tiny_settings():
    """``tiny_settings(train_widget, steps)`` fills the form for a quick run."""
    return _tiny_settings


@pytest.fixture
def layer_arrays():
    """``layer_arrays(viewer)``: layer name -> a copy of its data."""
    return _layer_arrays
