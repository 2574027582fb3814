"""Recursive approximation (Ke et al. 2021; METHOD section 4), an opt-in regime.

An extra task, ``approximation``, learns partial masks on the plain decoder
path. Its targets start as the blobs of the run's seeds task and grow towards
the object boundaries every round (every ``steps_per_round`` optimisation
steps), guided by the foreground head: one level-set growth step per object
(:mod:`napari_lazylabels.engine.postprocess.growth`, where the rule is
written out). Object identity is kept in an instance map across rounds, so
grown objects never merge.

Training: :meth:`Recursive.attach` adds the rounds to a
:class:`~napari_lazylabels.engine.training.trainer.Trainer` as a hook
(:class:`RecursiveApproximation`); the approximations of every round are kept
(:attr:`RecursiveApproximation.rounds`) and become ``approximations/round_XX.npz``
files of the model folder (:meth:`RecursiveApproximation.artifacts`), to be
looked at as label layers and to resume from. Inference: a model trained with
it gets the final growth with ``lambda_final`` as its post-processing
(:meth:`Recursive.postprocessing`), as the paper does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ...errors import SettingsError
from ..config import check_number, from_known_fields
from ..inference import predict_tiled
from ..labels import class_map, smallest_label_dtype
from ..postprocess.growth import grow_from_probabilities, seeds_from_classes
from ..postprocess.settings import GROWTH, PostProcessing
from ..tasks import BOUNDARIES, FOREGROUND, PARTIAL, PLAIN, SEEDS, TaskSpec, heads_by_role
from .base import Regime, saved_rounds

if TYPE_CHECKING:  # pragma: no cover
    from ..annotations import PaintedImage
    from ..training.trainer import Trainer

APPROXIMATION = "approximation"

#: Where the rounds go in a model folder, and how each file is named.
APPROXIMATIONS_DIR = "approximations"
ROUND_FILE = "round_{:02d}.npz"
SETTINGS_FILE = "recursive.json"


@dataclass(frozen=True)
class RecursiveConfig:
    """Settings of the recursive approximation.

    Attributes:
        rounds: growth steps during training (the paper ran about 10).
        steps_per_round: optimisation steps between two growth steps;
            ``None``: ``total_steps // (rounds + 1)``, so the last
            approximation is trained on for a round too.
        lambda_train: growth speed during training. METHOD suggests 0.1 for
            objects of the paper's size; but with pixel distances a pixel next
            to ``S`` joins only where it lies at least ``1 / lambda`` px deep
            inside ``Shat``, so growth stalls ``1 / lambda`` px inside the
            predicted boundary: at 0.1 nuclei of radius 7-20 px hardly grow
            (mean Dice of synthetic blobs to the truth 0.44 -> 0.45 in 10
            rounds even with the true mask as ``Shat``; 0.5 stalls at 0.885).
            1.0 is the smallest value that reaches the boundary (to 1 px) and
            still covers only about half the remaining depth per round
            (0.44 -> 0.76 -> 0.90 -> 0.97 with the true mask).
        lambda_final: growth speed of the last growth at inference (large:
            coherence of the approximation with the foreground head).
        gap: grown approximations of different objects are kept about
            ``2 * gap + 1`` px apart (see ``growth.grow_objects``), so that the
            approximation head learns to keep touching objects apart and its
            output can seed instances; 0 keeps only the one-pixel cut line.
    """

    rounds: int = field(default=10, metadata={"help": "growth rounds during training", "metavar": "R"})
    steps_per_round: int | None = field(default=None, metadata={
        "help": "steps between two growth rounds (default: --steps divided by rounds+1)", "metavar": "T"})
    lambda_train: float = field(default=1.0, metadata={"help": "growth speed lambda in training", "metavar": "L"})
    lambda_final: float = field(default=10.0, metadata={"help": "lambda of the last growth at prediction",
                                                        "metavar": "L"})
    gap: int = field(default=1, metadata={"help": "grown approximations of touching objects are kept about "
                                                  "2*PX+1 px apart", "metavar": "PX"})

    def __post_init__(self):
        check_number("rounds", self.rounds, low=0, integer=True)
        if self.steps_per_round is not None:
            check_number("steps per round", self.steps_per_round, low=1, integer=True)
        check_number("lambda_train", self.lambda_train, low=0, infinite=True)
        check_number("lambda_final", self.lambda_final, low=0, infinite=True)
        check_number("gap", self.gap, low=0, integer=True)

    def round_steps(self, total_steps: int) -> int:
        """Steps per round for a run of ``total_steps`` steps."""
        if self.steps_per_round is not None:
            return int(self.steps_per_round)
        return max(1, int(total_steps) // (self.rounds + 1))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> RecursiveConfig:
        return from_known_fields(cls, d)


class RecursiveApproximation:
    """The rounds of the recursive approximation on a trainer's images (a rounds hook).

    Called after every ``every``-th step: predicts the foreground (and
    boundary) heads on every training image annotated for the approximation
    task, grows each object of that image's approximation and hands the result
    to the trainer (:meth:`Trainer.replace_targets`), which updates the
    sampler's targets, patch centres and class weights.

    Attributes:
        config: the settings.
        names: the training images' names.
        rounds: per round (0 = the blobs), per image, the approximation class
            map (int16 YX; ``None`` for an image not annotated for it).
        instances: the same as instance maps (object ids fixed over rounds).
        round_steps: the trainer step of each round.
    """

    def __init__(self, trainer: Trainer, config: RecursiveConfig, steps_per_round: int):
        self.config = config
        self.every = int(steps_per_round)
        self.names = [im.name for im in trainer.sampler.images]
        self.classes: list[dict[int, int]] = []
        first_inst, first_cls = [], []
        for im in trainer.sampler.images:
            if not im.annotated.get(APPROXIMATION, False):
                self.classes.append({})
                first_inst.append(None)
                first_cls.append(None)
                continue
            inst, cls = seeds_from_classes(im.targets[APPROXIMATION])
            self.classes.append(cls)
            first_inst.append(inst)
            first_cls.append(im.targets[APPROXIMATION].astype(np.int16, copy=True))
        self.instances: list[list[np.ndarray | None]] = [first_inst]
        self.rounds: list[list[np.ndarray | None]] = [first_cls]
        self.round_steps: list[int] = [trainer.step]

    @property
    def current_round(self) -> int:
        return len(self.rounds) - 1

    def __call__(self, trainer: Trainer) -> None:
        if self.current_round >= self.config.rounds:
            return
        self.grow(trainer, self.config.lambda_train)

    def grow(self, trainer: Trainer, lam: float) -> None:
        """One round: predict, grow, update the trainer's targets."""
        net = trainer.network
        heads = [t.name for t in trainer.tasks if t.role in (FOREGROUND, BOUNDARIES)]
        was_training = net.training
        new_inst, new_cls = [], []
        for i, im in enumerate(trainer.sampler.images):
            inst = self.instances[-1][i]
            if inst is None:
                new_inst.append(None)
                new_cls.append(None)
                continue
            probs = predict_tiled(net, im.image, device=trainer.device, amp=trainer.amp, tasks=heads)
            grown = grow_from_probabilities(inst, heads_by_role(probs, trainer.tasks), lam, self.config.gap)
            targets = class_map(grown, self.classes[i])
            trainer.replace_targets(i, APPROXIMATION, targets)
            new_inst.append(grown)
            new_cls.append(targets)
        if was_training:
            net.train()
        self.instances.append(new_inst)
        self.rounds.append(new_cls)
        self.round_steps.append(trainer.step)

    # -- saved state -----------------------------------------------------------------------
    def summary(self) -> str:
        return f"{self.current_round} approximation rounds in {APPROXIMATIONS_DIR}/"

    def provenance(self) -> dict:
        return {**self.config.to_dict(), "steps_per_round": self.every, "rounds_done": self.current_round}

    def artifacts(self) -> dict[str, dict[str, Any]]:
        """``approximations/round_00.npz`` ... and ``approximations/recursive.json``.

        Each round file holds ``names`` (the images), ``step`` (the trainer
        step of the round) and, for image ``i``, ``approximation_{i:03d}``
        (class map) and ``instances_{i:03d}`` (instance map), for the images
        annotated for the task.
        """
        out: dict[str, dict[str, Any]] = {}
        for r, (cls_maps, inst_maps) in enumerate(zip(self.rounds, self.instances)):
            arrays = {"names": np.array(self.names), "step": np.array(self.round_steps[r])}
            for i, (c, m) in enumerate(zip(cls_maps, inst_maps)):
                if c is None:
                    continue
                arrays[f"approximation_{i:03d}"] = c.astype(np.uint16)
                arrays[f"instances_{i:03d}"] = m.astype(smallest_label_dtype(m))
            out[f"{APPROXIMATIONS_DIR}/{ROUND_FILE.format(r)}"] = arrays
        out[f"{APPROXIMATIONS_DIR}/{SETTINGS_FILE}"] = {**self.provenance(), "round_steps": self.round_steps}
        return out

    def restore(self, artifacts: Mapping[str, Mapping[str, Any]], trainer: Trainer) -> int:
        """Continue from the rounds of a checkpoint; returns the round restored (0: nothing to restore)."""
        saved = rounds_of(artifacts)
        if not saved:
            return 0
        data = saved[max(saved)]
        for i, im in enumerate(trainer.sampler.images):
            key = f"instances_{i:03d}"
            if self.instances[0][i] is None or key not in data:
                continue
            if str(data["names"][i]) != im.name or data[key].shape != im.targets[APPROXIMATION].shape:
                return 0
        self.rounds, self.instances, self.round_steps = [self.rounds[0]], [self.instances[0]], [0]
        for r in sorted(saved):
            if r == 0:
                continue
            d = saved[r]
            self.instances.append([None if self.instances[0][i] is None else
                                   d[f"instances_{i:03d}"].astype(np.int32) for i in range(len(self.names))])
            self.rounds.append([None if self.instances[0][i] is None else
                                d[f"approximation_{i:03d}"].astype(np.int16) for i in range(len(self.names))])
            self.round_steps.append(int(d["step"]) if "step" in d else 0)
        for i, targets in enumerate(self.rounds[-1]):
            if targets is not None:
                trainer.replace_targets(i, APPROXIMATION, targets)
        return self.current_round


