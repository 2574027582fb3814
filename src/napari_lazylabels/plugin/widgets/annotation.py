"""The lazy annotation widget: label layers for an image, class names, shortcuts, live summary.

Pick an image layer and press *Add lazy-label layers*: ``<image> blobs``,
``<image> scribbles`` and ``<image> masks`` appear with their own colours and
brush sizes. Alt-1 / Alt-2 / Alt-3 switch to painting blobs / scribbles /
masks of the chosen image. The table below lists, per image (per plane of a
stack), what has been painted, refreshed shortly after each stroke. GrabCut
drafts of strong masks live in this widget too (:mod:`.grabcut_widget`).
"""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                            QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ...engine.tasks import DETECTION, SEGMENTATION, SEPARATION
from .combo import set_combo_items
from .grabcut_widget import GrabCutPanel
from ..layers import (TASK_SUFFIX, TASK_TITLES, TASKS, annotated_flags, class_names, ensure_label_layers,
                     label_layers, plane_name, plane_of, set_class_names, source_images, style_label_layer)
from ..summary import PlaneSummary, painted_planes, summarize_plane
from .tooltips import tip

SHORTCUTS = {DETECTION: "Alt-1", SEPARATION: "Alt-2", SEGMENTATION: "Alt-3"}
COLUMNS = ("image", "blobs", "scribbles", "masks")
#: Shown in a cell when the image is not annotated for that column's task.
NOT_ANNOTATED = "-"


def parse_class_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or ["nucleus"]


