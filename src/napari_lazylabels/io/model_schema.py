"""The schema of a model folder's files: every field of ``config.json`` and ``training_state.pt``, in one place.

``config.json`` (:data:`CONFIG_FIELDS`)::

    format           text            "napari-lazylabels-model"
    format_version   whole number    1 .. the newest this version reads (1 is upgraded)
    network          object          NetworkConfig's fields and checks
    tasks            list of objects TaskSpec's fields and checks; at least one, names unique,
                                     loss one of the known losses
    class_names      list of text    optional
    normalization    object          optional: NormalizationConfig (percentiles 0..100, low < high)
    patch_size       whole number    optional (128): >= 16
    postprocess      object          optional: PostProcessing and its InstanceParams
    provenance       object          optional, free-form

``training_state.pt`` (:data:`STATE_FIELDS`)::

    step             whole number    >= 0
    optimizer        object          "state" (object) and "param_groups" (list of objects with
                                     "params", a list of whole numbers); for resuming it must fit
                                     the network: as many parameters, each of the same shape
    history          object          optional: name -> list of numbers

Sizes are bounded before anything is built from them, so a hostile or broken
file is one line, not gigabytes of memory: every dataclass bounds its own
(``network``: depth <= 8, base_channels <= 512, convs_per_block <= 8,
in_channels <= 1024; a task: n_classes <= 1024, components <= 64,
statistics <= 8; ``postprocess.instances.min_peak_distance`` <= 1000), at
most :data:`MAX_TASKS` tasks and :data:`MAX_CLASS_NAMES` class names, whole
numbers of at most 19 digits; then the network's parameters are counted from
the config (on PyTorch's ``meta`` device, no memory) and refused beyond
:data:`~napari_lazylabels.engine.model.MAX_PARAMETERS`. The weights file and
the training state may then hold no more than those parameters need
(:func:`weights_limit`, :func:`state_limit`): that too is checked before they
are read (:mod:`.modelio`).

An object's fields are typed by its dataclass's annotations (``int``: a whole
number, ``float``: a number, ``bool``, ``str``, ``X | None``, ``tuple[...]``: a
list, a dataclass: an object); fields a dataclass does not have are ignored
(files of other versions). The ranges are the dataclasses' own checks. Every
problem is a one-line :class:`~napari_lazylabels.errors.ModelFileError` naming
the folder, the file and the field, e.g. ``m: config.json: tasks[0].n_classes
must be a whole number, got '3'``.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any, Callable, Mapping, Sequence

from ..engine.config import MIN_PATCH_SIZE, NetworkConfig, NormalizationConfig, from_known_fields, shown_value
from ..engine.model import check_network_size
from ..engine.postprocess.settings import PostProcessing
from ..engine.tasks import LOSS_NAMES, TaskSpec
from ..errors import LazyLabelsError, ModelFileError

__all__ = ["ModelConfig", "CONFIG_FIELDS", "STATE_FIELDS", "parse_config", "parse_training_state",
           "check_state_fits", "non_finite", "weights_limit", "state_limit"]

FORMAT = "napari-lazylabels-model"
FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
STATE_FILE = "training_state.pt"
#: The most heads, and class names, a config may list.
MAX_TASKS = 64
MAX_CLASS_NAMES = 1024
#: Whole numbers in a model file are 64-bit.
MAX_WHOLE = 2**63 - 1

#: config.json: field -> (type, required).
CONFIG_FIELDS: dict[str, tuple[Any, bool]] = {
    "format": (str, True),
    "format_version": (int, False),
    "network": (NetworkConfig, True),
    "tasks": (list[TaskSpec], True),
    "class_names": (list[str], False),
    "normalization": (NormalizationConfig, False),
    "patch_size": (int, False),
    "postprocess": (PostProcessing, False),
    "provenance": (dict, False),
}

#: training_state.pt: field -> (type, required); the optimiser's inner fields are checked by :func:`parse_training_state`.
STATE_FIELDS: dict[str, tuple[Any, bool]] = {
    "step": (int, True),
    "optimizer": (dict, True),
    "history": (dict[str, list[float]], False),
}


class _Invalid(Exception):
    """One field that is wrong (its path and the problem)."""


@dataclass
class ModelConfig:
    """The typed content of a ``config.json``."""

    format_version: int
    network: NetworkConfig
    tasks: list[TaskSpec]
    class_names: list[str]
    normalization: NormalizationConfig
    patch_size: int
    postprocess: PostProcessing
    provenance: dict
    parameters: int = 0        # of the network it describes (counted, not built)
    buffers: int = 0           # values of its buffers (BatchNorm statistics)


def weights_limit(config: ModelConfig) -> int:
    """The most bytes the weights of ``config``'s network may take: 8 bytes a value (float64 at most),
    plus 16 MiB for the file's header."""
    return 8 * (config.parameters + config.buffers) + (16 << 20)


