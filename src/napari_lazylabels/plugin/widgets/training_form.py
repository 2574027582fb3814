"""The settings of a training run as a magicgui form made from the typed configs and the registry.

Fields come from :class:`~napari_lazylabels.engine.config.TrainConfig` (steps,
patch, batch, learning rate, device), the network presets, one task weight
per task the regimes train, one switch per opt-in regime with a field for
each of its options (shown while it is ticked), the options of the other
regimes that have some (used when the painted labels train that regime), and
the post-processing (:class:`~napari_lazylabels.engine.postprocess.settings.InstanceParams`
and the rescale factor): stored in a trained model, used by Predict, and set to
a loaded model's values. The task weights (one labelled field per task), each
regime's options and the post-processing are collapsed sections under the main
fields (a click on a title opens it), so the dock stays short. Values are checked by the configs themselves: a bad
one is a one-line error, as on the command line.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, SpinBox
from qtpy.QtWidgets import QPushButton, QSizePolicy, QVBoxLayout, QWidget
from superqt import QCollapsible

from ...engine.config import PRESETS, NetworkConfig, TrainConfig, preset
from ...engine.device import DEVICE_CHOICES
from ...engine.postprocess.settings import RESCALE_RANGE, InstanceParams, PostProcessing
from ...engine.regimes import registry
from ...engine.regimes.words import head_words
from ..training_worker import default_threads
from . import remembered
from .tooltips import tip


@dataclass
class TrainSettings:
    """What the form says: the pieces of a training plan."""

    preset: str
    network: NetworkConfig
    config: TrainConfig
    weights: dict[str, float]
    opt_in: dict[str, Any]
    threads: int
    instances: InstanceParams | None = None
    rescale: float | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _option_widget(cls: type, name: str, high: float = 1e6):
    """A widget for one field of an options dataclass (bool, int, float, a choice, or int | float | None
    with 0 = automatic)."""
    f = next(f for f in fields(cls) if f.name == name)
    hint = typing.get_type_hints(cls)[name]
    optional = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if optional else hint
    default = f.default if f.default is not MISSING else None
    label = name.replace("_", " ")
    text = f.metadata.get("help", label) + (" (0: automatic)" if optional else "")
    if f.metadata.get("choices"):
        return ComboBox(choices=list(f.metadata["choices"]), value=default, label=label, tooltip=text)
    if base is bool:
        return CheckBox(value=bool(default), label=label, tooltip=text)
    if base is int:
        return SpinBox(value=default or 0, min=0, max=1_000_000, label=label, tooltip=text)
    box = FloatSpinBox(value=float(default or 0.0), min=0.0, max=high,
                       step=0.05 if high <= 1 else 0.01 if (default or 0) < 1 else 0.1, label=label, tooltip=text)
    box.native.setDecimals(3)
    return box


def _option_value(cls: type, name: str, widget) -> Any:
    hint = typing.get_type_hints(cls)[name]
    optional = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    return None if optional and not widget.value else widget.value


class TrainSettingsForm:
    """Form fields with the engine's defaults; :meth:`settings` reads them. ``native`` is the QWidget."""

    def __init__(self):
        d = TrainConfig()
        self.preset = ComboBox(choices=list(PRESETS), value="cpu", label="Preset", tooltip=tip("preset"))
        self.steps = SpinBox(value=d.steps, min=1, max=1_000_000, label="Steps", tooltip=tip("steps"))
        self.patch = SpinBox(value=d.patch_size, min=16, max=1024, step=16, label="Patch size",
                             tooltip=tip("patch"))
        self.batch = SpinBox(value=d.batch_size, min=1, max=256, label="Batch size", tooltip=tip("batch"))
        self.lr = FloatSpinBox(value=d.learning_rate, min=1e-5, max=1.0, step=1e-4, label="Learning rate",
                               tooltip=tip("lr"))
        self.lr.native.setDecimals(5)
        self.weights = {task: FloatSpinBox(value=1.0, min=0.0, max=100.0, step=0.1, label=head_words(task),
                                           tooltip=tip("weight", task=head_words(task)))
                        for task in registry.task_names()}
        self.device = ComboBox(choices=list(DEVICE_CHOICES), value="auto", label="Device", tooltip=tip("device"))
        self.threads = SpinBox(value=default_threads(), min=1, max=256, label="CPU threads", tooltip=tip("threads"))
        self.opt_in: dict[str, CheckBox] = {}
        self.options: dict[str, dict[str, Any]] = {}
        extra = []
        for r in registry.opt_in_regimes():
            box = CheckBox(value=False, text=r.title, label="", tooltip=tip("opt_in", description=r.description))
            self.opt_in[r.name] = box
            extra.append(box)
            opts = {} if r.options is None else {f.name: _option_widget(r.options, f.name)
                                                 for f in fields(r.options)}
            self.options[r.name] = opts
            for w in opts.values():
                w.visible = False
                extra.append(w)
            box.changed.connect(lambda on, ws=tuple(opts.values()): [setattr(w, "visible", on) for w in ws])
        #: regime name -> its option fields, for the regimes that are not opt-in
        self.regime_options: dict[str, dict[str, Any]] = {}
        #: the collapsed sections below the main fields: title -> (section, its form)
        self.sections: dict[str, tuple[Any, Container]] = {}
        self._add_section("Task weights", list(self.weights.values()), tip("weights"))
        for r in registry.regimes_with_options():
            opts = {f.name: _option_widget(r.options, f.name) for f in fields(r.options)}
            self.regime_options[r.name] = opts
            self._add_section(f"{r.title}: options", list(opts.values()),
                              tip("regime_options", description=r.description))
        # post-processing: 0..1 for the thresholds, the rescale factor (0: automatic)
        self.instances = {f.name: _option_widget(InstanceParams, f.name,
                                                 high=1.0 if f.name.endswith("threshold") else 1e6)
                          for f in fields(InstanceParams)}
        self.rescale = FloatSpinBox(value=0.0, min=0.0, max=RESCALE_RANGE[1], step=0.1, label="rescale",
                                    tooltip=tip("rescale"))
        self._add_section("Post-processing (saved with the model)",
                          [*self.instances.values(), self.rescale], tip("postprocessing"))
        self.container = Container(widgets=[self.preset, self.steps, self.patch, self.batch, self.lr,
                                            self.device, self.threads, *extra])
        self.container.margins = (0, 0, 0, 0)
        self._native = QWidget()
        layout = QVBoxLayout(self._native)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.container.native)
        for section, _ in self.sections.values():
            layout.addWidget(section)
        layout.addStretch(1)
        # the run's settings come back in the next session (remembered.py)
        remembered.remember("train_form", {"preset": self.preset, "steps": self.steps, "patch": self.patch,
                                           "batch": self.batch, "lr": self.lr, "device": self.device,
                                           "threads": self.threads, "rescale": self.rescale,
                                           **{f"weight {t}": w for t, w in self.weights.items()},
                                           **{f"post {k}": w for k, w in self.instances.items()}})

    def _add_section(self, title: str, widgets: list, tooltip: str) -> None:
        """A collapsed section (click its title to open it) holding ``widgets`` as a labelled form,
        so the dock stays short: the run's main fields first, the rarely changed ones folded away."""
        form = Container(widgets=widgets)
        form.margins = (12, 0, 0, 0)
        section = QCollapsible(title)
        section.setToolTip(tooltip)
        for button in section.findChildren(QPushButton):     # a long title is cut, it does not widen the dock
            button.setSizePolicy(QSizePolicy.Policy.Ignored, button.sizePolicy().verticalPolicy())
            button.setToolTip(title)
        section.addWidget(form.native)
        section.collapse(animate=False)
        self.sections[title] = (section, form)

    @property
    def native(self):
        return self._native

    def set_values(self, *, preset_name: str | None = None, steps: int | None = None,
                   patch: int | None = None, batch: int | None = None, lr: float | None = None,
                   device: str | None = None, threads: int | None = None) -> None:
        """Fill the form (as a user would type); None leaves a field as it is."""
        for widget, value in ((self.preset, preset_name), (self.steps, steps), (self.patch, patch),
                              (self.batch, batch), (self.lr, lr), (self.device, device), (self.threads, threads)):
            if value is not None:
                widget.value = value

    def postprocess(self, base: PostProcessing | None = None) -> PostProcessing:
        """``base`` (a model's post-processing) with the form's instance settings and rescale factor."""
        instances = InstanceParams(**{k: _option_value(InstanceParams, k, w) for k, w in self.instances.items()})
        return replace(base or PostProcessing(), instances=instances, rescale=self.rescale.value or None)

    def set_postprocess(self, postprocess: PostProcessing) -> None:
        """Show a (loaded) model's post-processing in the form."""
        for name, widget in self.instances.items():
            value = getattr(postprocess.instances, name)
            widget.value = 0 if value is None else value
        self.rescale.value = postprocess.rescale or 0.0

    def settings(self) -> TrainSettings:
        """The run's settings (the recipe makes them consistent: patch multiple, warm-up)."""
        network = preset(self.preset.value)
        config = TrainConfig(steps=self.steps.value, patch_size=self.patch.value, batch_size=self.batch.value,
                             learning_rate=self.lr.value, device=self.device.value)
        opt_in = {}
        for name, box in self.opt_in.items():
            if box.value:
                cls = registry.get(name).options
                opt_in[name] = None if cls is None else cls(
                    **{k: _option_value(cls, k, w) for k, w in self.options[name].items()})
        post = self.postprocess()
        options = {}
        for name, widgets in self.regime_options.items():
            cls = registry.get(name).options
            options[name] = cls(**{k: _option_value(cls, k, w) for k, w in widgets.items()})
        return TrainSettings(self.preset.value, network, config, {t: w.value for t, w in self.weights.items()},
                             opt_in, self.threads.value, post.instances, post.rescale, options)
