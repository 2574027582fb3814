"""Machine-made points and a foreground mask for review (part of the annotation widget).

On the current plane of the chosen image, :func:`napari_lazylabels.engine.autolabel.autolabel`
finds one point per object (LoG blobs) and thresholds a mask, in a background
thread on copies. The results are then merged into the Points and mask layers
of the regime that has them (``registry.machine_label_inputs``): a point only
where no point lies within an object's radius, a mask pixel only where the
mask is still 0 *at that moment*; nothing the user clicked or painted is
replaced. napari's Points layers have no undo, so the panel's *Undo* removes
the last merge (the points it added, the mask pixels it set that still hold
its value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                            QPushButton, QVBoxLayout)

from ...engine.autolabel import FIXED, SIZE_UNITS, THRESHOLDS, AutolabelConfig, autolabel
from ...engine.regimes import registry
from ...errors import LazyLabelsError
from ..layers import current_plane, ensure_label_layers, class_names, label_layers, plane_data, pixel_size_of
from .background import BackgroundCall
from .grabcut_widget import apply_drafts
from .tooltips import tip

MEAN = "mean of the channels"


@dataclass
class Merge:
    """What one merge wrote: the points added (layer coordinates) and the mask pixels set."""

    points_layer: object
    points: np.ndarray
    mask_layer: object
    indices: tuple
    value: int


def new_points(existing: np.ndarray, found: np.ndarray, radius: float) -> np.ndarray:
    """The points of ``found`` (M, 2+) farther than ``radius`` from every point of ``existing`` (N, 2+)
    and from each other (YX columns last)."""
    keep: list[np.ndarray] = []
    taken = [np.asarray(p, np.float64)[-2:] for p in np.asarray(existing, np.float64).reshape(-1, 2)] \
        if np.size(existing) else []
    for p in np.asarray(found, np.float64).reshape(-1, np.shape(found)[-1] if np.size(found) else 2):
        yx = p[-2:]
        if all(np.hypot(*(yx - q)) > radius for q in taken):
            keep.append(p)
            taken.append(yx)
    return np.asarray(keep).reshape(-1, np.shape(found)[-1] if np.size(found) else 2)


def merge(points_layer, mask_layer, plane: tuple[int, ...], points: np.ndarray, mask: np.ndarray,
          radius: float) -> Merge:
    """Add ``points`` ((M, 3) y, x, class) and ``mask`` to the layers without replacing anything."""
    current = np.asarray(points_layer.data, np.float64)
    on_plane = current[np.all(np.floor(current[:, :len(plane)] + 0.5) == plane, axis=1)] if len(plane) else current
    found = np.column_stack([np.tile(np.asarray(plane, np.float64), (len(points), 1)), points[:, :2]]) \
        if len(points) else np.zeros((0, len(plane) + 2))
    added = new_points(on_plane[:, -2:], found, radius)
    if len(added):
        points_layer.add(added)
    before = np.array(plane_data(mask_layer, plane))
    apply_drafts(mask_layer, plane, mask.astype(np.int64))
    ys, xs = np.nonzero((mask > 0) & (before == 0))
    indices = tuple(np.full(len(ys), i, dtype=np.intp) for i in plane) + (ys, xs)
    return Merge(points_layer, added, mask_layer, indices, 1)


def undo_merge(m: Merge) -> tuple[int, int]:
    """Remove a merge's points (those still there) and its mask pixels (those still holding its value)."""
    data = np.asarray(m.points_layer.data, np.float64)
    drop = [i for i, row in enumerate(data) if any(np.allclose(row, p) for p in m.points)]
    if drop:
        m.points_layer.selected_data = set(drop)
        m.points_layer.remove_selected()
    cleared = 0
    if len(m.indices[-1]):
        values = np.asarray(m.mask_layer.data[m.indices])
        still = values == m.value
        idx = tuple(a[still] for a in m.indices)
        if len(idx[-1]):
            m.mask_layer.data_setitem(idx, np.zeros(len(idx[-1]), m.mask_layer.data.dtype))
        cleared = int(still.sum())
    return len(drop), cleared


