"""The Train & predict widget: pick images, set up a run, train in the background, watch it.

Training runs in a Python thread (:mod:`.training_worker`); a 100 ms timer on
the GUI thread drains its throttled messages: the progress bar with ETA, the
loss curve per task, the device in use, and the prediction layers of the
preview image, which appear after the first step and are refreshed in place.
Stop keeps the last checkpoint; Resume continues from it (or fine-tunes a
loaded model). Closing the viewer stops the run and waits for its thread.
"""

from __future__ import annotations

import gc
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                            QProgressBar, QPushButton, QTabWidget, QVBoxLayout, QWidget)

from ...engine.regimes import registry
from ...engine.regimes.targets import present_inputs
from ...errors import LazyLabelsError
from ...recipes.train import TrainingPlan, prepare
from . import remembered
from .combo import set_combo_items
from .fit import compact_combos, FittedDock, scrolled
from .job_lifecycle import CloseWatcher, JobHolder, abandon
from ..data import training_set
from .label_picker import LabelLayerPicker
from ..layers import class_names, current_plane, plane_data, source_images
from .loss_plot import LossPlot
from .model_panel import ModelPanel
from .suggest_panel import SuggestPanel
from .predictions import ensure_prediction_layers, show_prediction
from .tooltips import tip
from .session_models import fitted_words, format_seconds, own_instances, session_model_name
from .training_form import TrainSettingsForm
from ..training_worker import Finished, JobSpec, Preview, Progress, Started, TrainingJob


class TrainingTimings:
    """An optional observer of :class:`TrainWidget` (``widget.observer = TrainingTimings()``).

    It records when things happen, for benchmarks, tests and screenshots:
    ``first_preview_s`` (from Train to the first prediction shown),
    ``preview_gui_ms`` (GUI-thread time of each preview refresh). Its two
    switches are for comparisons only: ``lower_priority`` (the training
    thread runs nicer than the GUI, as always without an observer) and
    ``layers_first`` (the empty prediction layers are added before the
    training thread starts, as always without an observer).
    """

    def __init__(self, lower_priority: bool = True, layers_first: bool = True):
        self.lower_priority = lower_priority
        self.layers_first = layers_first
        self.clicked_at: float | None = None
        self.first_preview_s: float | None = None
        self.preview_gui_ms: list[float] = []

    def train_clicked(self) -> None:
        self.clicked_at = time.perf_counter()
        self.first_preview_s = None

    def preview_shown(self, gui_ms: float) -> None:
        self.preview_gui_ms.append(gui_ms)
        if self.first_preview_s is None and self.clicked_at is not None:
            self.first_preview_s = time.perf_counter() - self.clicked_at


