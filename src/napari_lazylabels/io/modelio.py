"""A trained model as a folder: weights that load without unpickling, and JSON.

Layout of a model directory::

    config.json          format, architecture, tasks, class names, normalisation,
                         post-processing, provenance
    model.safetensors    the network's weights (safetensors: tensors only, no code)
    training_state.pt    optional: optimiser state, step and loss history, to resume
                         training (a plain state dict, loaded with ``weights_only=True``)
    <artifacts>          optional: files a regime keeps (e.g. approximations/round_XX.npz,
                         arrays only, loaded without pickles; JSON files)

Format 2 added the typed ``postprocess`` field and the heads' ``role``; a
format 1 folder is upgraded when it is read (by the registry's regimes).
:func:`load_model` also reads a bioimage.io package written by
:func:`~napari_lazylabels.io.bioimageio.export_bioimageio` (its
``lazylabels_config.json`` and ``weights.pt``, without unpickling), through
the same checks as a folder.

Every field of ``config.json`` and ``training_state.pt`` is checked by the one
schema of :mod:`.model_schema`; weights that are not finite are refused. Only
regular files are read (:mod:`.files`), JSON within limits (:mod:`.jsonfile`),
and the weights, the training state and a package's members only when their
sizes fit the network the config describes (counted before it is built).
``overwrite`` replaces only a model folder (:func:`is_model_folder`) holding
nothing this tool did not write (:func:`~.own_outputs.foreign_model_entries`),
or an empty one.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..engine.model import MAX_PARAMETERS, build_model
from ..engine.regimes import registry
from ..engine.trained_model import LazyLabelsModel
from ..engine.training.trainer import TrainingState
from ..errors import LazyLabelsError, ModelFileError
from .atomic import atomic_write_dir, recover
from .disk_errors import serialiser_errors
from .files import check_zip_members, read_bytes, regular_file
from .jsonfile import MAX_JSON_BYTES, parse_json, read_json, reason
from .model_schema import (CONFIG_FILE, FORMAT, FORMAT_VERSION, STATE_FILE, check_state_fits,
                           non_finite, parse_config, parse_training_state, state_limit, weights_limit)
from .own_outputs import foreign_model_entries

WEIGHTS_FILE = "model.safetensors"
#: In a bioimage.io package (:mod:`.bioimageio`): the model's config.json, and the state dict weights.
PACKAGE_CONFIG = "lazylabels_config.json"
PACKAGE_WEIGHTS = "weights.pt"
#: What ``--overwrite`` replaces: only a folder like this (or an empty one).
MODEL_FOLDER = "a napari-lazylabels model folder (with its config.json, and nothing else of yours)"

Artifacts = Mapping[str, Mapping[str, Any]]


def config_dict(model: LazyLabelsModel) -> dict:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "network": model.network_config.to_dict(),
        "tasks": [t.to_dict() for t in model.tasks],
        "class_names": list(model.class_names),
        "normalization": {"low": model.normalization.low, "high": model.normalization.high},
        "patch_size": model.patch_size,
        "postprocess": model.postprocess.to_dict(),
        "provenance": model.provenance,
    }


def _write_artifacts(folder: Path, artifacts: Artifacts) -> None:
    for rel, content in artifacts.items():
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or len(parts) != 2:
            raise LazyLabelsError(f"artifact path {rel!r} must be FOLDER/FILE inside the model folder")
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".npz"):
            np.savez_compressed(target, **{k: np.asarray(v) for k, v in content.items()})
        elif rel.endswith(".json"):
            target.write_text(json.dumps(dict(content), indent=2))
        else:
            raise LazyLabelsError(f"artifact {rel!r}: only .npz and .json files are written")


def write_model_into(folder: Path, model: LazyLabelsModel, training_state: TrainingState | None = None,
                     artifacts: Artifacts | None = None) -> None:
    """Write the model files into an existing folder (no atomicity: see :func:`save_model`).

    Raises:
        OSError: a write failed (a full disk: ``ENOSPC``, also from safetensors and torch.save).
    """
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in model.network.state_dict().items()}
    with serialiser_errors(folder):
        save_file(state, str(folder / WEIGHTS_FILE))
        (folder / CONFIG_FILE).write_text(json.dumps(config_dict(model), indent=2))
        if training_state is not None:
            torch.save(training_state.to_dict(), folder / STATE_FILE)
        _write_artifacts(folder, artifacts or {})


def save_model(model: LazyLabelsModel, path: str | Path, *, overwrite: bool = False,
               training_state: TrainingState | None = None, artifacts: Artifacts | None = None) -> Path:
    """Write the model directory atomically; refuse an existing one unless ``overwrite``.

    ``training_state`` (to resume) and ``artifacts`` (a regime's files,
    relative path -> arrays for ``.npz`` or a JSON dict for ``.json``) are optional.
    """
    return atomic_write_dir(Path(path), lambda tmp: write_model_into(Path(tmp), model, training_state, artifacts),
                            overwrite=overwrite, replaceable=replaceable_model_folder, what=MODEL_FOLDER)


def is_model_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder with this tool's ``config.json`` (what ``--overwrite`` may replace)."""
    try:
        cfg = read_json(Path(path) / CONFIG_FILE)
    except LazyLabelsError:
        return False
    return isinstance(cfg, dict) and cfg.get("format") == FORMAT