class AutolabelPanel(QGroupBox):
    """Machine-made points and foreground mask for the current plane, merged for review."""

    def __init__(self, viewer, get_image: Callable[[], object], parent=None):
        super().__init__("Machine-made points and foreground mask", parent)
        self.viewer = viewer
        self._get_image = get_image
        self.points_channel, self.mask_channel = QComboBox(), QComboBox()
        self.points_channel.setToolTip(tip("autolabel_points_channel"))
        self.mask_channel.setToolTip(tip("autolabel_mask_channel"))
        self.size = QDoubleSpinBox()
        self.size.setRange(1.0, 500.0)
        self.size.setValue(AutolabelConfig().object_size)
        self.size.setToolTip(tip("autolabel_size"))
        self.unit = QComboBox()
        self.unit.addItems(SIZE_UNITS)
        self.threshold = QComboBox()
        self.threshold.addItems(THRESHOLDS)
        self.threshold.setToolTip(tip("autolabel_threshold"))
        self.value = QDoubleSpinBox()
        self.value.setRange(-1e9, 1e9)
        self.value.setDecimals(4)
        self.detection = QDoubleSpinBox()
        self.detection.setRange(0.001, 10.0)
        self.detection.setDecimals(3)
        self.detection.setSingleStep(0.01)
        self.detection.setValue(AutolabelConfig().detection_threshold)
        self.detection.setToolTip(tip("autolabel_detection"))
        self.dark = QCheckBox("objects darker than the background")
        self.dark.setToolTip(tip("autolabel_dark"))
        self.button = QPushButton("Make points and mask")
        self.button.setToolTip(tip("autolabel"))
        self.button.clicked.connect(self.run)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setEnabled(False)
        self.undo_button.clicked.connect(self.undo)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        size_row = QHBoxLayout()
        size_row.addWidget(self.size)
        size_row.addWidget(self.unit)
        thr_row = QHBoxLayout()
        thr_row.addWidget(self.threshold)
        thr_row.addWidget(self.value)
        form = QFormLayout()
        form.addRow("Points from", self.points_channel)
        form.addRow("Mask from", self.mask_channel)
        form.addRow("Object size", size_row)
        form.addRow("Threshold", thr_row)
        form.addRow("Blob response", self.detection)
        form.addRow("", self.dark)
        buttons = QHBoxLayout()
        buttons.addWidget(self.button)
        buttons.addWidget(self.undo_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self._call = BackgroundCall(self)
        self.last: Merge | None = None
        self.refresh_channels()

    @property
    def busy(self) -> bool:
        return self._call.busy

    def refresh_channels(self) -> None:
        """The channel choices of the chosen image (one entry for a grayscale image)."""
        image = self._get_image()
        n = 1
        if image is not None:
            try:
                plane = np.asarray(plane_data(image, current_plane(self.viewer, image))[:1, :1])
                n = plane.shape[-1] if plane.ndim == 3 else 1
            except (IndexError, ValueError, TypeError):
                n = 1
        items = [MEAN] + [f"channel {c}" for c in range(n)] if n > 1 else ["channel 0"]
        for combo in (self.points_channel, self.mask_channel):
            if [combo.itemText(i) for i in range(combo.count())] != items:
                combo.clear()
                combo.addItems(items)

    def _channel(self, combo) -> int | None:
        text = combo.currentText()
        return None if text == MEAN else int(text.split()[-1])

    def config(self) -> AutolabelConfig:
        method = self.threshold.currentText()
        return AutolabelConfig(object_size=float(self.size.value()), size_unit=self.unit.currentText(),
                               detection_threshold=float(self.detection.value()), threshold=method,
                               threshold_value=float(self.value.value()) if method == FIXED else None,
                               dark_objects=self.dark.isChecked())

    def run(self) -> None:
        """Make the labels of the current plane in the background, then merge them into the layers."""
        if self._call.busy:
            show_info("still making labels")
            return
        image_layer = self._get_image()
        pair = registry.machine_label_inputs()
        if image_layer is None or pair is None:
            show_warning("choose an image first" if pair is not None else "no regime takes points and a mask")
            return
        points_key, mask_key = pair[0].key, pair[1].key
        layers = label_layers(self.viewer, image_layer.name)
        if points_key not in layers or mask_key not in layers:
            layers = ensure_label_layers(self.viewer, image_layer, class_names(image_layer))
        points_layer, mask_layer = layers[points_key], layers[mask_key]
        self.refresh_channels()
        plane = current_plane(self.viewer, image_layer)
        try:
            config = self.config()
            image = np.array(plane_data(image_layer, plane))
            size = pixel_size_of(image_layer)
            um = None if size is None else sum(size.micrometers()) / 2.0
            radius = config.diameter_px(um) / 2.0
        except (LazyLabelsError, IndexError, ValueError) as exc:
            show_error(f"{image_layer.name}: {exc}")
            return
        pc, mc = self._channel(self.points_channel), self._channel(self.mask_channel)
        self.button.setEnabled(False)
        self.status.setText("making points and mask...")

        def work():
            return autolabel(image, config, points_channel=pc, mask_channel=mc, micrometers_per_pixel=um,
                             source=image_layer.name)

        def done(labels) -> None:
            self.button.setEnabled(True)
            if points_layer not in self.viewer.layers or mask_layer not in self.viewer.layers:
                self.status.setText("a layer was removed; nothing written")
                return
            try:
                self.last = merge(points_layer, mask_layer, plane, labels.points, labels.foreground, radius)
            except ValueError as exc:
                self._failed(str(exc))
                return
            self.undo_button.setEnabled(True)
            self.status.setText(f"found {labels.describe()}; added {len(self.last.points)} points to "
                                f"'{points_layer.name}' and {len(self.last.indices[-1])} px to '{mask_layer.name}'")

        self._call.start(work, done, self._failed)

    def undo(self) -> None:
        if self.last is None:
            return
        n, px = undo_merge(self.last)
        self.last = None
        self.undo_button.setEnabled(False)
        self.status.setText(f"removed {n} points and {px} mask pixels")

    def _failed(self, message: str) -> None:
        self.button.setEnabled(True)
        self.status.setText("nothing was changed")
        show_error(message)

    def shutdown(self) -> None:
        self._call.wait(10.0)