class TrainWidget(FittedDock):
    """Dock widget: training settings, Train/Stop/Resume, progress, loss curves, model, predict."""

    HEIGHT = 440

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.image_list = QListWidget()
        self.image_list.setToolTip(tip("train_images"))
        self.image_list.setMaximumHeight(90)
        self.image_list.currentItemChanged.connect(self._highlighted)
        self.image_list.itemChanged.connect(self._highlighted)     # a tick changes which image is shown
        self.label_picker = LabelLayerPicker(napari_viewer, self)
        self.preview_combo = QComboBox()
        self.preview_combo.setToolTip(tip("preview"))
        self.form = TrainSettingsForm()
        self.train_button = QPushButton("Train")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        for b, key, slot in ((self.train_button, "train", self.train), (self.stop_button, "stop", self.stop),
                             (self.resume_button, "resume", self.resume)):
            b.setToolTip(tip(key))
            b.clicked.connect(slot)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.status = QLabel("ready")
        self.status.setWordWrap(True)
        self.device_label = QLabel("device: -")
        self.device_label.setToolTip(tip("device_in_use"))
        self.loss_plot = LossPlot(self)
        self.loss_plot.setToolTip(tip("loss_plot"))
        self.model_panel = ModelPanel(napari_viewer, lambda: self.form.device.value, self,
                                      get_postprocess=self.form.postprocess,
                                      on_loaded=self._model_loaded, on_picked=self._update_buttons)
        self.tabs = QTabWidget()
        self.tabs.setToolTip(tip("train_tabs"))
        data = QWidget()
        top = QFormLayout(data)
        top.setContentsMargins(2, 2, 2, 2)
        top.addRow("Images", self.image_list)
        top.addRow("Preview on", self.preview_combo)
        top.addRow(self.label_picker)
        progress = QWidget()
        watch = QVBoxLayout(progress)
        watch.addWidget(self.device_label)
        watch.addWidget(self.loss_plot)
        watch.addStretch(1)
        for page, title in ((data, "Images"), (self.form.native, "Settings"), (progress, "Progress"),
                            (self.model_panel, "Model")):
            self.tabs.addTab(scrolled(page), title)
        buttons = QHBoxLayout()
        for b in (self.train_button, self.stop_button, self.resume_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)       # Train / Stop / Resume and the progress stay in view on every tab
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.suggest_panel = SuggestPanel(napari_viewer, self.model_panel.model, self, train_on=self.train_on)
        self.tabs.addTab(scrolled(self.suggest_panel), "Next")
        layout.addWidget(self.tabs, 1)
        compact_combos(self)
        self.tabs.setCurrentIndex(int(remembered.load("train_tabs").get("tab", 0)) % self.tabs.count())
        self.tabs.currentChanged.connect(lambda i: remembered.save("train_tabs", {"tab": i}))

        self._holder = JobHolder()
        self.destroyed.connect(self._holder)
        self._watched = None
        self.checkpoint: str | None = None
        self.checkpoint_root: str | None = None
        self.previews = 0
        #: An optional observer (benchmarks, tests, screenshots): see :class:`TrainingTimings`.
        self.observer: TrainingTimings | None = None
        self._pending: Preview | None = None
        self._final: Finished | None = None
        self._written: set = set()
        self._placeholders = None
        self._created: list = []
        self.last_finished: Finished | None = None
        self._class_names: list[str] = []
        self._poll = QTimer(self)
        self._poll.setInterval(100)
        self._poll.timeout.connect(self._drain)
        self.viewer.layers.events.inserted.connect(self._layers_changed)
        self.viewer.layers.events.removed.connect(self._layers_changed)
        for layer in self.viewer.layers:
            layer.events.name.connect(self._layers_changed)
        self._layers_changed()
        self._update_buttons()

    def _model_loaded(self, model) -> None:
        self.form.set_postprocess(model.postprocess)
        self._update_buttons()

    # -- image lists ----------------------------------------------------------------------
    def _layers_changed(self, event=None) -> None:
        if event is not None and getattr(event, "type", "") == "inserted":
            event.value.events.name.connect(self._layers_changed)
        names = [layer.name for layer in source_images(self.viewer)]
        ticked = set(self.selected_image_names())
        highlighted = self.label_picker.image_name
        first = self.image_list.count() == 0
        if names != [self.image_list.item(i).text() for i in range(self.image_list.count())]:
            self.image_list.clear()
            for n in names:
                item = QListWidgetItem(n)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if n in ticked or (first and n == names[0])
                                   else Qt.CheckState.Unchecked)
                self.image_list.addItem(item)
        set_combo_items(self.preview_combo, names)
        self.model_panel.refresh_images(names)
        if self.image_list.currentItem() is None and self.image_list.count():
            rows = [i for i in range(self.image_list.count()) if self.image_list.item(i).text() == highlighted]
            self.image_list.setCurrentRow(rows[0] if rows else 0)
        self._highlighted()

    def _highlighted(self, *_args) -> None:
        self.label_picker.show_image(self.label_image())

    def label_image(self) -> str | None:
        """The image whose label layers are shown: the highlighted row when it is ticked (or nothing is),
        else the first ticked image."""
        item = self.image_list.currentItem()
        ticked = self.selected_image_names()
        if item is not None and (item.text() in ticked or not ticked):
            return item.text()
        return ticked[0] if ticked else None

    def selected_image_names(self) -> list[str]:
        return [self.image_list.item(i).text() for i in range(self.image_list.count())
                if self.image_list.item(i).checkState() == Qt.CheckState.Checked]

    def set_selected_images(self, names: list[str]) -> None:
        for i in range(self.image_list.count()):
            item = self.image_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    # -- running ----------------------------------------------------------------------------
    @property
    def job(self) -> TrainingJob | None:
        return self._holder.job

    @job.setter
    def job(self, value: TrainingJob | None) -> None:
        self._holder.job = value

    @property
    def running(self) -> bool:
        return self.job is not None

    def _watch_window(self) -> None:
        """Stop training when the napari window (the top-level ancestor) closes."""
        top = self
        while top.parentWidget() is not None:
            top = top.parentWidget()
        if top is not self and top is not self._watched:
            self._watched = top
            CloseWatcher(top, self.shutdown)

    def showEvent(self, event):  # noqa: N802 (Qt name)
        super().showEvent(event)
        self._watch_window()

    def closeEvent(self, event):  # noqa: N802 (Qt name)
        self.shutdown()
        super().closeEvent(event)

    def _update_buttons(self) -> None:
        self.train_button.setEnabled(not self.running)
        self.stop_button.setEnabled(self.running and not self.job.stopping)
        self.resume_button.setEnabled(not self.running and self.model_panel.model_dir is not None)
        self.model_panel.setEnabled(not self.running)

    def train(self) -> None:
        """Train a new model on the ticked images."""
        self._start(resume=None)

    def resume(self) -> None:
        """Continue the current model: the last run's checkpoint, or a loaded model (fine-tuned)."""
        source = self.model_panel.model_dir
        if source is None:
            show_error("nothing to resume: train first or load a model")
            return
        self._start(resume=source)

    def train_on(self) -> None:
        """Go on training the current model on the labels as they are now (a new run from its weights)."""
        source = self.checkpoint or self.model_panel.model_dir
        if source is None:
            show_error("nothing to train on from: train first or load a model")
            return
        self._start(resume=None, init_from=source)

    def _session_root(self) -> Path:
        if self.checkpoint_root is None:
            self.checkpoint_root = tempfile.mkdtemp(prefix="lazylabels-models-")
        root = Path(self.checkpoint_root)
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _model_dir(self, layers, resume: str | None) -> str:
        """Where this run writes its model: a run that continues a model of this session goes on in its
        folder; every other run gets a new folder named after its images and the time (no model of the
        session, nor a loaded one, is ever written over)."""
        root = self._session_root()
        if resume is not None and Path(resume).parent == root:
            return resume
        return str(root / session_model_name([layer.name for layer in layers], root))

    def _start(self, resume: str | None, init_from: str | None = None) -> None:
        if self.running:
            return
        if self.observer is not None:
            self.observer.train_clicked()
        self.previews = 0
        layers = [self.viewer.layers[n] for n in self.selected_image_names() if n in self.viewer.layers]
        names = class_names(layers[0]) if layers else []
        try:
            if not layers:
                raise LazyLabelsError("tick at least one image to train on")
            items = training_set(self.viewer, layers)
            settings = self.form.settings()
            # weights of the tasks this run trains (the form shows a weight for every task)
            run_regimes = registry.trained_regimes(present_inputs(items), settings.opt_in)
            trained = {n for r in run_regimes for n in r.task_names}
            plan = TrainingPlan(items, class_names=names, network=settings.network, config=settings.config,
                                weights={k: v for k, v in settings.weights.items() if k in trained},
                                opt_in=settings.opt_in, options=settings.options,
                                model_dir=self._model_dir(layers, resume), overwrite=True, resume=resume,
                                init_from=init_from,
                                data_description=f"napari: {', '.join(layer.name for layer in layers)}",
                                instances=own_instances(settings.instances))
            prepared = prepare(plan)         # user errors now, before anything is started or added
            if prepared.self_supervised:     # it trains on the unpainted planes too
                plan = replace(plan, items=training_set(self.viewer, layers, unpainted=True))
                prepared = prepare(plan)
            plan = replace(plan, items=prepared.painted)     # checked: the run does not check them again
            tasks = prepared.tasks
        except LazyLabelsError as exc:
            self.status.setText("not started: " + str(exc))
            show_error(str(exc))
            return
        self._class_names = names
        preview_layer = (self.viewer.layers[self.preview_combo.currentText()]
                         if self.preview_combo.currentText() in self.viewer.layers else layers[0])
        plane = current_plane(self.viewer, preview_layer)
        observer = self.observer
        spec = JobSpec(plan=plan, preview_image=plane_data(preview_layer, plane).copy(),
                       preview_key=(preview_layer.name, plane), threads=settings.threads,
                       nice=observer.lower_priority if observer is not None else True)
        self._watch_window()
        # While training, napari's and torch's long-lived objects are kept out of the cyclic
        # garbage collector: a full collection of them holds the GIL for a third of a second.
        gc.freeze()
        self.job = TrainingJob(spec)
        if resume is None:
            self.loss_plot.clear()
        self.progress.setRange(0, settings.config.steps)
        self.progress.setValue(0)
        self.status.setText(f"starting: {prepared.summary()}...")
        self._placeholders = (preview_layer, tasks)
        self._created = []
        if observer is not None and not observer.layers_first:
            self.job.start()
        self._poll.start()
        self._update_buttons()

    def stop(self) -> None:
        """Stop after the current step; the checkpoint is kept for Resume."""
        if self.job is not None:
            self.job.stop()
            self.status.setText("stopping after this step...")
            self._update_buttons()

    # -- messages from the worker ---------------------------------------------------------
    def _drain(self) -> None:
        if self.job is None:
            self._poll.stop()
            return
        progress = preview = None
        for msg in self.job.drain():
            if isinstance(msg, Started):
                self.device_label.setText(f"device: {msg.device}")
                self.progress.setRange(0, msg.total_steps)
                if msg.step:
                    self.loss_plot.set_history(msg.history)
            elif isinstance(msg, Progress):
                self.loss_plot.extend(msg.losses)
                progress = msg
            elif isinstance(msg, Preview):
                preview = msg
            elif isinstance(msg, Finished):
                self._final = msg
        if progress is not None:
            self.progress.setValue(progress.step)
            self.status.setText(f"step {progress.step}/{progress.total_steps}, "
                                f"{progress.patches_per_s:.1f} patches/s, ETA {format_seconds(progress.eta_s)}")
        if preview is None and self._pending is None and self._placeholders is not None:
            self._add_placeholder()
            if self._placeholders is None and not self.job.started:
                self.job.start()            # the layers are there: now the training thread may start
        if preview is not None:
            self.previews += 1
        if preview is not None or self._pending is not None:
            self._show_preview(preview or self._pending)
        if self._final is not None and self._pending is None:   # the last preview's layers all shown
            self._finish(self._final)

    def _add_placeholder(self) -> None:
        """Add one missing prediction layer (empty) per tick while the first step runs."""
        layer, tasks = self._placeholders
        if layer not in self.viewer.layers:
            self._placeholders = None
            return
        mixtures = {t.name: (t.n_classes, t.components) for t in tasks if t.components > 1}
        added, complete = ensure_prediction_layers(self.viewer, layer, [t.name for t in tasks],
                                                   self._class_names, components=mixtures)
        self._created.extend(added)
        if complete:
            self._placeholders = None

    def _show_preview(self, msg: Preview) -> None:
        """Refresh the prediction layers; missing ones are added one per timer tick."""
        name, plane = msg.key
        if self._pending is not msg:
            self._written = set()
        self._pending = None
        if name not in self.viewer.layers:
            return
        t0 = time.perf_counter()
        _, complete = show_prediction(self.viewer, self.viewer.layers[name], plane, msg.probabilities,
                                      msg.semantic, msg.instances, self._class_names, max_new_layers=1,
                                      written=self._written, components=msg.components)
        if self.observer is not None:
            self.observer.preview_shown(1000 * (time.perf_counter() - t0))
        if not complete:
            self._pending = msg

    def _finish(self, msg: Finished) -> None:
        self._final = None
        self._placeholders = None
        self._poll.stop()
        gc.unfreeze()
        if msg.error and self.previews == 0:        # leave the layers as they were before Train
            for layer in self._created:
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
        self._created = []
        job, self.job = self.job, None
        if job is not None:
            job.join(30.0)
        self.last_finished = msg
        if msg.checkpoint:
            self.checkpoint = msg.checkpoint
            self.model_panel.add_model(msg.checkpoint, f"{Path(msg.checkpoint).name}, {msg.step} steps")
        if msg.error:
            self.status.setText(f"training ended with an error at step {msg.step}")
            if msg.details:
                print(msg.details)
            show_error(msg.error)
        elif msg.stopped:
            self.status.setText(f"stopped at step {msg.step}/{msg.total_steps}; Resume continues")
        else:
            fitted = self._show_fitted_settings()
            self.status.setText(f"done: {msg.step} steps" + (f"; {fitted}" if fitted else ""))
            show_info(f"training done ({msg.step} steps)")
        self._update_buttons()

    def _show_fitted_settings(self) -> str:
        """The finished model's instance settings (maybe fitted) into the form; what the fit changed."""
        try:
            model = self.model_panel.model()
        except LazyLabelsError:
            return ""
        self.form.set_postprocess(model.postprocess)
        return fitted_words(model.provenance.get("instance_fit"))

    # -- teardown -----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop a running job and wait for its thread (the viewer is closing)."""
        self._poll.stop()
        abandon(self._holder)
        gc.unfreeze()
        self.model_panel.shutdown()
        self.suggest_panel.shutdown()
