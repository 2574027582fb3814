"""Export: one click writes an image, its lazy labels and its predictions into a project.

A 2D image becomes one OME-Zarr store ``<image>.ome.zarr`` in the project
folder; each plane of a stack becomes ``<image>_003.ome.zarr`` with
``metadata["stack"]`` recording where it came from, so the reader rebuilds the
stack. Empty lazy-label layers are left out (the image is not annotated for
that task) unless the task is marked annotated on that plane; predicted planes get ``semantic``, ``instances`` and the per-task
probabilities (kept in the objects layer, shown or not). Images already in the project are replaced only after a yes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                            QPushButton, QVBoxLayout, QWidget)

from ...io.ngff import STORE_SUFFIX
from ...io.ome_zarr import ImageStore
from ...io.project import add_to_project, is_project, read_project_info
from .background import BackgroundCall
from .combo import set_combo_items
from ..layers import (annotated_flags, class_names, find_layer, input_plane, input_spec, label_layers, layer_values,
                      leading_shape, pixel_size_of, plane_data, plane_name, planes, source_images)
from .dialogs import ask_overwrite
from .predictions import stored_outputs
from .tooltips import tip


def stores_for_image(viewer, image_layer) -> list[ImageStore]:
    """The stores to write for an image: one per plane (copies of the layers' data)."""
    names = class_names(image_layer)
    lazy = label_layers(viewer, image_layer.name)
    cells = find_layer(viewer, image_layer.name, "instances", "labels")
    classes = find_layer(viewer, image_layer.name, "semantic", "labels")
    lead = leading_shape(image_layer)
    out = []
    for plane in planes(image_layer):
        labels, points = {}, {}
        marks = annotated_flags(image_layer, plane)
        for task, layer in lazy.items():
            if input_spec(task).is_points:
                data = input_plane(task, layer_values(layer), plane)
                if len(data) or marks.get(task):
                    points[task] = data
                continue
            data = np.array(plane_data(layer, plane))
            if data.any() or marks.get(task):     # marked annotated: kept even when empty
                labels[task] = data
        probs, semantic, _ = stored_outputs(viewer, image_layer.name, plane)
        if probs and cells is not None:
            labels["instances"] = np.array(plane_data(cells, plane))
            if classes is not None or semantic is not None:
                labels["semantic"] = np.array(plane_data(classes, plane) if classes is not None else semantic)
        meta = {"class_names": names, "source": "napari"}
        if marks:
            meta["annotated"] = {t: True for t in marks if t in labels or t in points}
        if lead:
            meta["stack"] = {"name": image_layer.name, "plane": list(plane), "shape": list(lead)}
        out.append(ImageStore(image=np.array(plane_data(image_layer, plane)), labels=labels,
                              probabilities={k: np.asarray(v, np.float32) for k, v in probs.items()},
                              name=plane_name(image_layer.name, plane), metadata=meta,
                              pixel_size=pixel_size_of(image_layer), points=points))
    return out


def existing_names(folder: Path, names: list[str]) -> list[str]:
    """Which of ``names`` the project (or the folder) holds already."""
    inside = set()
    if is_project(folder):
        inside = {e["name"] for e in read_project_info(folder)["images"]}
    return [n for n in names if n in inside or (folder / (n + STORE_SUFFIX)).exists()]


def write_stores(folder: Path, stores: list[ImageStore], overwrite: bool) -> Path:
    for store in stores:
        add_to_project(folder, store, overwrite=overwrite)
    return folder


class ExportWidget(QWidget):
    """Dock widget: image, project folder, Export."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.image_combo = QComboBox()
        self.image_combo.setToolTip(tip("export_image"))
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("project folder, e.g. ~/lazylabels-project")
        self.folder_edit.setToolTip(tip("export_folder"))
        browse = QPushButton("...")
        browse.setMaximumWidth(32)
        browse.clicked.connect(self._browse)
        self.export_button = QPushButton("Export to project")
        self.export_button.setToolTip(tip("export"))
        self.export_button.clicked.connect(self.export)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Image", self.image_combo)
        form.addRow("Project", row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.export_button)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._call = BackgroundCall(self)
        self.last_export: Path | None = None
        self.viewer.layers.events.inserted.connect(self._refresh)
        self.viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _refresh(self, event=None) -> None:
        if event is not None and getattr(event, "type", "") == "inserted":
            event.value.events.name.connect(self._refresh)
        names = [layer.name for layer in source_images(self.viewer)]
        set_combo_items(self.image_combo, names)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Project folder (existing or new)")
        if path:
            self.folder_edit.setText(path)

    def export(self) -> None:
        """Write the chosen image into the project (in the background); ask before replacing."""
        if self._call.busy:
            show_info("an export is still running")
            return
        name = self.image_combo.currentText()
        folder_text = self.folder_edit.text().strip()
        if name not in self.viewer.layers:
            show_warning("choose an image to export")
            return
        if not folder_text:
            show_warning("choose a project folder first")
            return
        folder = Path(folder_text).expanduser()
        try:
            stores = stores_for_image(self.viewer, self.viewer.layers[name])
            clash = existing_names(folder, [s.name for s in stores])
        except Exception as exc:  # a bad project folder, a bad layer: say so, write nothing
            show_error(str(exc))
            return
        overwrite = False
        if clash:
            what = f"'{clash[0]}'" + (f" and {len(clash) - 1} more" if len(clash) > 1 else "")
            if not ask_overwrite(self, f"{what} in project {folder}"):
                self.status.setText("export cancelled; nothing was written")
                return
            overwrite = True
        self.export_button.setEnabled(False)
        self.status.setText(f"exporting {name}...")

        def done(path: Path) -> None:
            self.export_button.setEnabled(True)
            self.last_export = path
            self.status.setText(f"exported {name} ({len(stores)} store(s)) to {path}")
            show_info(f"exported {name} to {path}")

        def failed(message: str) -> None:
            self.export_button.setEnabled(True)
            self.status.setText("export failed")
            show_error(message)

        self._call.start(lambda: write_stores(folder, stores, overwrite), done, failed)

    @property
    def busy(self) -> bool:
        return self._call.busy

    def shutdown(self) -> None:
        self._call.wait(60.0)
