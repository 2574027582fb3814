"""A trained model: the network with everything needed to use it on new images.

Saved and loaded as a folder by :mod:`napari_lazylabels.io.modelio`; made by
:meth:`~napari_lazylabels.engine.training.trainer.Trainer.model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ModelFileError
from .annotations import PixelSize
from .config import NetworkConfig, NormalizationConfig
from .device import resolve_device
from .inference import mean_over_flips, predict_tiled
from .model import LazyUNet
from .normalize import normalize, normalize_with, to_chw
from .postprocess.settings import PostProcessing
from .tasks import TaskSpec


@dataclass
class LazyLabelsModel:
    """A network with its tasks, class names, normalisation, post-processing and provenance."""

    network: LazyUNet
    tasks: list[TaskSpec]
    class_names: list[str]
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    patch_size: int = 128
    postprocess: PostProcessing = field(default_factory=PostProcessing)
    provenance: dict = field(default_factory=dict)

    @property
    def network_config(self) -> NetworkConfig:
        return self.network.config

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def training_pixel_size(self) -> PixelSize | None:
        """The pixel size of the images it was trained on (``provenance["pixel_size"]``), when known."""
        size = self.provenance.get("pixel_size")
        try:
            return PixelSize.from_dict(size) if isinstance(size, dict) else None
        except (KeyError, TypeError, ValueError):
            return None

    def weights_are_finite(self) -> bool:
        return all(bool(torch.isfinite(v).all()) for v in self.network.state_dict().values()
                   if v.dtype.is_floating_point)

    def predict(self, image: np.ndarray, *, device: str | torch.device = "cpu", tile_size: int = 1024,
                batch_size: int = 2, progress=None, components: bool = False,
                flips: bool = False, ranges=None) -> dict[str, np.ndarray]:
        """Per-task probabilities (C, H, W) for a raw YX or YXC image (``components=True``: per
        mixture component, (C * M, H, W), see :func:`~.inference.predict_tiled`).

        ``ranges``: each channel's (low, high) to normalise with (:func:`~.normalize.channel_ranges`
        of a larger image this one is cut from); by default the image's own percentiles.

        ``flips``: test-time augmentation, the mean of the probabilities of the image and of its
        three flips (up-down, left-right, both), each flipped back (four times the work)."""
        device = resolve_device(device)
        self.network.to(device)
        norm = normalize(image, self.normalization) if ranges is None else normalize_with(to_chw(image), ranges)
        if norm.shape[0] != self.network_config.in_channels:
            raise ModelFileError(f"the model expects {self.network_config.in_channels} channel(s), "
                                 f"the image has {norm.shape[0]}")

        def one_pass(axes: tuple[int, ...], report) -> dict[str, np.ndarray]:
            out = predict_tiled(self.network, np.ascontiguousarray(np.flip(norm, axes)), tile_size=tile_size,
                                batch_size=batch_size, device=device, progress=report, components=components)
            return {k: np.flip(v, axes) for k, v in out.items()}

        return mean_over_flips(one_pass, flips, progress)