def state_limit(config_or_parameters: ModelConfig | int) -> int:
    """The most bytes a training state may take: Adam's two moments (8 bytes a parameter each, at
    most) and 256 MiB for the step, the loss history and the optimiser's settings."""
    n = config_or_parameters.parameters if isinstance(config_or_parameters, ModelConfig) else config_or_parameters
    return 16 * n + (256 << 20)


# ----------------------------------------------------------------- types

def _show(value: Any) -> str:
    try:
        text = shown_value(value)
    except ValueError:       # a list holding an integer too long to print
        text = f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_kind(a) for a in args) + (" or null" if len(args) < len(typing.get_args(tp)) else "")
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    if tp is str:
        return "text"
    if origin in (list, tuple) or tp in (list, tuple):
        return "a list"
    return "an object"


def _check(value: Any, tp: Any, where: str) -> None:
    """Check a JSON (or state dict) value against a type annotation; raise _Invalid naming ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return
        others = [a for a in args if a is not type(None)]
        for a in others:
            try:
                return _check(value, a, where)
            except _Invalid:
                if len(others) == 1:
                    raise
        raise _Invalid(f"{where} must be {_kind(tp)}, got {_show(value)}")
    ok = True
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp in (int, float) and isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WHOLE:
        raise _Invalid(f"{where} must be a whole number of at most 19 digits, got {shown_value(value)}")
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp is str:
        ok = isinstance(value, str)
    elif origin in (list, tuple) or tp in (list, tuple):
        ok = isinstance(value, (list, tuple))
        if ok:
            item = (typing.get_args(tp) or (Any,))[0]
            for i, v in enumerate(value):
                if item is not Any:
                    _check(v, item, f"{where}[{i}]")
    elif origin is dict or tp is dict:
        ok = isinstance(value, dict)
        if ok and typing.get_args(tp):
            key_t, val_t = typing.get_args(tp)
            for k, v in value.items():
                _check(k, key_t, f"{where} key")
                _check(v, val_t, f"{where}[{k!r}]")
    elif is_dataclass(tp):
        _check_object(value, tp, where)
        return
    if not ok:
        raise _Invalid(f"{where} must be {_kind(tp)}, got {_show(value)}")


def _check_object(value: Any, cls: type, where: str) -> None:
    if not isinstance(value, dict):
        raise _Invalid(f"{where} must be an object, got {_show(value)}")
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if "flat" in f.metadata:    # an object whose fields lie flat among its holder's (a task's mixture head)
            _check_object(value, f.metadata["flat"], where)
        elif f.name in value:
            _check(value[f.name], hints[f.name], f"{where}.{f.name}")
        elif f.default is MISSING and f.default_factory is MISSING:
            raise _Invalid(f"{where}.{f.name} is missing")


def _build(where: str, make: Callable[[], Any]) -> Any:
    """``make()``, its range errors (the dataclasses' own checks) named by ``where``."""
    try:
        return make()
    except (LazyLabelsError, ValueError, TypeError, KeyError) as exc:
        text = str(exc)
        raise _Invalid(text if text.startswith(f"{where}.") else f"{where}: {text}") from None


def _fields(raw: Mapping, spec: Mapping[str, tuple[Any, bool]], prefix: str = "") -> dict[str, Any]:
    """The fields of ``spec`` present in ``raw`` (null counts as absent for optional ones), type-checked."""
    out = {}
    for name, (tp, required) in spec.items():
        value = raw.get(name)
        if value is None and not required:
            continue
        if name not in raw:
            raise _Invalid(f"{prefix}{name} is missing")
        _check(value, tp, f"{prefix}{name}")
        out[name] = value
    return out


# ----------------------------------------------------------------- config.json

def parse_config(raw: Any, source: str, upgrade: Callable[[dict], None] | None = None) -> ModelConfig:
    """Check every field of a ``config.json`` and return it typed.

    ``upgrade(raw)`` (in place) brings a format 1 file up to date; it is called
    once the version and the containers it walks are known to be sound.

    Raises:
        ModelFileError: naming the field that is wrong.
    """
    try:
        return _parse_config(raw, upgrade)
    except _Invalid as exc:
        raise ModelFileError(f"{CONFIG_FILE}: {exc}", source=source) from None


def _parse_config(raw: Any, upgrade: Callable[[dict], None] | None) -> ModelConfig:
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _Invalid("is not a napari-lazylabels model config (no \"format\": \"napari-lazylabels-model\")")
    version = raw.get("format_version", 1)
    _check(version, int, "format_version")
    if version > FORMAT_VERSION:
        raise _Invalid(f"model format version {version} is newer than this napari-lazylabels understands "
                       f"({FORMAT_VERSION})")
    if version < 1:
        raise _Invalid(f"format_version must be 1 or more, got {version}")
    if version < 2 and upgrade is not None:
        _check(raw.get("tasks"), list, "tasks")
        _check(raw.get("provenance"), dict | None, "provenance")
        upgrade(raw)
    values = _fields(raw, CONFIG_FIELDS)
    if not values["tasks"]:
        raise _Invalid("tasks is empty (a model has at least one head)")
    for name, most in (("tasks", MAX_TASKS), ("class_names", MAX_CLASS_NAMES)):
        if len(values.get(name, ())) > most:
            raise _Invalid(f"{name} has {len(values[name])} entries, more than the {most} a model may have")
    known = set(TaskSpec.file_fields())
    tasks = [_build(f"tasks[{i}]", lambda t=t: TaskSpec.from_dict({k: v for k, v in t.items() if k in known}))
             for i, t in enumerate(values["tasks"])]
    names = [t.name for t in tasks]
    for i, t in enumerate(tasks):
        if names.count(t.name) > 1:
            raise _Invalid(f"tasks[{i}].name {t.name!r} is used by more than one task")
        if t.loss not in LOSS_NAMES:
            raise _Invalid(f"tasks[{i}].loss must be one of {sorted(LOSS_NAMES)}, got {t.loss!r}")
    patch = values.get("patch_size", 128)
    if patch < MIN_PATCH_SIZE:
        raise _Invalid(f"patch_size must be a whole number >= {MIN_PATCH_SIZE}, got {patch}")
    network = _build("network", lambda: NetworkConfig.from_dict(values["network"]))
    parameters, buffers = _build("network", lambda: check_network_size(network, tasks))
    return ModelConfig(
        format_version=version,
        network=network,
        tasks=tasks,
        class_names=list(values.get("class_names", [])),
        normalization=_build("normalization",
                             lambda: from_known_fields(NormalizationConfig, values.get("normalization", {}))),
        patch_size=patch,
        postprocess=_build("postprocess", lambda: PostProcessing.from_dict(values.get("postprocess", {}))),
        provenance=dict(values.get("provenance", {})),
        parameters=parameters,
        buffers=buffers,
    )


# ----------------------------------------------------------------- training_state.pt

def parse_training_state(raw: Any, source: str) -> dict:
    """Check every field of a loaded ``training_state.pt``; return ``step``, ``optimizer``, ``history``.

    Raises:
        ModelFileError: naming the field that is wrong.
    """
    try:
        if not isinstance(raw, dict):
            raise _Invalid(f"must hold an object (a state dict), got {type(raw).__name__}")
        values = _fields(raw, STATE_FIELDS)
        if values["step"] < 0:
            raise _Invalid(f"step must be a whole number >= 0, got {values['step']}")
        opt = values["optimizer"]
        _fields(opt, {"state": (dict, True), "param_groups": (list[dict], True)}, prefix="optimizer.")
        for i, group in enumerate(opt["param_groups"]):
            _fields(group, {"params": (list[int], True)}, prefix=f"optimizer.param_groups[{i}].")
        for key, entry in opt["state"].items():
            _check(key, int, "optimizer.state key")
            _check(entry, dict, f"optimizer.state[{key}]")
        return {"step": values["step"], "optimizer": opt,
                "history": {k: [float(v) for v in vals] for k, vals in values.get("history", {}).items()}}
    except _Invalid as exc:
        raise ModelFileError(f"{STATE_FILE}: {exc}", source=source) from None


def check_state_fits(optimizer: Mapping, parameters: Sequence, source: str) -> None:
    """Refuse an optimiser state made for another network: the parameter count and every shape must match.

    Raises:
        ModelFileError: naming the first parameter that differs.
    """
    ids = [p for g in optimizer["param_groups"] for p in g["params"]]
    if len(ids) != len(parameters):
        raise ModelFileError(f"{STATE_FILE}: optimizer holds the state of {len(ids)} parameters, the network has "
                             f"{len(parameters)} (it comes from another architecture)", source=source)
    for i, (pid, param) in enumerate(zip(ids, parameters)):
        entry = optimizer["state"].get(pid) or {}
        for name, value in entry.items():
            shape = getattr(value, "shape", None)
            if shape is not None and len(shape) > 0 and tuple(shape) != tuple(param.shape):
                raise ModelFileError(f"{STATE_FILE}: optimizer.state[{pid}].{name} has shape {tuple(shape)}, "
                                     f"parameter {i} of the network has {tuple(param.shape)} (it comes from "
                                     f"another architecture)", source=source)


def non_finite(tensors: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors that hold NaN or infinite values."""
    import torch
    return [k for k, v in tensors.items()
            if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
