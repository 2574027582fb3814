"""The settings of a training run as a form: preset, steps, patch, batch, rate, weights, device."""

from __future__ import annotations

from dataclasses import dataclass

from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QSpinBox, QWidget

from ...engine.config import PRESETS, NetworkConfig, TrainConfig, preset
from ...engine.device import DEVICE_CHOICES
from ...engine.tasks import DETECTION, SEGMENTATION, SEPARATION
from .tooltips import tip
from ..training_worker import default_threads


@dataclass
class TrainSettings:
    preset: str
    network: NetworkConfig
    config: TrainConfig
    weights: dict[str, float]
    threads: int


class TrainSettingsForm(QWidget):
    """Form fields with the engine's defaults; :meth:`settings` reads them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        defaults = TrainConfig()
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setCurrentText("cpu")
        self.steps = self._spin(1, 1_000_000, defaults.steps, "steps")
        self.patch = self._spin(16, 1024, defaults.patch_size, "patch", step=16)
        self.batch = self._spin(1, 256, defaults.batch_size, "batch")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(defaults.learning_rate)
        self.weights = {}
        weights_row = QHBoxLayout()
        for task in (DETECTION, SEPARATION, SEGMENTATION):
            w = QDoubleSpinBox()
            w.setRange(0.0, 100.0)
            w.setSingleStep(0.1)
            w.setValue(1.0)
            w.setToolTip(f"{task} weight. " + tip("weights"))
            weights_row.addWidget(w)
            self.weights[task] = w
        self.device = QComboBox()
        self.device.addItems(list(DEVICE_CHOICES))
        self.threads = self._spin(1, 256, default_threads(), "threads")
        self.preset.setToolTip(tip("preset"))
        self.lr.setToolTip(tip("lr"))
        self.device.setToolTip(tip("device"))
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Preset", self.preset)
        form.addRow("Steps", self.steps)
        form.addRow("Patch size", self.patch)
        form.addRow("Batch size", self.batch)
        form.addRow("Learning rate", self.lr)
        form.addRow("Task weights", weights_row)
        form.addRow("Device", self.device)
        form.addRow("CPU threads", self.threads)

    @staticmethod
    def _spin(lo: int, hi: int, value: int, key: str, step: int = 1) -> QSpinBox:
        s = QSpinBox()
        s.setRange(lo, hi)
        s.setSingleStep(step)
        s.setValue(value)
        s.setToolTip(tip(key))
        return s

    def set_values(self, *, preset_name: str | None = None, steps: int | None = None,
                   patch: int | None = None, batch: int | None = None, lr: float | None = None,
                   device: str | None = None) -> None:
        """Fill the form (as a user would type); None leaves a field as it is."""
        if preset_name is not None:
            self.preset.setCurrentText(preset_name)
        for box, value in ((self.steps, steps), (self.patch, patch), (self.batch, batch), (self.lr, lr)):
            if value is not None:
                box.setValue(value)
        if device is not None:
            self.device.setCurrentText(device)

    def settings(self) -> TrainSettings:
        """The run's settings; a few steps between previews and checkpoints (time-throttled later)."""
        steps = self.steps.value()
        network = preset(self.preset.currentText())
        m = network.size_multiple
        patch = -(-self.patch.value() // m) * m        # a multiple of the network's pooling factor
        config = TrainConfig(steps=steps, patch_size=patch, batch_size=self.batch.value(),
                             learning_rate=self.lr.value(), device=self.device.currentText(),
                             preview_every=steps + 1, checkpoint_every=max(1, min(100, steps)),
                             warmup_steps=min(20, max(1, steps // 10)))
        return TrainSettings(self.preset.currentText(), network, config,
                             {t: w.value() for t, w in self.weights.items()}, self.threads.value())
