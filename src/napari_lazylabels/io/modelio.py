"""A trained model as a folder: weights that load without unpickling, and JSON.

Layout of a model directory::

    config.json          format, architecture, tasks, class names, normalisation, provenance
    model.safetensors    the network's weights (safetensors: tensors only, no code)
    training_state.pt    optional: optimiser state and step, to resume training
                         (a plain state dict, loaded with ``weights_only=True``)
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .. import __version__
from .atomic import atomic_write_dir
from ..engine.config import NetworkConfig, NormalizationConfig
from ..errors import ModelFileError
from ..engine.model import LazyUNet, build_model
from ..engine.tasks import TaskSpec

FORMAT = "napari-lazylabels-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"


def versions() -> dict[str, str]:
    return {"napari_lazylabels": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class LazyLabelsModel:
    """A network with everything needed to use it on new images."""

    network: LazyUNet
    tasks: list[TaskSpec]
    class_names: list[str]
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    patch_size: int = 128
    provenance: dict = field(default_factory=dict)

    @property
    def network_config(self) -> NetworkConfig:
        return self.network.config

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def config_dict(self) -> dict:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "network": self.network_config.to_dict(),
            "tasks": [t.to_dict() for t in self.tasks],
            "class_names": list(self.class_names),
            "normalization": {"low": self.normalization.low, "high": self.normalization.high},
            "patch_size": self.patch_size,
            "provenance": self.provenance,
        }

    def write_into(self, folder: Path, training_state: dict | None = None) -> None:
        """Write the model files into an existing folder (no atomicity: see ``save``)."""
        folder = Path(folder)
        state = {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        (folder / CONFIG_FILE).write_text(json.dumps(self.config_dict(), indent=2))
        if training_state is not None:
            torch.save(training_state, folder / STATE_FILE)

    def save(self, path: str | Path, *, overwrite: bool = False, training_state: dict | None = None) -> Path:
        """Write the model directory atomically; refuse an existing one unless ``overwrite``."""
        path = Path(path)
        atomic_write_dir(path, lambda tmp: self.write_into(Path(tmp), training_state), overwrite=overwrite)
        return path

    def predict(self, image: np.ndarray, *, device: str | torch.device = "cpu", tile_size: int = 1024,
                batch_size: int = 2, progress=None) -> dict[str, np.ndarray]:
        """Per-task probabilities (C, H, W) for a raw YX or YXC image."""
        from ..engine.inference import predict_tiled
        from ..engine.normalize import normalize
        device = torch.device(device) if not isinstance(device, str) or device != "auto" else _auto()
        self.network.to(device)
        norm = normalize(image, self.normalization)
        if norm.shape[0] != self.network_config.in_channels:
            raise ModelFileError(f"the model expects {self.network_config.in_channels} channel(s), "
                                 f"the image has {norm.shape[0]}")
        return predict_tiled(self.network, norm, tile_size=tile_size, batch_size=batch_size,
                             device=device, progress=progress)


def _auto() -> torch.device:
    from ..engine.device import select_device
    return select_device("auto")


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
    if cfg.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"model format version {cfg.get('format_version')} is newer than this "
                             f"napari-lazylabels understands ({FORMAT_VERSION})", source=str(path))
    return cfg


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LazyLabelsModel:
    """Load a model directory; any missing, empty or corrupt part is a ModelFileError."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError("model directory not found", source=str(path))
    if not path.is_dir():
        raise ModelFileError("is a file, not a model directory", source=str(path))
    if not any(path.iterdir()):
        raise ModelFileError("model directory is empty", source=str(path))
    cfg = _read_config(path)
    try:
        net_cfg = NetworkConfig.from_dict(cfg["network"])
        tasks = [TaskSpec.from_dict(t) for t in cfg["tasks"]]
        norm = NormalizationConfig(**cfg.get("normalization", {}))
    except (KeyError, TypeError, ValueError) as exc:
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
                           int(cfg.get("patch_size", 128)), dict(cfg.get("provenance") or {}))


def load_training_state(path: str | Path) -> dict | None:
    """The optimiser state and step saved beside a model, or None (never unpickles code)."""
    f = Path(path) / STATE_FILE
    if not f.is_file():
        return None
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{STATE_FILE} is corrupt ({exc.__class__.__name__})", source=str(path))


def default_class_names(n: int) -> list[str]:
    return [f"class {i}" for i in range(1, n + 1)]


def task_classes(tasks: Sequence[TaskSpec]) -> int:
    """Number of object classes K of a task list (segmentation's classes minus background)."""
    for t in tasks:
        if t.name == "segmentation":
            return t.n_classes - 1
    return max(t.n_classes for t in tasks) - 1
