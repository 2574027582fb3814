"""The lazy annotation widget: label layers for an image, class names, shortcuts, live summary.

Pick an image layer and press the button (or shortcut: Alt-1, Alt-2, ...) of
the kind of lazy label to paint: its layer (``blobs · <image>``,
``interfaces · <image>``, ``masks · <image>``...) appears then, with its own
colours and brush size, and becomes the layer painted on; a kind never
painted gets no layer. A colour legend of the kinds sits under the buttons. The table below lists, per image (per plane of a stack), what
has been painted, one column per kind, refreshed shortly after each stroke.
GrabCut drafts of strong masks live in this widget too (:mod:`.grabcut_widget`), and so do
machine-made points and foreground masks for review (:mod:`.autolabel_widget`). An input
whose layer type is ``points`` gets a Points layer (one click per object; its shortcut
switches to adding points).
Nothing here names a regime: the buttons, layers and columns come from the registry.
"""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (QComboBox, QFormLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableWidget,
                            QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from ...engine.regimes import registry
from ..layers import (annotated_flags, class_names, ensure_label_layers, input_keys, input_plane, input_spec,
                      label_layers, layer_values, leading_shape, plane_name, set_class_names, source_images,
                      style_label_layer)
from ..summary import NOT_ANNOTATED, PlaneSummary, painted_planes, summarize_plane
from .combo import set_combo_items
from .fit import button_grid, compact_combos, FittedDock, ShortButton, scrolled
from .autolabel_widget import AutolabelPanel
from .grabcut_widget import GrabCutPanel
from .legend import KindsLegend, swatch
from .tooltips import tip


def columns() -> tuple[str, ...]:
    """The summary table's columns: the image, then one per input (its suffix)."""
    return ("image", *(input_spec(k).suffix for k in input_keys()))


def parse_class_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or ["cell"]


class AnnotationWidget(FittedDock):
    """Dock widget: lazy-label layers, class names, shortcuts, GrabCut and the summary."""

    HEIGHT = 560

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.image_combo = QComboBox()
        self.image_combo.setToolTip(tip("image"))
        self.image_combo.currentTextChanged.connect(self._image_changed)
        self.class_edit = QLineEdit("cell")
        self.class_edit.setToolTip(tip("class_names"))
        self.class_edit.editingFinished.connect(self.apply_class_names)
        titles = ", ".join(input_spec(k).title.lower() for k in input_keys())
        self.input_buttons = {}
        for key in input_keys():
            spec = input_spec(key)
            # where "title (Alt-4)" would be cut (a laptop's dock), the button shows the title alone
            b = ShortButton(f"{spec.title} ({spec.shortcut})", spec.title) if spec.shortcut \
                else QPushButton(spec.title)
            b.setToolTip(tip("input_button", tooltip=spec.tooltip, shortcut=spec.shortcut or "-"))
            b.setIcon(swatch(spec.colours(1)[1]))
            b.clicked.connect(lambda _=False, k=key: self.select_input(k))
            self.input_buttons[key] = b
        self.grabcut = GrabCutPanel(napari_viewer, self.current_image, self)
        self.autolabel = AutolabelPanel(napari_viewer, self.current_image, self) \
            if registry.machine_label_inputs() is not None else None
        self.columns = columns()
        self.table = QTableWidget(0, len(self.columns))
        self.table.setHorizontalHeaderLabels(self.columns)
        self.table.setToolTip(tip("summary", titles=titles))
        self.table.verticalHeader().setVisible(False)
        # every column shares the dock's width (no horizontal scroll bar); a cut header shows in full as a tooltip
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setMinimumSectionSize(24)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for c, text in enumerate(self.columns):
            self.table.horizontalHeaderItem(c).setToolTip(text)
        self.table.setMinimumHeight(4 * self.table.verticalHeader().defaultSectionSize()
                                    + self.table.horizontalHeader().sizeHint().height() + 4)
        self.legend = QLabel(f"Per image, what is painted of each kind; '{NOT_ANNOTATED}': not annotated "
                             "for it.")
        self.legend.setWordWrap(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.kinds_legend = KindsLegend()
        self.kinds_legend.setToolTip(tip("kinds_legend"))
        self.status = QLabel("Press a kind to paint it on the image: its layer appears then.")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Image", self.image_combo)
        form.addRow("Classes", self.class_edit)
        summary = QWidget()
        summary_layout = QVBoxLayout(summary)
        summary_layout.setContentsMargins(2, 2, 2, 2)
        summary_layout.addWidget(self.table, 1)
        summary_layout.addWidget(self.legend)
        self.tabs = QTabWidget()
        self.tabs.addTab(summary, "Painted")
        self.tabs.addTab(scrolled(self.grabcut), "GrabCut")
        if self.autolabel is not None:
            self.tabs.addTab(scrolled(self.autolabel), "Autolabel")
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(button_grid(self.input_buttons.values()))
        layout.addWidget(self.kinds_legend)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scrolled(body))     # a short dock scrolls; it never pushes the window past the screen
        compact_combos(self)
        self.summaries: list[PlaneSummary] = []
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(300)
        self._summary_timer.timeout.connect(self.refresh_summary)
        self.viewer.layers.events.inserted.connect(self._layers_changed)
        self.viewer.layers.events.removed.connect(self._layers_changed)
        for layer in self.viewer.layers:
            self._watch(layer)
        for key in input_keys():
            shortcut = input_spec(key).shortcut
            if shortcut:
                self.viewer.bind_key(shortcut, self._shortcut(key), overwrite=True)
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
        self._show_legend()
        if getattr(self, "autolabel", None) is not None:
            self.autolabel.refresh_channels()

    def _watch(self, layer) -> None:
        layer.events.name.connect(self._layers_changed)
        if layer.__class__.__name__ == "Labels":
            layer.events.paint.connect(self._schedule_summary)
            layer.events.data.connect(self._schedule_summary)
        elif layer.__class__.__name__ == "Points":
            layer.events.data.connect(self._schedule_summary)
            layer.events.features.connect(self._schedule_summary)

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
        for key, layer in label_layers(self.viewer, image.name).items():
            style_label_layer(layer, key, names)
        self._show_legend()
        self._schedule_summary()

    def _show_legend(self) -> None:
        image = self.current_image()
        names = class_names(image) if image is not None else parse_class_names(self.class_edit.text())
        self.kinds_legend.show_kinds(input_keys(), names)

    def add_layers(self, keys=None) -> dict:
        """Add (or find) the lazy-label layers of the chosen image for ``keys`` (every kind when None; the
        buttons add one kind each, when it is first painted): input key -> layer."""
        image = self.current_image()
        if image is None:
            show_warning("open an image first (File > Open, or File > Open Sample > napari-lazylabels)")
            return {}
        names = parse_class_names(self.class_edit.text())
        set_class_names(image, names)
        layers = ensure_label_layers(self.viewer, image, names, keys)
        self.select_input(next(iter(layers)))
        self._schedule_summary()
        return layers

    def select_input(self, key: str):
        """Make the input's layer of the chosen image active, in paint mode (added now if the image has none)."""
        image = self.current_image()
        if image is None:
            return None
        layers = label_layers(self.viewer, image.name)
        if key not in layers:
            layers = ensure_label_layers(self.viewer, image, class_names(image), [key])
        layer = layers[key]
        layer.visible = True
        self.viewer.layers.selection.active = layer
        layer.mode = "add" if input_spec(key).is_points else "paint"
        return layer

    def _shortcut(self, key: str):
        def switch(viewer):
            try:
                self.select_input(key)
            except RuntimeError:      # the widget was closed (its Qt objects are gone)
                pass
        switch.__doc__ = f"Paint {input_spec(key).title.lower()} of the lazy-labels image"
        return switch

    # -- summary ------------------------------------------------------------------------
    def compute_summaries(self) -> list[PlaneSummary]:
        """One summary per painted plane of every image that has lazy-label layers."""
        out = []
        for image in source_images(self.viewer):
            layers = label_layers(self.viewer, image.name)
            if not layers:
                continue
            stacks = {k: layer_values(layer) for k, layer in layers.items()}
            shapes = {tuple(np.shape(d)) for k, d in stacks.items() if not input_spec(k).is_points}
            if len(shapes) > 1:
                continue
            names = class_names(image)
            for plane in painted_planes(stacks, len(leading_shape(image))):
                planes = {k: input_plane(k, d, plane) for k, d in stacks.items()}
                out.append(summarize_plane(plane_name(image.name, plane), planes, names,
                                           annotated_flags(image, plane)))
        return out

    def refresh_summary(self) -> None:
        self.summaries = self.compute_summaries()
        self.table.setRowCount(len(self.summaries))
        for r, s in enumerate(self.summaries):
            cells = (s.name, *(s.cell(k) for k in input_keys()))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{s.name}: annotated for {', '.join(s.annotated) or 'nothing'}")
                self.table.setItem(r, c, item)

    def shutdown(self) -> None:
        self._summary_timer.stop()
        self.grabcut.shutdown()
        if self.autolabel is not None:
            self.autolabel.shutdown()
