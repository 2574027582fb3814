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

from ..engine.config import NetworkConfig, NormalizationConfig
from ..engine.model import build_model
from ..engine.postprocess.settings import PostProcessing
from ..engine.regimes import registry
from ..engine.tasks import TaskSpec
from ..engine.trained_model import LazyLabelsModel
from ..engine.training.trainer import TrainingState
from ..errors import LazyLabelsError, ModelFileError
from .atomic import atomic_write_dir

FORMAT = "napari-lazylabels-model"
FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
#: In a bioimage.io package (:mod:`.bioimageio`): the model's config.json, and the state dict weights.
PACKAGE_CONFIG = "lazylabels_config.json"
PACKAGE_WEIGHTS = "weights.pt"

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
    """Write the model files into an existing folder (no atomicity: see :func:`save_model`)."""
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in model.network.state_dict().items()}
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
                            overwrite=overwrite)


def _read_config(path: Path) -> dict:
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelFileError(f"not a model directory (no {CONFIG_FILE})", source=str(path))
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{CONFIG_FILE} is not valid JSON ({exc.__class__.__name__})", source=str(path))
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise ModelFileError(f"{CONFIG_FILE} is not a napari-lazylabels model config", source=str(path))
    version = cfg.get("format_version", 1)
    if not isinstance(version, int):
        raise ModelFileError(f"{CONFIG_FILE}: format_version must be a whole number, got {version!r}",
                             source=str(path))
    if version > FORMAT_VERSION:
        raise ModelFileError(f"model format version {version} is newer than this "
                             f"napari-lazylabels understands ({FORMAT_VERSION})", source=str(path))
    if version < 2:
        _upgrade_v1(cfg)
    return cfg


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
    path = Path(path)
    if not path.exists():
        raise ModelFileError("model directory not found", source=str(path))
    if is_bioimageio_package(path):
        return load_bioimageio(path, device)
    if not path.is_dir():
        raise ModelFileError("is a file, not a model directory (nor a bioimage.io package)", source=str(path))
    if not any(path.iterdir()):
        raise ModelFileError("model directory is empty", source=str(path))
    cfg = _read_config(path)
    try:
        net_cfg = NetworkConfig.from_dict(cfg["network"])
        tasks = [TaskSpec.from_dict(t) for t in cfg["tasks"]]
        norm = NormalizationConfig(**cfg.get("normalization", {}))
        postprocess = PostProcessing.from_dict(cfg.get("postprocess") or {})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{CONFIG_FILE} is incomplete or invalid ({exc})", source=str(path))
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFileError(f"weights file {WEIGHTS_FILE} is missing", source=str(path))
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ModelFileError(f"{WEIGHTS_FILE} is corrupt ({exc.__class__.__name__})", source=str(path))
    network = build_model(net_cfg, tasks)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError:
        raise ModelFileError(f"{WEIGHTS_FILE} does not match the architecture in {CONFIG_FILE}",
                             source=str(path))
    network.to(device).eval()
    return LazyLabelsModel(network, tasks, list(cfg.get("class_names") or []), norm,
                           int(cfg.get("patch_size", 128)), postprocess, dict(cfg.get("provenance") or {}))


def load_training_state(path: str | Path) -> TrainingState | None:
    """The optimiser state, step and history saved beside a model, or None (never unpickles code)."""
    f = Path(path) / STATE_FILE
    if not f.is_file():
        return None
    try:
        raw = torch.load(f, map_location="cpu", weights_only=True)
        return TrainingState(step=int(raw["step"]), optimizer=raw["optimizer"],
                             history={k: list(v) for k, v in (raw.get("history") or {}).items()})
    except Exception as exc:
        raise ModelFileError(f"{STATE_FILE} is corrupt ({exc.__class__.__name__})", source=str(path))


def load_artifacts(path: str | Path) -> dict[str, dict[str, Any]]:
    """The regimes' files of a model folder (``FOLDER/FILE.npz``: arrays, no pickles;
    ``FOLDER/FILE.json``), keyed by their path relative to it, as :func:`save_model` takes them."""
    root = Path(path)
    out: dict[str, dict[str, Any]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        for f in sorted(sub.iterdir()):
            rel = f"{sub.name}/{f.name}"
            try:
                if f.suffix == ".npz":
                    with np.load(f, allow_pickle=False) as data:
                        out[rel] = {k: data[k] for k in data.files}
                elif f.suffix == ".json":
                    out[rel] = json.loads(f.read_text())
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


def _read_member(path: Path, name: str) -> bytes:
    if path.is_dir():
        f = path / name
        if not f.is_file():
            raise KeyError(name)
        return f.read_bytes()
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def load_bioimageio(path: str | Path, device: str | torch.device = "cpu") -> LazyLabelsModel:
    """A package written by :func:`~napari_lazylabels.io.bioimageio.export_bioimageio` (zip or unpacked
    folder) as a model: its config and state dict become a model folder, read by :func:`load_model`.

    Raises:
        ModelFileError: not such a package (no ``lazylabels_config.json``), or its weights are
            missing, corrupt or do not fit.
    """
    path = Path(path)
    source = str(path)
    try:
        cfg = json.loads(_read_member(path, PACKAGE_CONFIG))
        weights = str(cfg.pop("weights", PACKAGE_WEIGHTS)) if isinstance(cfg, dict) else PACKAGE_WEIGHTS
    except KeyError:
        raise ModelFileError(f"a bioimage.io package, but not one written by napari-lazylabels (no "
                             f"{PACKAGE_CONFIG}); run it with the bioimage.io tools", source=source) from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"cannot read the package ({type(exc).__name__})", source=source) from None
    try:
        state = torch.load(io.BytesIO(_read_member(path, weights)), map_location="cpu", weights_only=True)
        state = {k: v.contiguous() for k, v in state.items()}
    except KeyError:
        raise ModelFileError(f"the weights {weights} are missing from the package", source=source) from None
    except Exception as exc:
        raise ModelFileError(f"the weights {weights} are corrupt ({type(exc).__name__})", source=source) from None
    with tempfile.TemporaryDirectory(prefix="lazylabels-package-") as tmp:
        folder = Path(tmp)
        (folder / CONFIG_FILE).write_text(json.dumps(cfg))
        save_file(state, str(folder / WEIGHTS_FILE))
        try:
            return load_model(folder, device)
        except ModelFileError as exc:
            text = str(exc)[len(f"{exc.source}: "):] if exc.source else str(exc)
            raise ModelFileError(f"{text} (in the package)", source=source) from None
