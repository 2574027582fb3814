"""Machine-made points and a foreground mask for review (part of the annotation widget).

On the current plane of the chosen image, :func:`napari_lazylabels.engine.autolabel.autolabel`
finds one point per object (LoG blobs) and thresholds a mask (or takes the
model's foreground: the image's predicted objects), in a background thread on
copies. They are shown first in two preview layers ("autolabel preview:
points", "autolabel preview: mask"); *Merge* then writes them into the Points and mask layers
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
from qtpy.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                            QLabel, QPushButton, QVBoxLayout)

from ...engine.autolabel import FIXED, SIZE_UNITS, THRESHOLDS, AutolabelConfig, autolabel
from ...engine.autolabel_config import AUTO as READ_AGAIN, OFF as FIRST_READING_ONLY, SPLIT_PAIRS
from ...engine.autolabel_stats import POLARITIES
from ...engine.autolabel_tiling import AUTO as TILING_AUTO, OFF as TILING_OFF, ON as TILING_ON
from ...engine.regimes import registry
from ...errors import LazyLabelsError
from ..layers import current_plane, ensure_label_layers, class_names, label_layers, plane_data, pixel_size_of
from . import remembered
from .background import BackgroundCall
from .grabcut_widget import apply_drafts
from .tooltips import tip

MEAN = "mean of the channels"
#: "One point per": the tiling setting in plain words (a piece of the mask: cells that fill the image).
POINT_PER = {"auto": TILING_AUTO, "blob": TILING_OFF, "piece of the mask": TILING_ON}
#: "Touching pair": the split_pairs setting (auto, on, off) in plain words (two round nuclei that read as one
#: blob).
TOUCHING_PAIR = dict(zip(("auto", "two points", "one point"), SPLIT_PAIRS))
THRESHOLD_MASK, MODEL_MASK = "a threshold", "the model's foreground"
PREVIEW_POINTS, PREVIEW_MASK = "autolabel preview: points", "autolabel preview: mask"


def model_foreground(viewer, image_name: str, plane: tuple[int, ...]) -> np.ndarray | None:
    """The model's foreground on one plane of an image: its predicted objects (the instances layer),
    or None when the image has no prediction there."""
    from ..layers import find_layer
    layer = find_layer(viewer, image_name, "instances", "labels")
    if layer is None:
        return None
    data = np.asarray(plane_data(layer, plane))
    return (data > 0) if data.any() else None


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


#: Where the panel's settings are remembered (:mod:`.remembered`).
SETTINGS_KEY = "autolabel"


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
        self.size.setRange(0.0, 500.0)
        self.size.setSpecialValueText("read from the image")      # 0: the size is read from the image
        self.size.setValue(0.0)
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
        self.polarity = QComboBox()
        self.polarity.addItems(POLARITIES)
        self.polarity.setToolTip(tip("autolabel_dark"))
        self.point_per = QComboBox()
        self.point_per.addItems(list(POINT_PER))
        self.point_per.setToolTip(tip("autolabel_tiling"))
        self.touching_pair = QComboBox()
        self.touching_pair.addItems(list(TOUCHING_PAIR))
        self.touching_pair.setToolTip(tip("autolabel_split_pairs"))
        self.read_again = QCheckBox("Read again if they look wrong")
        self.read_again.setChecked(True)
        self.read_again.setToolTip(tip("autolabel_second_reading"))
        for changed in (self.threshold.currentTextChanged, self.polarity.currentTextChanged, self.size.valueChanged):
            changed.connect(self._read_again_allowed)
        self.mask_source = QComboBox()
        self.mask_source.addItems([THRESHOLD_MASK, MODEL_MASK])
        self.mask_source.setToolTip("The mask: a threshold of the image, or the objects the current model "
                                    "predicted on this image (Predict first).")
        self.button = QPushButton("Preview points and mask")
        self.button.setToolTip(tip("autolabel"))
        self.button.clicked.connect(self.run)
        self.merge_button = QPushButton("Merge")
        self.merge_button.setToolTip("Write the previewed points and mask into the Points and mask layers "
                                     "(nothing painted or clicked is replaced).")
        self.merge_button.setEnabled(False)
        self.merge_button.clicked.connect(self.accept)
        self.discard_button = QPushButton("Discard")
        self.discard_button.setEnabled(False)
        self.discard_button.clicked.connect(self.discard)
        self.pending: tuple | None = None
        self.undo_button = QPushButton("Undo")
        self.undo_button.setEnabled(False)
        self.undo_button.clicked.connect(self.undo)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        size_row = QHBoxLayout()
        size_row.addWidget(self.size, 1)         # the room goes to "read from the image", not to the unit
        size_row.addWidget(self.unit)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)     # a narrow dock: fields under their labels
        form.addRow("Points from", self.points_channel)
        form.addRow("Mask by", self.mask_source)
        form.addRow("Mask from", self.mask_channel)
        form.addRow(QLabel("Object size"))          # the box under its label: room for "read from the image"
        form.addRow(size_row)
        form.addRow("Threshold", self.threshold)
        form.addRow("Fixed value", self.value)       # a row of its own: beside the method it overflows the dock
        form.addRow("Blob response", self.detection)
        form.addRow("Objects", self.polarity)
        form.addRow("One point per", self.point_per)
        form.addRow("Touching pair", self.touching_pair)
        form.addRow(self.read_again)
        buttons = QHBoxLayout()       # under the preview button: four in a row are wider than a laptop's dock
        buttons.addWidget(self.merge_button)
        buttons.addWidget(self.discard_button)
        buttons.addWidget(self.undo_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.button)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self._call = BackgroundCall(self)
        self.last: Merge | None = None
        self.refresh_channels()
        self._remember()
        self._read_again_allowed()

    def _remember(self) -> None:
        """Put back the settings of the last session (:mod:`.remembered`) and store them on change: the size,
        thresholds, polarity, points per object and per touching pair; not the channels or the mask's source,
        which belong to the image and the session's model."""
        combos = {"unit": self.unit, "threshold": self.threshold, "polarity": self.polarity,
                  "point_per": self.point_per, "touching_pair": self.touching_pair}
        spins = {"size": self.size, "value": self.value, "blob_response": self.detection}
        checks = {"read_again": self.read_again}
        for name, value in remembered.load(SETTINGS_KEY).items():
            if name in combos and isinstance(value, str) and combos[name].findText(value) >= 0:
                combos[name].setCurrentText(value)
            elif name in spins and isinstance(value, (int, float)) and not isinstance(value, bool):
                spins[name].setValue(float(value))
            elif name in checks and isinstance(value, bool):
                checks[name].setChecked(value)

        def save(*_args) -> None:
            remembered.save(SETTINGS_KEY, {**{n: c.currentText() for n, c in combos.items()},
                                           **{n: s.value() for n, s in spins.items()},
                                           **{n: c.isChecked() for n, c in checks.items()}})
        for combo in combos.values():
            combo.currentTextChanged.connect(save)
        for spin in spins.values():
            spin.valueChanged.connect(save)
        for check in checks.values():
            check.toggled.connect(save)

    def _read_again_allowed(self, *_args) -> None:
        """The second reading overrides nothing the user set: it is offered only while the threshold, the
        polarity and the size are all read from the image (``AutolabelConfig.reads_everything``)."""
        try:
            free = self.config().reads_everything
        except LazyLabelsError:
            free = False
        self.read_again.setEnabled(free)
        self.read_again.setToolTip(tip("autolabel_second_reading" if free else "autolabel_second_reading_off"))

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
        size = float(self.size.value())
        return AutolabelConfig(object_size=size if size > 0 else None, size_unit=self.unit.currentText(),
                               detection_threshold=float(self.detection.value()), threshold=method,
                               threshold_value=float(self.value.value()) if method == FIXED else None,
                               polarity=self.polarity.currentText(),
                               tiling=POINT_PER[self.point_per.currentText()],
                               split_pairs=TOUCHING_PAIR[self.touching_pair.currentText()],
                               second_reading=READ_AGAIN if self.read_again.isChecked() else FIRST_READING_ONLY)

    def run(self) -> None:
        """Make the labels of the current plane in the background, then show them in the preview layers."""
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
            layers = ensure_label_layers(self.viewer, image_layer, class_names(image_layer), [points_key, mask_key])
        points_layer, mask_layer = layers[points_key], layers[mask_key]
        self.refresh_channels()
        plane = current_plane(self.viewer, image_layer)
        try:
            config = self.config()
            image = np.array(plane_data(image_layer, plane))
            size = pixel_size_of(image_layer)
            um = None if size is None else sum(size.micrometers()) / 2.0
            config.diameter_px(um)
        except (LazyLabelsError, IndexError, ValueError) as exc:
            show_error(f"{image_layer.name}: {exc}")
            return
        given = None
        if self.mask_source.currentText() == MODEL_MASK:
            given = model_foreground(self.viewer, image_layer.name, plane)
            if given is None:
                show_warning(f"{image_layer.name} has no predicted objects on this plane: train a model and "
                             "Predict first, or make the mask by a threshold")
                return
        pc, mc = self._channel(self.points_channel), self._channel(self.mask_channel)
        self.button.setEnabled(False)
        self.status.setText("making points and mask...")

        def work():
            return autolabel(image, config, points_channel=pc, mask_channel=mc, micrometers_per_pixel=um,
                             source=image_layer.name, foreground=given)

        def done(labels) -> None:
            self.button.setEnabled(True)
            self._show_preview(image_layer, labels)
            self.pending = (points_layer, mask_layer, plane, labels)
            self.merge_button.setEnabled(True)
            self.discard_button.setEnabled(True)
            concerns = labels.concerns()
            warning = "".join(f" Warning: {c}." for c in concerns)
            self.status.setText(f"preview: {labels.describe()}. Merge writes them into '{points_layer.name}' "
                                f"and '{mask_layer.name}'.{warning}")
            if concerns:
                show_warning(f"{image_layer.name}: {concerns[0]}")

        self._call.start(work, done, self._failed)

    def _show_preview(self, image_layer, labels) -> None:
        from napari.layers import Labels, Points
        self._remove_preview()
        scale, translate = tuple(image_layer.scale)[-2:], tuple(image_layer.translate)[-2:]
        self.viewer.add_layer(Labels(labels.foreground.astype(np.uint8), name=PREVIEW_MASK, opacity=0.4,
                                     scale=scale, translate=translate))
        self.viewer.add_layer(Points(labels.points[:, :2], name=PREVIEW_POINTS, size=7, face_color="cyan",
                                     scale=scale, translate=translate))

    def _remove_preview(self) -> None:
        for name in (PREVIEW_POINTS, PREVIEW_MASK):
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)

    def accept(self) -> None:
        """Merge the previewed points and mask into the label layers (nothing there is replaced)."""
        if self.pending is None:
            return
        points_layer, mask_layer, plane, labels = self.pending
        self.pending = None
        self.merge_button.setEnabled(False)
        self.discard_button.setEnabled(False)
        self._remove_preview()
        if points_layer not in self.viewer.layers or mask_layer not in self.viewer.layers:
            self.status.setText("a layer was removed; nothing written")
            return
        try:
            self.last = merge(points_layer, mask_layer, plane, labels.points, labels.foreground,
                              labels.reading.diameter / 2.0)
        except ValueError as exc:
            self._failed(str(exc))
            return
        self.undo_button.setEnabled(True)
        self.status.setText(f"added {len(self.last.points)} points to '{points_layer.name}' and "
                            f"{len(self.last.indices[-1])} px to '{mask_layer.name}'")

    def discard(self) -> None:
        self.pending = None
        self.merge_button.setEnabled(False)
        self.discard_button.setEnabled(False)
        self._remove_preview()
        self.status.setText("preview discarded; nothing written")

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
