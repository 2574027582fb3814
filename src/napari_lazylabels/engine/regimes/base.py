"""What a lazy-label regime declares: its inputs, tasks, targets, simulation, cost and hooks.

A regime is one kind of lazy label (inner blobs, interface scribbles, a few
exact masks, the recursive approximation...). Its module declares everything
about it as one :class:`Regime` object:

* ``inputs``: what the user paints, as :class:`LabelInput` s: the manifest
  column, the napari layer (type, name suffix, colours, brush, shortcut,
  tooltip), the meaning of the values and the summary shown per image;
* ``options``: a frozen dataclass of its settings (CLI options and widget
  fields are made from its fields and their ``metadata["help"]``), resolved
  once per run by :meth:`Regime.configure` into a :class:`ConfiguredRegime`
  (the given options, or the defaults), which hands them to every method
  below: none of them sees ``None`` for a regime that has options;
* ``tasks()``: the heads and losses it trains (:class:`~..tasks.TaskSpec`; the
  user's task weights are applied once, by :class:`ConfiguredRegime`),
  ``targets()``: how its inputs become their training targets;
* ``attach()``: optional rounds between training steps (a :class:`RoundsHook`),
  ``postprocessing()``: what a model trained with it needs at prediction time
  (a declared capability: two regimes of a run that both set one are refused);
* ``LabelInput.machine_made``: a declared capability too: which input the
  machine-made labels of :mod:`..autolabel` (points, a mask) fill;
* ``simulate()``: its labels made from ground truth (benchmarks, tests, the
  demo), ``cost()``: the annotation effort they represent.

The registry (:mod:`.registry`) lists the regimes; everything else (the CLI,
the manifest reader, the widgets, the reader, the benchmark) iterates over it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from ...errors import SettingsError
from ..labels import blob_components
from ..tasks import PLAIN, TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    from ..annotations import PaintedImage
    from ..postprocess.settings import PostProcessing
    from ..training.trainer import Trainer

RGB = tuple[int, int, int]

#: Layer types an input can have in napari: a label image (YX integers), or points (an (N, 3) array of
#: y, x, class once checked, see :mod:`..points`).
LABELS, POINTS = "labels", "points"
LAYER_TYPES = (LABELS, POINTS)

#: What the machine-made labels of :mod:`..autolabel` are (``LabelInput.machine_made``): one point per
#: object, and a foreground mask.
MACHINE_POINTS, MACHINE_MASK = "points", "mask"
MACHINE_MADE = (MACHINE_POINTS, MACHINE_MASK)

#: Targets of one image: task name -> (targets or None, whether the image is annotated for the task).
Targets = dict[str, tuple[np.ndarray | None, bool]]


def saved_rounds(artifacts: Mapping[str, Mapping[str, Any]], folder: str) -> dict[int, Mapping[str, np.ndarray]]:
    """Round number -> arrays of a rounds hook's ``<folder>/round_XX.npz`` files, from a model folder's
    artifacts."""
    out = {}
    prefix = folder + "/round_"
    for name, arrays in artifacts.items():
        if name.startswith(prefix) and name.endswith(".npz"):
            try:
                out[int(name[len(prefix):-4])] = arrays
            except ValueError:
                continue
    return out


def count_text(array: np.ndarray, class_names: Sequence[str]) -> str:
    """Summary cell: connected regions per class value ("12", or "nucleus: 7, mitosis: 2")."""
    comps, classes = blob_components(array)
    counts: dict[int, int] = {}
    for c in classes.values():
        if c > 0:
            counts[c] = counts.get(c, 0) + 1
    if not counts:
        return "0"
    if len(class_names) <= 1 and set(counts) <= {1}:
        return str(counts.get(1, 0))
    return ", ".join(f"{class_names[k - 1] if 0 < k <= len(class_names) else k}: {n}"
                     for k, n in sorted(counts.items()))


def coverage_text(array: np.ndarray, class_names: Sequence[str]) -> str:
    """Summary cell: the fraction of the image painted, in percent."""
    return f"{100 * float(np.count_nonzero(array)) / max(np.asarray(array).size, 1):.1f} %"


@dataclass(frozen=True)
class LabelInput:
    """One thing a user paints for a regime: a manifest column, a napari layer, a store label.

    Attributes:
        key: the manifest column, the key of the labels in
            :class:`~..annotations.LazyAnnotations` and the label name in an
            OME-Zarr store.
        title: short title (buttons, table columns, the loss plot).
        suffix: the napari layer is called ``"<image> <suffix>"``.
        values: what the values mean (CLI help, tooltips, docs).
        tooltip: the tooltip of its button and layer picker.
        class_values: the values are class ids 1..K (K = number of classes);
            otherwise they are ``1..len(value_names)``.
        value_names: names of the values when they are not class ids.
        extra_values: names of values that follow the class ids (K+1, K+2,
            ...; e.g. ``("background",)`` for fg/bg scribbles).
        palette: colours of values 1, 2, ... (cycled over the class ids).
        extra_palette: colours of the ``extra_values``.
        brush_size, opacity: of the napari layer.
        shortcut: napari key binding that selects the layer for painting.
        required: the manifest must have this column.
        binary: a mask: any non-zero value means 1 (a thresholded image saved
            with 255, or an instance map, is read as a mask); checked into 0/1.
        layer_type: ``"labels"``, or ``"points"`` for a click regime: its value is
            then an ``(N, 2)`` (y, x) or ``(N, 3)`` (y, x, class) array of pixel
            coordinates, checked into ``(N, 3)`` float64 (:func:`..points.check_points`);
            a regime that needs a label image rasterises it in :meth:`Regime.targets`.
        aliases: earlier names of the column or store label (also tried as
            layer suffixes), still read.
        suffix_aliases: earlier layer suffixes only (a layer called
            ``"<image> <old suffix>"`` without our metadata is still found).
        summary: ``summary(array, class_names) -> str``, the summary cell of
            one painted image.
        machine_made: the machine-made labels of :mod:`..autolabel` that fill
            this input (``"points"`` or ``"mask"``, :data:`MACHINE_MADE`), or
            None: only painted by a person.
        claims_objects: a non-zero value says "an object here" (blobs, masks, a
            foreground mask): such a value on a background stroke contradicts it.
        exact_objects: the values trace the objects exactly where painted (the
            exact masks): another claim of an object outside them contradicts them.
    """

    key: str
    title: str
    suffix: str
    values: str
    tooltip: str
    class_values: bool = True
    value_names: tuple[str, ...] = ()
    extra_values: tuple[str, ...] = ()
    palette: tuple[RGB, ...] = ((200, 200, 200),)
    extra_palette: tuple[RGB, ...] = ((220, 50, 50),)
    brush_size: int = 5
    opacity: float = 0.7
    shortcut: str | None = None
    required: bool = False
    binary: bool = False
    layer_type: str = LABELS
    aliases: tuple[str, ...] = ()
    suffix_aliases: tuple[str, ...] = ()
    summary: Callable[[np.ndarray, Sequence[str]], str] = field(default=count_text, compare=False)
    machine_made: str | None = None
    claims_objects: bool = False
    exact_objects: bool = False

    def __post_init__(self):
        if self.machine_made is not None and self.machine_made not in MACHINE_MADE:
            raise SettingsError(f"input {self.key!r}: machine_made must be one of {MACHINE_MADE} or None")
        if self.machine_made == MACHINE_POINTS and not self.is_points:
            raise SettingsError(f"input {self.key!r}: machine-made points fill a points input only")

    def max_label(self, n_classes: int) -> int:
        """The largest value allowed in this input's layer."""
        return (int(n_classes) if self.class_values else len(self.value_names)) + len(self.extra_values)

    def accepted_max(self, n_classes: int) -> int:
        """The largest value a file or layer of this input may hold (any, for a binary mask)."""
        return int(np.iinfo(np.int64).max) if self.binary else self.max_label(n_classes)

    def background_value(self, n_classes: int) -> int | None:
        """The value that marks the background (an extra value named ``"background"``), or None."""
        if "background" not in self.extra_values:
            return None
        return self.max_label(n_classes) - len(self.extra_values) + 1 + self.extra_values.index("background")

    @property
    def is_points(self) -> bool:
        """Whether the input is a set of points (a napari Points layer), not a label image."""
        return self.layer_type == POINTS

    def names_of_values(self, class_names: Sequence[str]) -> list[str]:
        """The name of each value 1..max (class names, or the fixed value names; then the extra values)."""
        return (list(class_names) if self.class_values else list(self.value_names)) + list(self.extra_values)

    def colours(self, n_classes: int) -> dict[int, RGB]:
        """Colour of each value 1..max."""
        n = max(self.max_label(max(n_classes, 1)), 1)
        first_extra = n - len(self.extra_values) + 1
        return {k: self.palette[(k - 1) % len(self.palette)] if k < first_extra else
                self.extra_palette[(k - first_extra) % len(self.extra_palette)] for k in range(1, n + 1)}

    @property
    def names(self) -> tuple[str, ...]:
        """The key and its aliases."""
        return (self.key, *self.aliases)

    @property
    def suffixes(self) -> tuple[str, ...]:
        """The layer suffix, then the earlier ones a layer may still carry."""
        return (self.suffix, *self.suffix_aliases, *self.aliases)


