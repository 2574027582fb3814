"""The registry of lazy-label regimes: the one place that names them.

Everything that depends on the kinds of lazy label (the CLI's options and
manifest columns, the manifest and project readers, the widgets' layers,
summary, task weights, loss plot and prediction layers, the napari reader,
the simulators, the benchmarks) asks this module, and names no regime itself.

Regimes are the built-in ones below, in this order (the order of manifest
columns, layers, summary columns and simulation), then those other packages
declare under the entry-point group ``napari_lazylabels.regimes`` (each entry
point names a :class:`~.base.Regime` instance), then those added with
:func:`register` (tests, scripts).
"""

from __future__ import annotations

import contextlib
from importlib.metadata import entry_points
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ...errors import SettingsError
from ..postprocess.settings import PostProcessing
from ..tasks import FOREGROUND, TaskSpec
from . import detection, impartial, lacss, recursive, segmentation, separation
from .base import MACHINE_MASK, MACHINE_POINTS, ConfiguredRegime, LabelInput, Regime

ENTRY_POINT_GROUP = "napari_lazylabels.regimes"

_BUILT_IN: tuple[Regime, ...] = (detection.REGIME, separation.REGIME, segmentation.REGIME, recursive.REGIME,
                                 impartial.REGIME, lacss.REGIME)
_regimes: list[Regime] = []
_loaded = False


def _load() -> list[Regime]:
    global _loaded
    if not _loaded:
        _loaded = True
        for r in _BUILT_IN:
            register(r)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            register(ep.load())
    return _regimes


def _names_of(regime: Regime) -> tuple[set[str], set[str], set[str], set[str]]:
    inputs = {n for i in regime.inputs for n in i.names}
    suffixes = {s for i in regime.inputs for s in i.suffixes}
    options = set() if regime.options is None else {f for f in regime.options.__dataclass_fields__}
    return inputs, suffixes, set(regime.task_names), options


def register(regime: Regime) -> Regime:
    """Add a regime; refuse one whose name, input keys, layer suffixes (older ones too), task names
    or option names clash."""
    _load()
    if not isinstance(regime, Regime) or not regime.name:
        raise SettingsError(f"not a named Regime: {regime!r}")
    mine = _names_of(regime)
    for other in _regimes:
        theirs = _names_of(other)
        clash = {regime.name} & {other.name}
        for a, b in zip(mine, theirs):
            clash |= a & b
        if clash:
            raise SettingsError(f"regime {regime.name!r} clashes with regime {other.name!r} on "
                                f"{', '.join(sorted(clash))}")
    _regimes.append(regime)
    return regime


def unregister(name: str) -> None:
    """Remove a regime added with :func:`register` (a built-in one stays)."""
    _load()
    _regimes[:] = [r for r in _regimes if r.name != name or r in _BUILT_IN]


@contextlib.contextmanager
def registered(regime: Regime) -> Iterator[Regime]:
    """``with registered(MyRegime()):`` the regime exists inside the block only."""
    register(regime)
    try:
        yield regime
    finally:
        unregister(regime.name)


# -- look-ups ---------------------------------------------------------------------------------

def regimes() -> tuple[Regime, ...]:
    """Every regime, in registry order."""
    return tuple(_load())


def get(name: str) -> Regime:
    for r in regimes():
        if r.name == name:
            return r
    raise SettingsError(f"unknown regime {name!r}; known: {', '.join(r.name for r in regimes())}")


def opt_in_regimes() -> tuple[Regime, ...]:
    """Regimes trained only when asked for (a CLI flag, a tick box)."""
    return tuple(r for r in regimes() if r.opt_in)


def regimes_with_options() -> tuple[Regime, ...]:
    """The regimes that are not opt-in and have options (CLI options and form fields of their own;
    an opt-in regime's options come with its switch)."""
    return tuple(r for r in regimes() if not r.opt_in and r.options is not None)


def label_inputs() -> tuple[LabelInput, ...]:
    """Every input of every regime, in registry order."""
    return tuple(i for r in regimes() for i in r.inputs)


def input_keys() -> tuple[str, ...]:
    return tuple(i.key for i in label_inputs())


def required_inputs() -> tuple[LabelInput, ...]:
    return tuple(i for i in label_inputs() if i.required)


def find_input(name: str) -> LabelInput | None:
    """The input called ``name`` (its key or an alias, case-insensitive), or None."""
    name = name.strip().lower()
    for i in label_inputs():
        if name in (n.lower() for n in i.names):
            return i
    return None


def regime_of_input(key: str) -> Regime:
    for r in regimes():
        if any(i.key == key for i in r.inputs):
            return r
    raise SettingsError(f"no regime has the input {key!r}")


def regime_of_task(task: str) -> Regime | None:
    for r in regimes():
        if task in r.task_names:
            return r
    return None


def task_names() -> tuple[str, ...]:
    """Every task any regime trains, in registry order."""
    return tuple(n for r in regimes() for n in r.task_names)


def self_supervised_regimes() -> tuple[Regime, ...]:
    """The regimes whose task (with default options) trains on every image, labelled or not."""
    return tuple(r for r in regimes() if any(t.self_supervised for t in r.configure().tasks(1)))


def task_template(name: str, n_classes: int = 1) -> TaskSpec | None:
    """The task ``name`` as its regime makes it today (for reading older model files)."""
    r = regime_of_task(name)
    if r is None:
        return None
    return next(t for t in r.configure().tasks(n_classes) if t.name == name)


