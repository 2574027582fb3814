"""Save / Load / Export a model, and Predict on any image layer with it (part of the training widget).

The current model is a folder: the training's last checkpoint, or a model the
user loaded (a folder, or a bioimage.io package written by Export model).
Prediction runs in the background on copies of the image planes, with the
post-processing of the training form; its layers are those of :mod:`.predictions`.
*Predict selected* does the same for every selected image layer; *Predict
folder...* runs the batch recipe (:class:`~napari_lazylabels.recipes.predict.Predictor`,
the model loaded once) on every image of a folder, writes each result next to
the others in an output folder (``{stem}_labels.tif`` or ``.zarr``; a failing
image is reported and skipped) and optionally opens the results.
Export model writes a bioimage.io package (:mod:`napari_lazylabels.io.bioimageio`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                            QLineEdit, QMenu, QPushButton, QVBoxLayout)

from ...errors import LazyLabelsError
from ...io.bioimageio import MODALITY_TAGS
from ...engine.trained_model import LazyLabelsModel
from ...engine.postprocess.settings import PostProcessing
from ...io.folder_images import images_to_predict
from ...io.imageio import read_image_file
from ...io.inputs import image_stem
from ...io.modelio import load_model, save_model
from ...io.output_paths import plan_outputs
from ...recipes.predict import ImageResult, PredictOptions, Predictor
from ...engine.pipeline import segment_in_memory
from ...engine.prediction_spec import PredictionSpec
from . import remembered
from .background import BackgroundCall
from .combo import set_combo_items
from .fit import button_grid
from .dialogs import ask_overwrite
from ..layers import META, class_names, instances_layer_kwargs, pixel_size_of, plane_data, planes, spatial_placement
from ..reader import read_lazylabels
from .predictions import set_every_head, show_prediction
from .tooltips import tip


#: The export tag choice for "no imaging modality".
NO_MODALITY = "(no imaging tag)"
#: The folder results a user can ask for: instance labels, or everything (an OME-Zarr store per image).
FOLDER_FORMATS = {"labels (.tif)": "{stem}_labels.tif", "OME-Zarr (.zarr)": "{stem}_labels.zarr"}


class ModelPanel(QGroupBox):
    """The current model, Save/Load, and Predict."""

    def __init__(self, viewer, get_device: Callable[[], str] = lambda: "auto", parent=None, *,
                 get_postprocess: Callable[[PostProcessing], PostProcessing] = lambda pp: pp,
                 on_loaded: Callable[[LazyLabelsModel], None] = lambda model: None,
                 on_picked: Callable[[], None] = lambda: None):
        super().__init__("Model", parent)
        self.viewer = viewer
        self._get_device = get_device
        self._get_postprocess = get_postprocess
        self._on_loaded = on_loaded
        self._on_picked = on_picked
        self.model_dir: str | None = None
        self._model: LazyLabelsModel | None = None
        self.label = QLabel("no model yet: train one or load one")
        self.label.setWordWrap(True)
        self.models = QComboBox()
        self.models.setToolTip(tip("models"))
        self.models.currentIndexChanged.connect(self._model_picked)
        self.save_button = QPushButton("Save model as...")
        self.save_button.setToolTip(tip("save_model"))
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button = QPushButton("Load model...")
        self.load_button.setToolTip(tip("load_model"))
        load_menu = QMenu(self.load_button)
        load_menu.addAction("a model folder...", lambda: self.load_model())
        load_menu.addAction("a bioimage.io package (.zip)...", lambda: self.load_model(package=True))
        self.load_button.setMenu(load_menu)
        self.export_button = QPushButton("Export model...")
        self.export_button.setToolTip(tip("export_model"))
        self.export_button.clicked.connect(lambda: self.export_model())
        self.image_combo = QComboBox()
        self.image_combo.setToolTip(tip("predict_image"))
        self.predict_button = QPushButton("Predict")
        self.predict_button.setToolTip(tip("predict"))
        self.predict_button.clicked.connect(self.predict)
        self.predict_selected_button = QPushButton("Predict selected")
        self.predict_selected_button.setToolTip(tip("predict_selected"))
        self.predict_selected_button.clicked.connect(lambda: self.predict_selected())
        self.predict_folder_button = QPushButton("Predict folder...")
        self.predict_folder_button.setToolTip(tip("predict_folder"))
        self.predict_folder_button.clicked.connect(lambda: self.predict_folder())
        self.folder_format = QComboBox()
        self.folder_format.addItems(list(FOLDER_FORMATS))
        self.folder_format.setToolTip(tip("predict_folder_format"))
        stored = remembered.load("export")
        self.authors = QLineEdit(str(stored.get("authors", "")))
        self.authors.setPlaceholderText("your name, a colleague's")
        self.authors.setToolTip(tip("export_authors"))
        self.modality = QComboBox()
        self.modality.addItems([NO_MODALITY, *MODALITY_TAGS])
        self.modality.setCurrentText(str(stored.get("modality", NO_MODALITY)))
        self.modality.setToolTip(tip("export_modality"))
        for signal in (self.authors.editingFinished, self.modality.currentTextChanged):
            signal.connect(lambda *_: remembered.save("export", {"authors": self.authors.text(),
                                                                 "modality": self.modality.currentText()}))
        self.every_head = QCheckBox("Show every head")
        self.every_head.setToolTip(tip("every_head"))
        self.every_head.toggled.connect(lambda on: set_every_head(self.viewer, on, class_names))
        self.open_results = QCheckBox("open the results")
        self.open_results.setToolTip(tip("predict_folder_open"))
        models = QFormLayout()
        models.addRow("Models", self.models)
        row = button_grid((self.save_button, self.load_button, self.export_button), columns=2)
        form = QFormLayout()
        form.addRow("Predict on", self.image_combo)
        form.addRow("", self.every_head)
        layout = QVBoxLayout(self)
        layout.addLayout(models)
        layout.addWidget(self.label)
        layout.addLayout(row)
        layout.addWidget(self.predict_button)
        many = QHBoxLayout()
        many.addWidget(self.predict_selected_button)
        many.addWidget(self.predict_folder_button)
        layout.addLayout(many)
        layout.addLayout(form)
        form.addRow("Results as", self.folder_format)
        form.addRow("", self.open_results)
        form.addRow("Authors", self.authors)
        form.addRow("Tag", self.modality)
        layout.addStretch(1)
        self._call = BackgroundCall(self)
        self.predicted: list[tuple[int, ...]] = []
        self.folder_results: list[ImageResult] = []
        self.left_out: dict[Path, str] = {}
        self._update_buttons()

    # -- the models of the session ---------------------------------------------------------
    def add_model(self, path: str, description: str) -> None:
        """Add a model (trained or loaded) to the list, or update its entry, and make it the current one."""
        self.models.blockSignals(True)
        index = self.models.findData(str(path))
        if index < 0:
            self.models.addItem(description, str(path))
            index = self.models.count() - 1
        else:
            self.models.setItemText(index, description)
        self.models.setItemData(index, description, Qt.ItemDataRole.ToolTipRole)
        self.models.setCurrentIndex(index)
        self.models.blockSignals(False)
        self.set_model_dir(str(path), f"model: {description}")

    def _model_picked(self, index: int) -> None:
        if index >= 0:
            self.set_model_dir(self.models.itemData(index), f"model: {self.models.itemText(index)}")
            self._on_picked()

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
        for button in (self.predict_button, self.predict_selected_button, self.predict_folder_button):
            button.setEnabled(has and not self._call.busy)

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
        self.label.setText(f"exporting to {target.name}...")
        self._busy_buttons()

        authors = [a for a in self.authors.text().split(",") if a.strip()]
        tags = [] if self.modality.currentText() == NO_MODALITY else [self.modality.currentText()]

        def work():
            from ...io.bioimageio import DEFAULT_NAME, export_bioimageio, package_name
            name = package_name(Path(self.model_dir).name) if self.model_dir else DEFAULT_NAME
            return export_bioimageio(model, target, name=name, overwrite=overwrite, authors=authors, tags=tags)

        def done(out) -> None:
            self._update_buttons()
            self.label.setText(f"exported to {out}")
            show_info(f"bioimage.io package written to {out}")

        def failed(message: str) -> None:
            self._update_buttons()
            self.label.setText("export failed; nothing was written")
            show_error(message)

        self._call.start(work, done, failed)

    def load_model(self, path: str | None = None, package: bool = False) -> LazyLabelsModel | None:
        """Load a model folder or (``package``) a bioimage.io .zip; it joins the list and becomes current."""
        if path is None and package:
            path, _ = QFileDialog.getOpenFileName(self, "Load a bioimage.io model package", "",
                                                  "bioimage.io package (*.zip)")
        elif path is None:
            path = QFileDialog.getExistingDirectory(self, "Load a model folder")
        if not path:
            return None
        try:
            model = load_model(path)
        except LazyLabelsError as exc:
            show_error(str(exc))
            return None
        steps = model.provenance.get("trained_steps", "?")
        self.add_model(str(path), f"{Path(path).name} (loaded, {steps} steps)")
        self._model = model
        self._on_loaded(model)
        return model

    # -- predict -------------------------------------------------------------------------
    def _busy_buttons(self) -> None:
        for button in (self.export_button, self.predict_button, self.predict_selected_button,
                       self.predict_folder_button):
            button.setEnabled(False)

    def _prediction_settings(self) -> tuple[LazyLabelsModel, PredictionSpec] | None:
        """The model, and the spec of the form (its device and post-processing); None (with an error shown)
        if either fails."""
        try:
            model = self.model()
            return model, PredictionSpec.resolve(model, device=self._get_device(),
                                                 postprocess=self._get_postprocess(model.postprocess))
        except LazyLabelsError as exc:
            show_error(str(exc))
            return None

    def predict(self) -> None:
        """Segment every plane of the chosen image in the background, then show the layers."""
        name = self.image_combo.currentText()
        if name not in self.viewer.layers:
            show_warning("choose an image to predict on")
            return
        self._predict_layers([self.viewer.layers[name]])

    def predict_selected(self) -> None:
        """:meth:`predict` every selected image layer (one background job; a failing image is reported and
        the others are shown)."""
        from napari.layers import Image
        layers = [layer for layer in self.viewer.layers if layer in self.viewer.layers.selection
                  and isinstance(layer, Image) and layer.name in self._image_names()]
        if not layers:
            show_warning("select one or more image layers to predict on")
            return
        self._predict_layers(layers)

    def _image_names(self) -> set[str]:
        return {self.image_combo.itemText(i) for i in range(self.image_combo.count())}

    def _predict_layers(self, layers) -> None:
        settings = self._prediction_settings()
        if settings is None:
            return
        model, spec = settings
        todo = [(layer, pixel_size_of(layer), [(p, np.array(plane_data(layer, p))) for p in planes(layer)])
                for layer in layers]
        names = ", ".join(layer.name for layer in layers)
        self._busy_buttons()
        self.label.setText(f"predicting {sum(len(t[2]) for t in todo)} plane(s) of {names}...")

        def work():
            out = []
            for layer, pixel_size, images in todo:
                try:
                    out.append((layer, [(p, segment_in_memory(model, img, spec, pixel_size=pixel_size))
                                        for p, img in images], None))
                except LazyLabelsError as exc:     # this image fails, the others go on
                    out.append((layer, [], f"{layer.name}: {exc}"))
            return out

        def done(results) -> None:
            self._update_buttons()
            shown, failed = [], [error for _, _, error in results if error]
            for layer, segs, error in results:
                if error or layer not in self.viewer.layers:
                    continue
                for p, seg in segs:
                    show_prediction(self.viewer, layer, p, seg.probabilities, seg.semantic, seg.instances,
                                    model.class_names, components=seg.components)
                shown.append(layer.name)
                self.predicted = [p for p, _ in segs]
            self.label.setText(f"predicted {', '.join(shown) or 'nothing'}"
                               + (f"; {len(failed)} failed" if failed else ""))
            for message in failed:
                show_error(message)

        def failed(message: str) -> None:
            self._update_buttons()
            self.label.setText("prediction failed; no layer was changed")
            show_error(message)

        self._call.start(work, done, failed)

    def predict_folder(self, folder: str | None = None, outdir: str | None = None) -> None:
        """Predict every image of ``folder`` into ``outdir`` in the background (the batch recipe: the model
        loaded once, a failing image reported and skipped); existing results are replaced only when the
        user agrees. With *open the results* ticked, the results are opened as layers."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Predict every image of a folder")
            if not folder:
                return
        if outdir is None:
            outdir = QFileDialog.getExistingDirectory(self, "Write the results into a folder")
            if not outdir:
                return
        settings = self._prediction_settings()
        if settings is None:
            return
        model, spec = settings
        template = FOLDER_FORMATS[self.folder_format.currentText()]
        try:
            found = images_to_predict(folder, tuple(FOLDER_FORMATS.values()))
            images = found.images
            if not images:
                show_warning(f"no image to predict in {folder}: {len(found.left_out)} label file(s) only")
                return
            pairs, existing = plan_outputs(images, Path(outdir), template, skip_existing=True)
            overwrite = bool(existing)
            if existing:
                if not ask_overwrite(self, f"{len(existing)} result(s) in '{outdir}'"):
                    return
                pairs, _ = plan_outputs(images, Path(outdir), template, overwrite=True)
        except LazyLabelsError as exc:
            show_error(str(exc))
            return
        opened = self.open_results.isChecked()
        options = PredictOptions(overwrite=overwrite)
        self._busy_buttons()
        skipped = f"; {len(found.left_out)} label file(s) left out" if found.left_out else ""
        self.label.setText(f"predicting {len(pairs)} image(s) of {folder}{skipped}...")
        self.left_out = found.left_out

        def work() -> list[ImageResult]:
            with Predictor(model, spec, options) as predictor:
                return list(predictor.predict_all(pairs))

        def done(results: list[ImageResult]) -> None:
            self._update_buttons()
            good = [r for r in results if r.ok]
            self.folder_results = results
            self.label.setText(f"predicted {len(good)} of {len(results)} image(s) into {outdir}{skipped}")
            for r in results:
                if not r.ok:
                    show_error(r.summary())
            if good:
                show_info(f"{len(good)} result(s) written to {outdir}")
            if opened:
                for r in good:
                    self._open_result(r.image, r.out)

        def failed(message: str) -> None:
            self._update_buttons()
            self.label.setText("folder prediction failed")
            show_error(message)

        self._call.start(work, done, failed)

    def _open_result(self, image: Path, out: Path) -> None:
        """Open a result with its image: a store as the reader shows it, a label TIFF over its image (opened
        unless a layer of that name is open), as the image's objects layer."""
        try:
            if out.suffix.lower() == ".zarr":
                for data, kwargs, kind in read_lazylabels(str(out)):
                    getattr(self.viewer, f"add_{kind}")(data, **kwargs)
                return
            import tifffile
            labels = tifffile.imread(out)
            name = image_stem(image)
            if name not in self.viewer.layers:
                found = read_image_file(image)
                data, rgb, meta = found.data, found.axes.endswith("c") and found.data.shape[-1] in (3, 4), {}
                if found.axes.endswith("c") and not rgb:        # the channels before Y, X, as the reader does
                    data = np.moveaxis(data, -1, -3)
                    meta = {META: {"channel_axis": data.ndim - 3}}
                self.viewer.add_image(data, name=name, rgb=rgb, metadata=meta)
            image_layer = self.viewer.layers[name]
            self.viewer.add_labels(labels.astype(np.int32), **instances_layer_kwargs(name),
                                   **spatial_placement(image_layer))
        except (LazyLabelsError, OSError, ValueError) as exc:
            show_error(f"{out}: cannot be opened ({exc})")

    @property
    def busy(self) -> bool:
        return self._call.busy

    def shutdown(self) -> None:
        self._call.wait(30.0)