class AnnotationWidget(QWidget):
    """Dock widget: lazy-label layers, class names, shortcuts, GrabCut and the summary."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.image_combo = QComboBox()
        self.image_combo.setToolTip(tip("image"))
        self.image_combo.currentTextChanged.connect(self._image_changed)
        self.class_edit = QLineEdit("nucleus")
        self.class_edit.setToolTip(tip("class_names"))
        self.class_edit.editingFinished.connect(self.apply_class_names)
        self.add_button = QPushButton("Add lazy-label layers")
        self.add_button.setToolTip(tip("add_layers"))
        self.add_button.clicked.connect(self.add_layers)
        self.task_buttons = {}
        row = QHBoxLayout()
        for task in TASKS:
            b = QPushButton(f"{TASK_TITLES[task]} ({SHORTCUTS[task]})")
            b.setToolTip(tip(TASK_SUFFIX[task]))
            b.clicked.connect(lambda _=False, t=task: self.select_task(t))
            row.addWidget(b)
            self.task_buttons[task] = b
        self.grabcut = GrabCutPanel(napari_viewer, self.current_image, self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setToolTip(tip("summary"))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumWidth(340)
        self.legend = QLabel("Per image: blobs per class, scribble length, mask coverage; "
                             f"'{NOT_ANNOTATED}': not annotated for that task.")
        self.legend.setWordWrap(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        form = QFormLayout()
        form.addRow("Image", self.image_combo)
        form.addRow("Classes", self.class_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.add_button)
        layout.addLayout(row)
        layout.addWidget(self.grabcut)
        layout.addWidget(self.table)
        layout.addWidget(self.legend)
        self.summaries: list[PlaneSummary] = []
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(300)
        self._summary_timer.timeout.connect(self.refresh_summary)
        self.viewer.layers.events.inserted.connect(self._layers_changed)
        self.viewer.layers.events.removed.connect(self._layers_changed)
        for layer in self.viewer.layers:
            self._watch(layer)
        for task, key in SHORTCUTS.items():
            self.viewer.bind_key(key, self._shortcut(task), overwrite=True)
        self._refresh_images()
        self.refresh_summary()

    # -- images and layers --------------------------------------------------------------
    def current_image(self):
        name = self.image_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _refresh_images(self) -> None:
        names = [layer.name for layer in source_images(self.viewer)]
        if set_combo_items(self.image_combo, names):
            self._image_changed(self.image_combo.currentText())

    def _image_changed(self, _name: str = "") -> None:
        image = self.current_image()
        if image is not None:
            self.class_edit.setText(", ".join(class_names(image)))

    def _watch(self, layer) -> None:
        layer.events.name.connect(self._layers_changed)
        if layer.__class__.__name__ == "Labels":
            layer.events.paint.connect(self._schedule_summary)
            layer.events.data.connect(self._schedule_summary)

    def _layers_changed(self, event=None) -> None:
        if event is not None and getattr(event, "type", "") == "inserted":
            self._watch(event.value)
        self._refresh_images()
        self._schedule_summary()

    def _schedule_summary(self, event=None) -> None:
        self._summary_timer.start()

    def apply_class_names(self) -> None:
        """Store the class names on the image and restyle its label layers."""
        image = self.current_image()
        if image is None:
            return
        names = parse_class_names(self.class_edit.text())
        set_class_names(image, names)
        for task, layer in label_layers(self.viewer, image.name).items():
            style_label_layer(layer, task, names)
        self._schedule_summary()

    def add_layers(self) -> dict:
        """Add (or find) the three lazy-label layers of the chosen image."""
        image = self.current_image()
        if image is None:
            show_warning("open an image first (File > Open, or File > Open Sample > napari-lazylabels)")
            return {}
        names = parse_class_names(self.class_edit.text())
        set_class_names(image, names)
        layers = ensure_label_layers(self.viewer, image, names)
        self.select_task(DETECTION)
        self._schedule_summary()
        return layers

    def select_task(self, task: str):
        """Make the task's layer of the chosen image active, in paint mode."""
        image = self.current_image()
        if image is None:
            return None
        layers = label_layers(self.viewer, image.name)
        if task not in layers:
            layers = ensure_label_layers(self.viewer, image, class_names(image))
        layer = layers[task]
        layer.visible = True
        self.viewer.layers.selection.active = layer
        layer.mode = "paint"
        return layer

    def _shortcut(self, task: str):
        def switch(viewer):
            try:
                self.select_task(task)
            except RuntimeError:      # the widget was closed (its Qt objects are gone)
                pass
        switch.__doc__ = f"Paint {TASK_TITLES[task].lower()} of the lazy-labels image"
        return switch

    # -- summary ------------------------------------------------------------------------
    def compute_summaries(self) -> list[PlaneSummary]:
        """One summary per painted plane of every image that has lazy-label layers."""
        out = []
        for image in source_images(self.viewer):
            layers = label_layers(self.viewer, image.name)
            if not layers:
                continue
            stacks = {t: layer.data for t, layer in layers.items()}
            shapes = {tuple(np.shape(d)) for d in stacks.values()}
            if len(shapes) != 1:
                continue
            for plane in painted_planes(stacks):
                planes = {t: np.asarray(plane_of(d, plane)) for t, d in stacks.items()}
                out.append(summarize_plane(plane_name(image.name, plane), planes,
                                           annotated_flags(image, plane)))
        return out

    def refresh_summary(self) -> None:
        self.summaries = self.compute_summaries()
        image = self.current_image()
        names = class_names(image) if image is not None else ["nucleus"]
        self.table.setRowCount(len(self.summaries))
        for r, s in enumerate(self.summaries):
            cells = (s.name,
                     s.blob_text(names) if DETECTION in s.annotated else NOT_ANNOTATED,
                     f"{s.scribble_px} px" if SEPARATION in s.annotated else NOT_ANNOTATED,
                     f"{100 * s.mask_coverage:.1f} %" if SEGMENTATION in s.annotated else NOT_ANNOTATED)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{s.name}: annotated for {', '.join(s.annotated) or 'nothing'}")
                self.table.setItem(r, c, item)

    def shutdown(self) -> None:
        self._summary_timer.stop()
        self.grabcut.shutdown()
