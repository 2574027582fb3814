"""Typed configuration of the network and of a training run.

Every value is checked when a config is made: a bad one raises
:class:`~napari_lazylabels.errors.SettingsError` (a ``ValueError`` too) naming
the setting, whoever made it (the CLI, a widget, a script).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Mapping

from ..errors import SettingsError

#: Seeds must fit NumPy's legacy generator (and torch's).
MAX_SEED = 2**32 - 1

#: The largest sizes a network may have (a model file asking for more is refused before anything is
#: built; :data:`~napari_lazylabels.engine.model.MAX_PARAMETERS` bounds them together).
MAX_DEPTH = 8
MAX_BASE_CHANNELS = 512
MAX_CONVS_PER_BLOCK = 8
MAX_IN_CHANNELS = 1024


def from_known_fields(cls: type, d: Mapping):
    """``cls(**d)`` with the keys ``cls`` does not have left out (configs written by other versions)."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in dict(d).items() if k in known})


def _show(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def shown_value(value) -> str:
    """``repr(value)``, but a whole number too long to print (Python refuses beyond 4300 digits) as its size."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        return f"a number of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    return repr(value)


def check_number(name: str, value, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, integer: bool = False, infinite: bool = False) -> None:
    """Refuse a setting that is not a finite number in range (``low < value`` when ``low_open``;
    ``infinite``: +inf is allowed too, e.g. a growth speed).

    Raises:
        SettingsError: naming the setting, its value and the allowed range.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = isinstance(value, int) or float(value).is_integer()
    if ok:  # a whole number is finite however long (math.isfinite would overflow on it)
        ok = isinstance(value, int) or math.isfinite(value) or (infinite and value == math.inf)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        kind = "a whole number" if integer else "a number" if infinite else "a finite number"
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {_show(low)}")
        if high is not None:
            bounds.append(f"<= {_show(high)}")
        raise SettingsError(f"{name} must be {kind}{' ' + ' and '.join(bounds) if bounds else ''}, "
                            f"got {shown_value(value)}")


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the (multi-task) U-Net.

    Attributes:
        depth: resolution levels (``depth - 1`` poolings).
        base_channels: feature maps at full resolution (doubled per level).
        multitask_levels: how many of the last decoder levels are multi-task
            blocks (METHOD 3); the levels before them are shared by all tasks.
        convs_per_block: conv+BN+LeakyReLU layers per block.
        multitask: ``False`` gives a plain single-path U-Net from the same
            parts (the baselines); every head then reads the one path.
        in_channels: image channels.
    """

    depth: int = 4
    base_channels: int = 16
    multitask_levels: int = 1
    convs_per_block: int = 2
    multitask: bool = True
    in_channels: int = 1

    def __post_init__(self):
        check_number("depth", self.depth, low=2, high=MAX_DEPTH, integer=True)
        check_number("base_channels", self.base_channels, low=1, high=MAX_BASE_CHANNELS, integer=True)
        check_number("convs_per_block", self.convs_per_block, low=1, high=MAX_CONVS_PER_BLOCK, integer=True)
        check_number("in_channels", self.in_channels, low=1, high=MAX_IN_CHANNELS, integer=True)
        if self.multitask:
            check_number("multitask_levels", self.multitask_levels, low=1, high=self.depth - 1, integer=True)

    @property
    def size_multiple(self) -> int:
        """Input sizes must be a multiple of this (one per pooling)."""
        return 2 ** (self.depth - 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NetworkConfig:
        return from_known_fields(cls, d)


#: Network presets. ``cpu`` trains usefully in minutes on 2 cores; ``paper`` is
#: the 6-level network of Ke et al. (2020) with 4 multi-task blocks, for GPUs;
#: ``tiny`` is for tests.
PRESETS: dict[str, NetworkConfig] = {
    "tiny": NetworkConfig(depth=3, base_channels=4, multitask_levels=1, convs_per_block=1),
    "cpu": NetworkConfig(depth=4, base_channels=16, multitask_levels=1),
    "paper": NetworkConfig(depth=6, base_channels=32, multitask_levels=4),
}


def preset(name: str, **overrides) -> NetworkConfig:
    if name not in PRESETS:
        raise SettingsError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of training patches.

    Besides rescaling, 90-degree rotations, flips, gain, offset and noise (on by default), three
    augmentations are off unless asked for (``engine/training/augment.py``):

    Attributes:
        stain_jitter: HED colour augmentation of RGB images (H&E): each stain's concentration is
            scaled by U(1 - s, 1 + s) and shifted by U(-s, s); 0 = off. Images without 3 channels
            are left alone.
        blur_probability: the share of patches blurred by a Gaussian of a sigma (px) drawn from
            ``blur_sigma``.
        elastic_alpha: smooth elastic deformation: control displacements of sd ``elastic_alpha``
            px on an ``elastic_grid`` x ``elastic_grid`` grid over the patch; 0 = off.
    """

    flips: bool = True
    rot90: bool = True
    scale_range: tuple[float, float] = (0.8, 1.25)
    gain_range: tuple[float, float] = (0.8, 1.2)
    offset_range: tuple[float, float] = (-0.1, 0.1)
    noise_std: float = 0.02
    stain_jitter: float = 0.0
    blur_probability: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    elastic_alpha: float = 0.0
    elastic_grid: int = 4

    def __post_init__(self):
        for name in ("scale_range", "gain_range", "offset_range", "blur_sigma"):
            lo, hi = getattr(self, name)
            check_number(f"augment.{name}[0]", lo)
            check_number(f"augment.{name}[1]", hi, low=lo)
        check_number("augment.scale_range[0]", self.scale_range[0], low=0, low_open=True)
        check_number("augment.noise_std", self.noise_std, low=0)
        check_number("augment.stain_jitter", self.stain_jitter, low=0, high=0.5)
        check_number("augment.blur_probability", self.blur_probability, low=0, high=1)
        check_number("augment.blur_sigma[0]", self.blur_sigma[0], low=0, low_open=True)
        check_number("augment.elastic_alpha", self.elastic_alpha, low=0)
        check_number("augment.elastic_grid", self.elastic_grid, low=2, integer=True)


@dataclass(frozen=True)
class NormalizationConfig:
    """Per-image percentile normalisation: low percentile -> 0, high -> 1."""

    low: float = 1.0
    high: float = 99.8

    def __post_init__(self):
        check_number("normalization.low", self.low, low=0, high=100)
        check_number("normalization.high", self.high, low=self.low, high=100, low_open=True)


#: The smallest training patch edge (px).
MIN_PATCH_SIZE = 16


@dataclass
class TrainConfig:
    """One training run.

    ``steps`` counts optimisation steps in total (a resumed run continues
    until it reaches them). With ``time_limit_s`` (the automatic budget,
    :mod:`~napari_lazylabels.engine.training.budget`) the run fixes its steps
    after timing its first ones, so that it ends within that many seconds;
    ``steps`` is then the most it may take. ``device='auto'`` picks CUDA, then MPS, then CPU.
    A checkpoint is written every ``checkpoint_every`` steps and at least every
    ``checkpoint_seconds`` of training (``inf``: by steps only).
    """

    steps: int = 800
    patch_size: int = 128
    batch_size: int = 8
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    warmup_steps: int = 20
    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = True
    annotated_fraction: float = 0.7
    class_weight_cap: float = 10.0
    checkpoint_every: int = 100
    checkpoint_seconds: float = 300.0
    time_limit_s: float | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)

    def __post_init__(self):
        check_number("steps", self.steps, low=1, integer=True)
        check_number("batch size", self.batch_size, low=1, integer=True)
        check_number("patch size", self.patch_size, low=MIN_PATCH_SIZE, integer=True)
        check_number("learning rate", self.learning_rate, low=0, low_open=True)
        check_number("weight decay", self.weight_decay, low=0)
        check_number("warm-up steps", self.warmup_steps, low=0, integer=True)
        check_number("seed", self.seed, low=0, high=MAX_SEED, integer=True)
        check_number("annotated fraction", self.annotated_fraction, low=0, high=1)
        check_number("class weight cap", self.class_weight_cap, low=0, low_open=True)
        check_number("checkpoint interval", self.checkpoint_every, low=1, integer=True)
        check_number("checkpoint interval in seconds", self.checkpoint_seconds, low=0, low_open=True,
                     infinite=True)
        if self.time_limit_s is not None:
            check_number("time limit in seconds", self.time_limit_s, low=0, low_open=True)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        if isinstance(d.get("augment"), dict):
            a = d["augment"]
            d["augment"] = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in a.items()})
        if isinstance(d.get("normalization"), dict):
            d["normalization"] = NormalizationConfig(**d["normalization"])
        return from_known_fields(cls, d)