class RoundsHook(Protocol):
    """What :meth:`Regime.attach` returns: work between training steps, with state that is saved.

    ``every``: called after every ``every``-th step as ``hook(trainer)``.
    ``artifacts()``: files for the model folder, relative path -> a dict of
    arrays (``.npz``) or of JSON values (``.json``). ``restore(artifacts,
    trainer)``: continue from the artifacts of a checkpoint. ``provenance()``:
    a JSON dict recorded in the model's provenance under the regime's name.
    ``summary()``: one line on what was done (printed after training).
    """

    every: int

    def summary(self) -> str: ...

    def __call__(self, trainer: Trainer) -> None: ...

    def artifacts(self) -> dict[str, dict[str, Any]]: ...

    def restore(self, artifacts: Mapping[str, Mapping[str, Any]], trainer: Trainer) -> int: ...

    def provenance(self) -> dict: ...


class Regime:
    """A kind of lazy label; subclass it in one module and register the instance.

    The defaults fit a regime with one Labels input that trains one head of
    the same name on the input's values (override :meth:`tasks` and
    :meth:`targets` for anything else).

    Class attributes:
        name: unique name (an opt-in regime's CLI flag is ``--<name>``).
        title: one line for help texts and widgets.
        description: what it is and when to use it.
        inputs: the :class:`LabelInput` s.
        opt_in: trained only when asked for (it has no input of its own);
            other regimes are trained when their inputs are present.
        options: a frozen dataclass of the regime's settings (every field
            with a default), or None (CLI options and form fields of every
            regime that has them; an opt-in regime's are used when it is
            switched on). The methods that take ``options`` get an instance,
            resolved once by :meth:`configure`.
        simulated_by_default: its labels are simulated with the other
            regimes' by default (:func:`~..simulate.simulate_lazy_labels`
            without ``regimes=``); False for an alternative kind of label
            that a benchmark asks for by name.
        features, role: decoder path and post-processing role of the default task.
        colour: of its loss curve and probability layer.
        probability_colormap: napari colormap name of its probability layer.
        draft_from_role: its labels can be drafted (GrabCut) from those of the
            input whose task plays this role (the masks from the blobs).
    """

    name: str = ""
    title: str = ""
    description: str = ""
    inputs: tuple[LabelInput, ...] = ()
    opt_in: bool = False
    options: type | None = None
    features: str = PLAIN
    role: str | None = None
    colour: RGB = (200, 200, 200)
    probability_colormap: str = "gray"
    draft_from_role: str | None = None
    simulated_by_default: bool = True

    # -- training ------------------------------------------------------------------------
    def configure(self, options: Any = None) -> ConfiguredRegime:
        """This regime bound to its options for a run: ``options`` (an instance of :attr:`options`), or
        None for the defaults.

        Raises:
            SettingsError: options of another type, or options for a regime that has none.
        """
        if self.options is None:
            if options is not None:
                raise SettingsError(f"regime {self.name!r} has no options, got {type(options).__name__}")
        elif options is None:
            options = self.options()
        elif not isinstance(options, self.options):
            raise SettingsError(f"regime {self.name!r} takes {self.options.__name__} options, "
                                f"got {type(options).__name__}")
        return ConfiguredRegime(self, options)

    @property
    def task_names(self) -> tuple[str, ...]:
        """The names of the tasks :meth:`tasks` makes with the default options."""
        return tuple(t.name for t in self.configure().tasks(1))

    def tasks(self, n_classes: int, options: Any) -> list[TaskSpec]:
        """The tasks this regime trains for ``n_classes`` object classes with ``options`` (an instance of
        :attr:`options`; None for a regime without). Their ``weight`` is the default task weight; the
        user's weights are applied by :meth:`ConfiguredRegime.tasks`."""
        return [TaskSpec(i.key, i.max_label(n_classes) + 1, self.features, role=self.role,
                         description=i.values) for i in self.inputs]

    def check(self, tasks: Sequence[TaskSpec]) -> None:
        """Refuse a run whose other tasks this regime cannot work with (SettingsError)."""

    def targets(self, item: PaintedImage, done: Mapping[str, tuple[np.ndarray | None, bool]],
                tasks: Sequence[TaskSpec], options: Any) -> Targets:
        """Training targets of one checked painted image: task -> (labels or None, annotated).

        ``done``: the targets the run's other (not opt-in) regimes made for
        this image, for a regime that derives its targets from them;
        ``tasks``: all the run's tasks; ``options``: this regime's options in
        the run. Default: each input's labels as they are (not copied: the
        sampler copies them once, into its stacks).
        """
        return {i.key: (item.labels.get(i.key), item.is_annotated(i.key)) for i in self.inputs}

    def attach(self, trainer: Trainer, options: Any) -> RoundsHook | None:
        """Work between training steps (e.g. rounds that update the targets), or None."""
        return None

    def postprocessing(self, options: Any) -> PostProcessing | None:
        """The post-processing a model trained with this regime needs, or None for the default."""
        return None

    def migrate(self, config: dict) -> None:
        """Upgrade, in place, the ``config.json`` of a model file of an older format version."""

    # -- benchmarks and tests ------------------------------------------------------------
    def simulate(self, instances: np.ndarray, classes: Mapping[int, int] | None,
                 rng: np.random.Generator, **settings) -> dict[str, np.ndarray | None]:
        """This regime's labels of one image, made from ground-truth instances (input key -> labels)."""
        raise NotImplementedError(f"regime {self.name!r} cannot be simulated")

    @property
    def can_simulate(self) -> bool:
        return type(self).simulate is not Regime.simulate

    def simulation_settings(self) -> set[str]:
        """The keyword settings :meth:`simulate` accepts."""
        params = inspect.signature(self.simulate).parameters
        return {n for n, p in params.items() if p.kind == inspect.Parameter.KEYWORD_ONLY}

    def cost(self, labels: Mapping[str, np.ndarray | None],
             instances: np.ndarray | None = None) -> dict[str, int]:
        """The effort of this regime's labels on one image: ``painted_pixels`` and ``strokes``
        (connected regions) at least."""
        painted = strokes = 0
        for i in self.inputs:
            lab = labels.get(i.key)
            if lab is None or i.is_points:
                continue
            painted += int(np.count_nonzero(lab))
            strokes += int(blob_components(np.asarray(lab))[0].max(initial=0))
        return {"painted_pixels": painted, "strokes": strokes}

    def __repr__(self) -> str:
        return f"<regime {self.name}>"


@dataclass(frozen=True)
class ConfiguredRegime:
    """A regime bound to its options for one run (:meth:`Regime.configure`): the recipe and the targets
    call these, and the regime's own methods get the options resolved."""

    regime: Regime
    options: Any = None

    @property
    def name(self) -> str:
        return self.regime.name

    def tasks(self, n_classes: int, weights: Mapping[str, float] | None = None) -> list[TaskSpec]:
        """The regime's tasks with the user's task weights (task name -> alpha; missing: the
        regime's default weight): the one place weights are applied."""
        weights = weights or {}
        return [t if t.name not in weights else replace(t, weight=float(weights[t.name]))
                for t in self.regime.tasks(n_classes, self.options)]

    def check(self, tasks: Sequence[TaskSpec]) -> None:
        self.regime.check(tasks)

    def targets(self, item: PaintedImage, done: Mapping[str, tuple[np.ndarray | None, bool]],
                tasks: Sequence[TaskSpec]) -> Targets:
        return self.regime.targets(item, done, tasks, self.options)

    def attach(self, trainer: Trainer) -> RoundsHook | None:
        return self.regime.attach(trainer, self.options)

    def postprocessing(self) -> PostProcessing | None:
        return self.regime.postprocessing(self.options)
