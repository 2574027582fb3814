"""The lazy suite's catalogue: its methods and their ratio rules, its budgets (modes) and its method
variants. The queue, the suites and the report read it; it runs nothing."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from benchmarks.harness.data import HARD
from benchmarks.harness.regimes import partial_options
from napari_lazylabels.engine.config import TrainConfig

#: Our methods (the project's networks) and the peers (another tool, trained on the same tiles).
OUR_METHODS = ("wl", "sl", "pl", "mt", "mtr", "full", "fullst")
PEER_METHODS = ("cp", "cp10")
METHODS = (*OUR_METHODS, *PEER_METHODS)
#: What runs when --methods is not given: the peers need an optional install, so they run on request.
DEFAULT_METHODS = OUR_METHODS
METHOD_NAMES = {"wl": "WL only", "sl": "SL only", "pl": "PL (GrabCut)", "mt": "multi-task",
                "mtr": "multi-task + recursive", "full": "full supervision (multi-task, every object traced)",
                "fullst": "full masks, single-task U-Net",
                "cp": "Cellpose 3 (CPnet from scratch) on every exact mask",
                "cp10": "Cellpose 3 (CPnet from scratch) on the strong tiles only"}
SHORT_NAMES = {**METHOD_NAMES, "full": "full supervision", "fullst": "full, single-task",
               "cp": "Cellpose, every mask", "cp10": "Cellpose, strong tiles"}
#: Methods whose data depend on the strong-label ratio; at 100 % SL and PL are the single-task full
#: supervision, mt is full supervision and cp10 is cp.
RATIO_METHODS = ("sl", "pl", "mt", "mtr", "cp10")
#: Methods with a fixed ratio.
FIXED_RATIO = {"wl": 0.0, "full": 1.0, "fullst": 1.0, "cp": 1.0}
#: At 100 % these ratio methods are another method (skipped there).
SAME_AT_FULL = ("sl", "pl", "mt", "cp10")
#: Methods that train the multi-task network on the lazy labels (the others are single-task baselines),
#: and those of them that add the partial-mask (recursive approximation) regime.
MULTITASK_METHODS = ("mt", "mtr", "full")
PARTIAL_METHODS = ("mtr",)
#: The order in which the methods of one setting run (the targets compare mt with full first; a peer
#: whose time budget is full's runs after it).
RUN_ORDER = ("mt", "full", "sl", "pl", "wl", "mtr", "fullst", "cp", "cp10")
FULL_RATIOS = (0.025, 0.05, 0.10, 1.0)
TARGET_RATIO = 0.10
#: The IoU thresholds of the "AP 0.5-0.9" column.
SWEEP = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))


@dataclass
class Mode:
    """One benchmark budget and its data."""

    name: str
    steps: int
    batch_size: int
    patch_size: int
    rounds: int
    datasets: tuple[str, ...]
    ratios: tuple[float, ...]          # ratios every ratio method runs at
    seeds: tuple[int, ...] = (0,)      # training seeds of the settings the targets compare
    synthetic_train: int = 40
    synthetic_test: int = 8
    sweep: dict[str, tuple[float, ...]] = field(default_factory=dict)  # extra ratios: dataset -> ratios (mt only)
    lambda_train: float = field(default_factory=lambda: partial_options().lambda_train)
    device: str = "cpu"                # where training and prediction run (--device)

    @property
    def budget(self) -> str:
        return f"{self.steps}x{self.batch_size}x{self.patch_size}r{self.rounds}"


MODES = {
    "quick": Mode("quick", steps=200, batch_size=4, patch_size=64, rounds=3,
                  datasets=("synthetic", "hela", "ecoli"), ratios=(0.10,), synthetic_test=4,
                  sweep={"synthetic": (0.025, 0.05, 1.0)}),
    # the defaults of `lazylabels train` (800 steps of 8 x 128 px), 10 rounds as the paper
    "full": Mode("full", steps=800, batch_size=8, patch_size=128, rounds=10,
                 datasets=(*HARD, "synthetic", "hela"), ratios=FULL_RATIOS, seeds=(0, 1, 2)),
}

#: Method changes measured against the defaults (``--variant NAME``): settings of the training
#: config (``train``), its augmentation (``augment``), the network preset (``network``). ``default``
#: is the code's defaults.
VARIANTS: dict[str, dict[str, dict]] = {
    "default": {},
    "stain": {"augment": {"stain_jitter": 0.05}},
    "blur": {"augment": {"blur_probability": 0.3}},
    "elastic": {"augment": {"elastic_alpha": 2.0}},
    "aug": {"augment": {"stain_jitter": 0.05, "blur_probability": 0.3, "elastic_alpha": 2.0}},
    "cap30": {"train": {"class_weight_cap": 30.0}},
    "wide": {"network": {"base_channels": 24}},
}


def variant_config(name: str, config: TrainConfig) -> tuple[TrainConfig, dict]:
    """The training config of a variant, and the network overrides."""
    v = VARIANTS[name]
    config = replace(config, **v.get("train", {}))
    if v.get("augment"):
        config = replace(config, augment=replace(config.augment, **v["augment"]))
    return config, dict(v.get("network", {}))


def ratio_of(method: str, ratio: float | None) -> float:
    """The ratio a method runs at: its fixed one, else ``ratio`` (the target ratio when None)."""
    return FIXED_RATIO.get(method, ratio if ratio is not None else TARGET_RATIO)


def run_key(ds: str, method: str, ratio: float, seed: int, variant: str, budget: str) -> str:
    """The key of a run in the results file (data set, method, ratio, training seed, variant, budget)."""
    return f"{ds}/{method}/{ratio:g}/s{seed}/{variant}/{budget}"
