"""GrabCut drafts of strong masks from the blobs of the current plane (METHOD 7).

GrabCut runs in a background thread on copies of the plane; its drafts are
then written into the masks layer only where that layer is still empty *at
that moment* (the user may have painted meanwhile), as one undoable edit.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QLabel, QPushButton, QSpinBox,
                            QVBoxLayout)

from ...engine.grabcut import grabcut_drafts
from ...engine.labels import blob_components
from ...engine.regimes import registry
from .background import BackgroundCall
from ..layers import class_names, current_plane, ensure_label_layers, label_layers, plane_data
from .tooltips import tip

SCOPES = ("all blobs of the plane", "blobs of the selected class", "blobs in view")


def blobs_in_scope(blobs: np.ndarray, scope: str, selected_class: int = 1,
                   view: tuple[int, int, int, int] | None = None) -> list[int] | None:
    """Component ids (of :func:`blob_components`) to draft; None means all."""
    if scope == SCOPES[0]:
        return None
    comps, classes = blob_components(blobs)
    if scope == SCOPES[1]:
        return [i for i, c in classes.items() if c == selected_class]
    y0, x0, y1, x1 = view if view is not None else (0, 0, *blobs.shape)
    seen = np.unique(comps[max(y0, 0):y1, max(x0, 0):x1])
    return [int(i) for i in seen if i > 0]


def apply_drafts(masks_layer, plane: tuple[int, ...], drafts: np.ndarray) -> int:
    """Write drafts into ``masks_layer`` where it is 0, as one undoable edit; return the pixel count."""
    current = plane_data(masks_layer, plane)
    if current.shape != drafts.shape:
        raise ValueError(f"layer '{masks_layer.name}' changed shape while GrabCut ran")
    new = (drafts > 0) & (current == 0)
    ys, xs = np.nonzero(new)
    if len(ys) == 0:
        return 0
    top = np.iinfo(masks_layer.data.dtype).max if masks_layer.data.dtype.kind in "iu" else None
    values = drafts[ys, xs]
    if top is not None and values.max() > top:
        raise ValueError(f"class {int(values.max())} does not fit layer '{masks_layer.name}' "
                         f"({masks_layer.data.dtype})")
    indices = tuple(np.full(len(ys), i, dtype=np.intp) for i in plane) + (ys, xs)
    masks_layer.data_setitem(indices, values.astype(masks_layer.data.dtype))
    return int(len(ys))


class GrabCutPanel(QGroupBox):
    """A button that drafts strong masks from blobs; part of the annotation widget."""

    def __init__(self, viewer, get_image: Callable[[], object], parent=None):
        super().__init__("GrabCut drafts of strong masks", parent)
        self.viewer = viewer
        self._get_image = get_image
        self.scope = QComboBox()
        self.scope.addItems(SCOPES)
        self.scope.setToolTip(tip("grabcut_scope"))
        self.iterations = QSpinBox()
        self.iterations.setRange(0, 20)
        self.iterations.setValue(3)
        self.iterations.setToolTip(tip("grabcut_iterations"))
        self.button = QPushButton("Draft masks from blobs")
        self.button.setToolTip(tip("grabcut"))
        self.button.clicked.connect(self.draft)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Blobs", self.scope)
        form.addRow("Iterations", self.iterations)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.button)
        layout.addWidget(self.status)
        self._call = BackgroundCall(self)
        self.last_count: int | None = None

    @property
    def busy(self) -> bool:
        return self._call.busy

    def _view_box(self, layer) -> tuple[int, int, int, int] | None:
        try:
            corners = np.asarray(layer.corner_pixels)
            return int(corners[0, -2]), int(corners[0, -1]), int(corners[1, -2]) + 1, int(corners[1, -1]) + 1
        except (AttributeError, IndexError, ValueError):
            return None

    def draft(self) -> None:
        """Draft masks for the current plane of the chosen image (in the background)."""
        if self._call.busy:
            show_info("GrabCut is still running")
            return
        image_layer = self._get_image()
        if image_layer is None:
            show_warning("choose an image first")
            return
        layers = label_layers(self.viewer, image_layer.name)
        pair = registry.draft_inputs()
        if pair is None:
            show_error("no kind of lazy label can be drafted with GrabCut")
            return
        source, target = pair
        if source.key not in layers:
            show_error(f"{image_layer.name}: paint {source.title.lower()} first ({source.shortcut or 'its button'})")
            return
        if target.key not in layers:          # the drafts go into the masks layer, made now if never painted
            layers.update(ensure_label_layers(self.viewer, image_layer, class_names(image_layer), [target.key]))
            self.viewer.layers.selection.active = layers[source.key]
        blobs_layer, masks_layer = layers[source.key], layers[target.key]
        plane = current_plane(self.viewer, image_layer)
        try:
            image = np.array(plane_data(image_layer, plane))
            blobs = np.array(plane_data(blobs_layer, plane))
            existing = np.array(plane_data(masks_layer, plane))
            only = blobs_in_scope(blobs, self.scope.currentText(), int(blobs_layer.selected_label),
                                  self._view_box(blobs_layer))
        except (IndexError, ValueError) as exc:
            show_error(f"{image_layer.name}: {exc}")
            return
        if not blobs.any() or only == []:
            show_warning(f"{blobs_layer.name}: no blobs to draft from on this plane")
            return
        iterations = self.iterations.value()
        self.button.setEnabled(False)
        self.status.setText("drafting...")
        self.last_count = None

        def work() -> np.ndarray:
            return grabcut_drafts(image, blobs, existing, iterations=iterations, only=only)

        def done(drafts: np.ndarray) -> None:
            self.button.setEnabled(True)
            if masks_layer not in self.viewer.layers:
                self.status.setText("the masks layer was removed; nothing written")
                return
            try:
                n = apply_drafts(masks_layer, plane, drafts)
            except ValueError as exc:
                self._failed(str(exc))
                return
            self.last_count = n
            self.status.setText(f"{n} px drafted into '{masks_layer.name}' (Ctrl-Z there undoes it)")

        self._call.start(work, done, self._failed)

    def _failed(self, message: str) -> None:
        self.button.setEnabled(True)
        self.status.setText("GrabCut failed; nothing was changed")
        self.last_count = -1
        show_error(message)

    def shutdown(self) -> None:
        self._call.wait(10.0)
