"""Save / Load / Export a model, and Predict on any image layer with it (part of the training widget).

The current model is a folder: the training's last checkpoint, or a model the
user loaded (a folder, or a bioimage.io package written by Export model).
Prediction runs in the background on copies of the image planes, with the
post-processing of the training form; its layers are those of :mod:`.predictions`.
Export model writes a bioimage.io package (:mod:`napari_lazylabels.io.bioimageio`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                            QPushButton, QVBoxLayout)

from ...errors import LazyLabelsError
from ...engine.trained_model import LazyLabelsModel
from ...engine.postprocess.settings import PostProcessing
from ...io.modelio import load_model, save_model
from ...engine.pipeline import segment
from .background import BackgroundCall
from .combo import set_combo_items
from .dialogs import ask_overwrite
from ..layers import pixel_size_of, plane_data, planes
from .predictions import show_prediction
from .tooltips import tip


class ModelPanel(QGroupBox):
    """The current model, Save/Load, and Predict."""

    def __init__(self, viewer, get_device: Callable[[], str] = lambda: "auto", parent=None, *,
                 get_postprocess: Callable[[PostProcessing], PostProcessing] = lambda pp: pp,
                 on_loaded: Callable[[LazyLabelsModel], None] = lambda model: None):
        super().__init__("Model", parent)
        self.viewer = viewer
        self._get_device = get_device
        self._get_postprocess = get_postprocess
        self._on_loaded = on_loaded
        self.model_dir: str | None = None
        self._model: LazyLabelsModel | None = None
        self.label = QLabel("no model yet: train one or load one")
        self.label.setWordWrap(True)
        self.save_button = QPushButton("Save model...")
        self.save_button.setToolTip(tip("save_model"))
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button = QPushButton("Load model...")
        self.load_button.setToolTip(tip("load_model"))
        self.load_button.clicked.connect(lambda: self.load_model())
        self.export_button = QPushButton("Export model...")
        self.export_button.setToolTip(tip("export_model"))
        self.export_button.clicked.connect(lambda: self.export_model())
        self.image_combo = QComboBox()
        self.image_combo.setToolTip(tip("predict_image"))
        self.predict_button = QPushButton("Predict")
        self.predict_button.setToolTip(tip("predict"))
        self.predict_button.clicked.connect(self.predict)
        row = QHBoxLayout()
        row.addWidget(self.save_button)
        row.addWidget(self.load_button)
        row.addWidget(self.export_button)
        form = QFormLayout()
        form.addRow("Predict on", self.image_combo)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addLayout(row)
        layout.addLayout(form)
        layout.addWidget(self.predict_button)
        self._call = BackgroundCall(self)
        self.predicted: list[tuple[int, ...]] = []
        self._update_buttons()

    # -- the current model --------------------------------------------------------------
    def set_model_dir(self, path: str | None, description: str = "") -> None:
        self.model_dir = path
        self._model = None
        self.label.setText(description or (f"model: {path}" if path else "no model yet"))
        self._update_buttons()

    def model(self) -> LazyLabelsModel:
        if self._model is None:
            if not self.model_dir:
                raise LazyLabelsError("no model yet: train one or load one")
            self._model = load_model(self.model_dir)
        return self._model

    def _update_buttons(self) -> None:
        has = self.model_dir is not None
        self.save_button.setEnabled(has)
        self.export_button.setEnabled(has and not self._call.busy)
        self.predict_button.setEnabled(has and not self._call.busy)

    def refresh_images(self, names: list[str]) -> None:
        set_combo_items(self.image_combo, names)

    # -- save / load ---------------------------------------------------------------------
    def save_model(self, path: str | None = None) -> Path | None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save model as a folder", "lazylabels_model")
            if not path:
                return None
        target = Path(path)
        overwrite = False
        if target.exists():
            if not ask_overwrite(self, f"'{target}'"):
                return None
            overwrite = True
        try:
            out = save_model(self.model(), target, overwrite=overwrite)
        except (LazyLabelsError, OSError) as exc:
            show_error(str(exc))
            return None
        show_info(f"model saved to {out}")
        return out

    def export_model(self, path: str | None = None) -> None:
        """Write the current model as a bioimage.io package (.zip), in the background."""
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export a bioimage.io model package",
                                                  "lazylabels_model.zip", "bioimage.io package (*.zip)")
            if not path:
                return
        target = Path(path)
        if target.suffix.lower() != ".zip":
            target = target.with_name(target.name + ".zip")
        overwrite = False
        if target.exists():
            if not ask_overwrite(self, f"'{target}'"):
                return
            overwrite = True
        try:
            model = self.model()
        except LazyLabelsError as exc:
            show_error(str(exc))
            return
        name = Path(self.model_dir).name if self.model_dir else "lazylabels model"
        self.label.setText(f"exporting to {target.name}...")
        self.export_button.setEnabled(False)
        self.predict_button.setEnabled(False)

        def work():
            from ...io.bioimageio import export_bioimageio
            return export_bioimageio(model, target, name=name, overwrite=overwrite)

        def done(out) -> None:
            self._update_buttons()
            self.label.setText(f"exported to {out}")
            show_info(f"bioimage.io package written to {out}")

        def failed(message: str) -> None:
            self._update_buttons()
            self.label.setText("export failed; nothing was written")
            show_error(message)

        self._call.start(work, done, failed)

    def load_model(self, path: str | None = None) -> LazyLabelsModel | None:
        if path is None:
            path = QFileDialog.getExistingDirectory(self, "Load a model folder")
            if not path:
                return None
        try:
            model = load_model(path)
        except LazyLabelsError as exc:
            show_error(str(exc))
            return None
        steps = model.provenance.get("trained_steps", "?")
        self.set_model_dir(str(path), f"model: {Path(path).name} (loaded, {steps} steps)")
        self._model = model
        self._on_loaded(model)
        return model

    # -- predict -------------------------------------------------------------------------
    def predict(self) -> None:
        """Segment every plane of the chosen image in the background, then show the layers."""
        name = self.image_combo.currentText()
        if name not in self.viewer.layers:
            show_warning("choose an image to predict on")
            return
        layer = self.viewer.layers[name]
        try:
            model = self.model()
        except LazyLabelsError as exc:
            show_error(str(exc))
            return
        todo = [(p, np.array(plane_data(layer, p))) for p in planes(layer)]
        device = self._get_device()
        try:
            postprocess = self._get_postprocess(model.postprocess)
        except LazyLabelsError as exc:
            show_error(str(exc))
            return
        pixel_size = pixel_size_of(layer)
        self.predict_button.setEnabled(False)
        self.label.setText(f"predicting {len(todo)} plane(s) of {name}...")

        def work():
            return [(p, segment(model, img, device=device, postprocess=postprocess, pixel_size=pixel_size))
                    for p, img in todo]

        def done(results) -> None:
            self._update_buttons()
            self.label.setText(f"predicted {name} ({len(results)} plane(s))")
            if layer not in self.viewer.layers:
                return
            for p, seg in results:
                show_prediction(self.viewer, layer, p, seg.probabilities, seg.semantic, seg.instances,
                                model.class_names, components=seg.components)
            self.predicted = [p for p, _ in results]

        def failed(message: str) -> None:
            self._update_buttons()
            self.label.setText("prediction failed; no layer was changed")
            show_error(message)

        self._call.start(work, done, failed)

    @property
    def busy(self) -> bool:
        return self._call.busy

    def shutdown(self) -> None:
        self._call.wait(30.0)