def task_colour(task: str) -> tuple[int, int, int] | None:
    r = regime_of_task(task)
    return None if r is None else r.colour


def probability_colormap(task: str) -> str:
    r = regime_of_task(task)
    return "gray" if r is None else r.probability_colormap


def input_with_role(role: str) -> LabelInput | None:
    """The input whose task plays ``role`` for the post-processing (e.g. the blobs for ``seeds``)."""
    for r in regimes():
        if r.role == role and r.inputs:
            return r.inputs[0]
    return None


def draft_inputs() -> tuple[LabelInput, LabelInput] | None:
    """(source, target) of the drafting tool: the input whose labels can be drafted from
    another's, and that other (the masks from the blobs), or None."""
    for r in regimes():
        if r.draft_from_role is not None and r.inputs:
            source = input_with_role(r.draft_from_role)
            if source is not None:
                return source, r.inputs[0]
    return None


def machine_label_inputs() -> tuple[LabelInput, LabelInput] | None:
    """(points, mask) inputs that machine-made labels fill (``engine.autolabel``): the inputs of the first
    regime that declares both (``LabelInput.machine_made``), or None."""
    for r in regimes():
        made = {i.machine_made: i for i in r.inputs if i.machine_made is not None}
        if MACHINE_POINTS in made and MACHINE_MASK in made:
            return made[MACHINE_POINTS], made[MACHINE_MASK]
    return None


def regime_with_role(role: str) -> Regime | None:
    """The (not opt-in) regime whose task plays ``role``."""
    return next((r for r in regimes() if r.role == role and not r.opt_in), None)


# -- a training run ---------------------------------------------------------------------------

def _core(regime: Regime) -> bool:
    """A regime with a required input: the lazy labels of Ke et al., trained together."""
    return not regime.opt_in and any(i.required for i in regime.inputs)


def trained_regimes(present: Iterable[str], opt_in: Iterable[str] = ()) -> list[Regime]:
    """The regimes of a run, from ``present`` (the input keys the data is annotated for) and
    ``opt_in`` (the opt-in regimes asked for).

    Every regime with a present input is trained. The regimes with required
    inputs (blobs, interfaces, masks) are trained together: all of them when
    one of their inputs is present, or when no input of another regime is
    (so data with only fg/bg scribbles trains the scribbles' regime alone).
    """
    present, wanted = set(present), set(opt_in)
    for name in wanted:
        if not get(name).opt_in:
            raise SettingsError(f"regime {name!r} is trained whenever its labels are given; "
                                "it needs no switch")
    def has_input(r: Regime) -> bool:
        return any(i.key in present for i in r.inputs)

    others = [r for r in regimes() if not r.opt_in and not _core(r)]
    with_core = any(has_input(r) for r in regimes() if _core(r)) or not any(has_input(r) for r in others)
    return [r for r in regimes()
            if (r.opt_in and r.name in wanted)
            or (not r.opt_in and (has_input(r) or (_core(r) and with_core)))]


def configure(run_regimes: Iterable[Regime], options: Mapping[str, Any] | None = None) -> list[ConfiguredRegime]:
    """The regimes of a run bound to their options (``options``: regime name -> its options; None or
    missing: its defaults), each resolved once (:meth:`~.base.Regime.configure`)."""
    options = options or {}
    return [r.configure(options.get(r.name)) for r in run_regimes]


def tasks_of(run_regimes: Sequence[ConfiguredRegime], n_classes: int,
             weights: Mapping[str, float]) -> list[TaskSpec]:
    """The task list of a run (refuses weights for tasks the run does not train, and a regime that
    cannot work with the others' tasks)."""
    tasks = [t for r in run_regimes for t in r.tasks(n_classes, weights)]
    unknown = set(weights) - {t.name for t in tasks}
    if unknown:
        raise SettingsError(f"task weight(s) for unknown task(s) {', '.join(sorted(unknown))}; this run "
                            f"trains {', '.join(t.name for t in tasks)}")
    for r in run_regimes:
        r.check(tasks)
    return tasks


def postprocessing_of(run_regimes: Sequence[ConfiguredRegime]) -> PostProcessing | None:
    """The post-processing the run's regimes declare (None: the default); two regimes that both set
    one are refused.

    Raises:
        SettingsError: two regimes of the run set the post-processing.
    """
    declared = [(r.name, pp) for r in run_regimes for pp in [r.postprocessing()] if pp is not None]
    if len(declared) > 1:
        raise SettingsError(f"regimes {' and '.join(n for n, _ in declared)} both set the post-processing of "
                            f"the model; train them in separate runs")
    return declared[0][1] if declared else None


def migrate(config: dict) -> None:
    """Let every regime upgrade an older model file's ``config.json`` (in place)."""
    for r in regimes():
        r.migrate(config)


def default_tasks(n_classes: int = 1, weights: Mapping[str, float] | None = None) -> list[TaskSpec]:
    """The tasks of a run on the required inputs only (no opt-in regime): the lazy tasks of Ke et al."""
    return tasks_of(configure(trained_regimes(())), n_classes, weights or {})


def baseline_tasks(n_classes: int = 1) -> list[TaskSpec]:
    """The one task of a plain U-Net baseline: the foreground regime's (exact masks)."""
    return regime_with_role(FOREGROUND).configure().tasks(n_classes)
