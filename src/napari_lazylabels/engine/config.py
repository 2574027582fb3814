"""Typed configuration of the network and of a training run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace


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
        if not 2 <= self.depth <= 8:
            raise ValueError("depth must be between 2 and 8")
        if self.base_channels < 1 or self.convs_per_block < 1:
            raise ValueError("base_channels and convs_per_block must be positive")
        if self.multitask and not 1 <= self.multitask_levels <= self.depth - 1:
            raise ValueError(f"multitask_levels must be between 1 and depth-1 ({self.depth - 1})")

    @property
    def size_multiple(self) -> int:
        """Input sizes must be a multiple of this (one per pooling)."""
        return 2 ** (self.depth - 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NetworkConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


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
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of training patches."""

    flips: bool = True
    rot90: bool = True
    scale_range: tuple[float, float] = (0.8, 1.25)
    gain_range: tuple[float, float] = (0.8, 1.2)
    offset_range: tuple[float, float] = (-0.1, 0.1)
    noise_std: float = 0.02


@dataclass(frozen=True)
class NormalizationConfig:
    """Per-image percentile normalisation: low percentile -> 0, high -> 1."""

    low: float = 1.0
    high: float = 99.8


@dataclass
class TrainConfig:
    """One training run.

    ``steps`` counts optimisation steps in total (a resumed run continues
    until it reaches them). ``device='auto'`` picks CUDA, then MPS, then CPU.
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
    preview_every: int = 50
    checkpoint_every: int = 100
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError("steps must be at least 1")
        if self.batch_size < 1:
            raise ValueError("batch size must be at least 1")
        if self.patch_size < 16:
            raise ValueError("patch size must be at least 16")
        if self.learning_rate <= 0:
            raise ValueError("learning rate must be positive")

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
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