def replaceable_model_folder(path: str | Path) -> bool:
    """Whether ``overwrite`` may replace ``path``: a model folder holding only what this tool wrote."""
    return is_model_folder(path) and not foreign_model_entries(path)


def _read_config(path: Path) -> dict:
    cfg_path = path / CONFIG_FILE
    if not (cfg_path.exists() or cfg_path.is_symlink()):
        raise ModelFileError(f"not a model directory (no {CONFIG_FILE})", source=str(path))
    return read_json(cfg_path, "a model config", error=ModelFileError, source=str(path))


def _model_file(path: Path, name: str, limit: int, what: str) -> Path:
    """``path / name``, a regular file of at most ``limit`` bytes (checked before it is read)."""
    f = path / name
    size = regular_file(f, what, error=ModelFileError, source=str(path), missing="is missing").st_size
    if size > limit:
        raise ModelFileError(f"{name} is {size:,} bytes, more than the {limit:,} the network of {CONFIG_FILE} "
                             f"needs", source=str(path))
    return f


def _upgrade_v1(cfg: dict) -> None:
    """Format 1 named the decoder paths after the tasks and had no roles nor post-processing field:
    each task takes both from the regime that trains it today, and the regimes fill in the rest."""
    for t in cfg.get("tasks") or []:
        template = registry.task_template(t.get("name", "")) if isinstance(t, dict) else None
        if template is not None:
            t["features"] = template.features
            t.setdefault("role", template.role)
    registry.migrate(cfg)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LazyLabelsModel:
    """Load a model directory (or a bioimage.io package written by ``lazylabels export``); any missing,
    empty or corrupt part is a ModelFileError."""
    path = recover(Path(path))
    if not path.exists():
        raise ModelFileError("model directory not found", source=str(path))
    if is_bioimageio_package(path):
        return load_bioimageio(path, device)
    if not path.is_dir():
        raise ModelFileError("is a file, not a model directory (nor a bioimage.io package)", source=str(path))
    if not any(path.iterdir()):
        raise ModelFileError("model directory is empty", source=str(path))
    cfg = parse_config(_read_config(path), str(path), upgrade=_upgrade_v1)
    if not (path / WEIGHTS_FILE).exists():
        raise ModelFileError(f"weights file {WEIGHTS_FILE} is missing", source=str(path))
    weights = _model_file(path, WEIGHTS_FILE, weights_limit(cfg), "a weights file")
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ModelFileError(f"{WEIGHTS_FILE} is corrupt ({exc.__class__.__name__})", source=str(path))
    network = build_model(cfg.network, cfg.tasks)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError:
        raise ModelFileError(f"{WEIGHTS_FILE} does not match the architecture in {CONFIG_FILE}",
                             source=str(path))
    bad = non_finite(state)
    if bad:
        raise ModelFileError(f"{WEIGHTS_FILE}: {len(bad)} of {len(state)} weight tensors hold NaN or infinite "
                             f"values (e.g. {bad[0]}): the training diverged; train again, e.g. with a "
                             f"lower --lr", source=str(path))
    network.to(device).eval()
    return LazyLabelsModel(network, cfg.tasks, cfg.class_names, cfg.normalization, cfg.patch_size,
                           cfg.postprocess, cfg.provenance)


def load_training_state(path: str | Path, network: torch.nn.Module | None = None) -> TrainingState | None:
    """The optimiser state, step and history saved beside a model, or None (never unpickles code).

    With ``network``, the optimiser state must fit it (every parameter's shape).

    Raises:
        ModelFileError: the file cannot be read, a field is wrong (named), or
            it was made for another network.
    """
    f = Path(path) / STATE_FILE
    if not (f.exists() or f.is_symlink()):
        return None
    parameters = MAX_PARAMETERS if network is None else sum(p.numel() for p in network.parameters())
    _model_file(Path(path), STATE_FILE, state_limit(parameters), "a training state")
    if zipfile.is_zipfile(f):
        try:
            with zipfile.ZipFile(f) as zf:
                check_zip_members(zf, state_limit(parameters), STATE_FILE, error=ModelFileError, source=str(path))
        except zipfile.BadZipFile:
            pass                                    # torch.load says it is corrupt
    try:
        raw = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{STATE_FILE} is corrupt ({exc.__class__.__name__})", source=str(path))
    values = parse_training_state(raw, str(path))
    if network is not None:
        check_state_fits(values["optimizer"], list(network.parameters()), str(path))
    return TrainingState(step=values["step"], optimizer=values["optimizer"], history=values["history"])