def rounds_of(artifacts: Mapping[str, Mapping[str, Any]]) -> dict[int, Mapping[str, np.ndarray]]:
    """Round number -> arrays, from a model folder's artifacts."""
    return saved_rounds(artifacts, APPROXIMATIONS_DIR)


class Recursive(Regime):
    name = "recursive"
    title = "recursive approximation (Ke et al. 2021)"
    description = ("add the recursive approximation task (Ke et al. 2021): targets start as the blobs and "
                   "grow towards the boundaries every round, guided by the segmentation head; the rounds "
                   f"are saved in MODEL_DIR/{APPROXIMATIONS_DIR}/round_XX.npz")
    opt_in = True
    options = RecursiveConfig
    features = PLAIN
    role = PARTIAL
    colour = (0, 158, 115)

    def tasks(self, n_classes: int, options: RecursiveConfig) -> list[TaskSpec]:
        return [TaskSpec(APPROXIMATION, int(n_classes) + 1, PLAIN, role=PARTIAL,
                         description="partial masks: the blobs, grown towards the boundaries each round")]

    def check(self, tasks: Sequence[TaskSpec]) -> None:
        roles = {t.role for t in tasks}
        if SEEDS not in roles or FOREGROUND not in roles:
            raise SettingsError("the recursive approximation needs a blobs task (its round-0 targets) and a "
                                "foreground task (its guide)")

    def targets(self, item: PaintedImage, done, tasks, options: RecursiveConfig):
        """The seeds task's targets (the blobs), as they are: the sampler copies every task's targets
        into its own stacks, and the rounds replace them there."""
        seeds = next(t for t in tasks if t.role == SEEDS and t.name != APPROXIMATION)
        return {APPROXIMATION: done.get(seeds.name, (None, False))}

    def attach(self, trainer: Trainer, options: RecursiveConfig):
        # Every patch carries the labels of all tasks its image is annotated for, so
        # the approximation task (annotated wherever the blobs are) trains on every
        # patch anyway. Not drawing patches for it keeps the sampling of the other
        # tasks as it is without it (otherwise the few strong masks would be drawn
        # a quarter of the time instead of a third).
        trainer.sampler.exclude_from_draw(APPROXIMATION)
        return RecursiveApproximation(trainer, options, options.round_steps(trainer.config.steps))

    def postprocessing(self, options: RecursiveConfig) -> PostProcessing:
        return PostProcessing(method=GROWTH, lambda_final=options.lambda_final)

    def migrate(self, config: dict) -> None:
        """Format 1 recorded the settings in the provenance; the final growth applied to any
        model with the approximation head."""
        if config.get("format_version", 1) < 2 and "postprocess" not in config and any(
                isinstance(t, dict) and t.get("name") == APPROXIMATION for t in config.get("tasks") or []):
            rec = (config.get("provenance") or {}).get(self.name)
            opts = RecursiveConfig.from_dict(rec) if isinstance(rec, dict) else RecursiveConfig()
            config["postprocess"] = self.postprocessing(opts).to_dict()


REGIME = Recursive()