def load_artifacts(path: str | Path) -> dict[str, dict[str, Any]]:
    """The regimes' files of a model folder (``FOLDER/FILE.npz``: arrays, no pickles;
    ``FOLDER/FILE.json``), keyed by their path relative to it, as :func:`save_model` takes them."""
    root = Path(path)
    out: dict[str, dict[str, Any]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        for f in sorted(sub.iterdir()):
            rel = f"{sub.name}/{f.name}"
            if f.suffix not in (".npz", ".json"):
                continue
            regular_file(f, "a model's file", error=ModelFileError, source=str(root))
            try:
                if f.suffix == ".npz":
                    with np.load(f, allow_pickle=False) as data:
                        out[rel] = {k: data[k] for k in data.files}
                else:
                    out[rel] = read_json(f, error=ModelFileError, source=f"{root}/{sub.name}")
            except (OSError, ValueError) as exc:
                raise ModelFileError(f"{rel} is corrupt ({exc.__class__.__name__})", source=str(root))
    return out


# ----------------------------------------------------------------- bioimage.io packages

def is_bioimageio_package(path: str | Path) -> bool:
    """A zip file with an ``rdf.yaml`` (or a folder with one and no ``config.json``)."""
    path = Path(path)
    if path.is_dir():
        return (path / "rdf.yaml").is_file() and not (path / CONFIG_FILE).is_file()
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(Path(n).name in ("rdf.yaml", "bioimageio.yaml") for n in zf.namelist())


def _read_member(path: Path, name: str, limit: int, what: str) -> bytes:
    """A file of a package (zip or folder), of at most ``limit`` bytes: a zip member by its declared
    size, before it is extracted (KeyError: there is no such member)."""
    if path.is_dir():
        f = path / name
        if not (f.exists() or f.is_symlink()):
            raise KeyError(name)
        return read_bytes(f, limit, what, error=ModelFileError, source=str(path))
    with zipfile.ZipFile(path) as zf:
        zf.getinfo(name)
        check_zip_members(zf, limit, f"the package's {name}", names=[name], error=ModelFileError, source=str(path))
        return zf.read(name)


def _in_package(exc: ModelFileError, source: str) -> ModelFileError:
    text = str(exc)[len(f"{exc.source}: "):] if exc.source else str(exc)
    return ModelFileError(f"{text} (in the package)", source=source)


def load_bioimageio(path: str | Path, device: str | torch.device = "cpu") -> LazyLabelsModel:
    """A package written by :func:`~napari_lazylabels.io.bioimageio.export_bioimageio` (zip or unpacked
    folder) as a model: its config and state dict become a model folder, read by :func:`load_model`.

    The config is read (at most :data:`~.jsonfile.MAX_JSON_BYTES`) and checked first; the weights
    are then read only if their size fits the network it describes.

    Raises:
        ModelFileError: not such a package (no ``lazylabels_config.json``), a wrong config field, or
            its weights are missing, too large, corrupt or do not fit.
    """
    path = Path(path)
    source = str(path)
    try:
        raw = parse_json(_read_member(path, PACKAGE_CONFIG, MAX_JSON_BYTES, "a model config"))
        weights = str(raw.pop("weights", PACKAGE_WEIGHTS)) if isinstance(raw, dict) else PACKAGE_WEIGHTS
    except KeyError:
        raise ModelFileError(f"a bioimage.io package, but not one written by napari-lazylabels (no "
                             f"{PACKAGE_CONFIG}); run it with the bioimage.io tools", source=source) from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        detail = reason(exc) if isinstance(exc, ValueError) else type(exc).__name__
        raise ModelFileError(f"cannot read the package ({detail})", source=source) from None
    try:
        cfg = parse_config(raw, source, upgrade=_upgrade_v1)
    except ModelFileError as exc:
        raise _in_package(exc, source) from None
    try:
        data = _read_member(path, weights, weights_limit(cfg), "a weights file")
    except KeyError:
        raise ModelFileError(f"the weights {weights} are missing from the package", source=source) from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:     # a PyTorch file is a zip too
            check_zip_members(inner, weights_limit(cfg), f"the package's {weights}", error=ModelFileError,
                              source=source)
    except zipfile.BadZipFile:
        pass                                                 # torch.load says what is wrong with it
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        state = {k: v.contiguous() for k, v in state.items()}
    except Exception as exc:
        raise ModelFileError(f"the weights {weights} are corrupt ({type(exc).__name__})", source=source) from None
    del data
    with tempfile.TemporaryDirectory(prefix="lazylabels-package-") as tmp:
        folder = Path(tmp)
        (folder / CONFIG_FILE).write_text(json.dumps(raw))
        save_file(state, str(folder / WEIGHTS_FILE))
        try:
            return load_model(folder, device)
        except ModelFileError as exc:
            raise _in_package(exc, source) from None
