"""Points and an image-level foreground mask (LACSS: Shrestha, Kuang and Yu 2022; METHOD sections 1 and 9).

The cheapest labels there are: one point per object (clicked in a napari
Points layer, or found by blob detection in a nuclear stain) and a mask of
the pixels that belong to some object (a threshold of a cell-body channel),
which does not say where one object ends and the next begins. Both may be
machine-made (:mod:`napari_lazylabels.engine.autolabel`) and imperfect.

LACSS trains a per-location segmentation head with (i) consistency between
the union of the cells' masks and the image-level mask and (ii) a penalty on
overlaps between cells, plus a low field-of-view auxiliary network trained on
the main network's own output to find the boundaries. The form built here fits
the multi-task U-Net and its seeded-watershed post-processing:

* ``locations`` (plain path, role ``seeds``): a small disk (``disk_radius``)
  at every point, cut to the mask, valued by the point's class; 0 elsewhere.
  The disks seed the instances, as the blobs of the lazy regime do.
* ``cells`` (refined path, role ``foreground``): every pixel of the mask is
  an object (its class: that of the point whose part it lies in), every
  other pixel background. This is LACSS's consistency with the image-level
  mask, as a plain cross-entropy on every pixel.
* ``cell_boundaries`` (boundary path, role ``boundaries``): the interfaces
  (``interface_width`` px) between the parts of the *point-seeded partition*
  of the mask: a seeded watershed of the mask, one part per point. A
  partition has no overlaps and covers the mask, so LACSS's two consistency
  terms hold for these targets by construction; where two cells touch, the
  cut is first a guess (round 0: the neck of the mask's distance transform).
  Two parts at most ``interface_gap`` px apart meet at an interface too,
  which covers the thin line of background between them: a machine-made
  mask's cuts between objects lying side by side (and the narrow gaps
  of exact masks) teach the boundary heads the lines that part them,
  where a mask whose parts never touch would teach them nothing.
* ``local_boundaries`` (the ``local`` path: a few convolutions of the image,
  a 7 px field of view; no post-processing role, unused at inference): the
  same interfaces, learned from local image evidence only. It plays the
  part of LACSS's auxnet.
* **Rounds** (``partition_rounds``, like the recursive approximation's): every
  ``steps / (rounds + 1)`` steps the partition is made again from the
  network's own predictions: a watershed of the mask seeded at the points on
  the mean of the two boundary heads' interface probabilities (plus a small
  distance term that breaks ties), and both boundary heads train on the new
  interfaces. So the auxnet's local view of the boundaries constrains the
  main network's targets, and the main network's output trains the auxnet,
  as in LACSS. The partitions of every round are kept in the model folder
  (``partitions/round_XX.npz``) and a resumed run continues from the last.

An image with points must have a non-empty mask (the points alone cannot
make instances); one with a mask but no point trains the ``cells`` task only.
Instances come from the default seeded watershed with the model's instance
settings. Trained together with the blobs, interfaces and masks regimes,
those regimes' heads come first in the registry, so theirs seed, cut and
bound the instances (the first task of each role), and where one of their
heads trains on no image, ours takes its role (``roles_of_trained``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
from scipy import ndimage as ndi

from ...errors import AnnotationError, SettingsError
from ..config import check_number, from_known_fields
from ..inference import predict_tiled
from ..labels import smallest_label_dtype
from ..points import (empty_points, partition_interfaces, point_classes, point_disks, points_of_instances,
                      points_text, seeded_partition)
from ..tasks import BOUNDARIES, BOUNDARY, FOREGROUND, LOCAL, PLAIN, REFINED, SEEDS, TaskSpec
from .base import MACHINE_MASK, MACHINE_POINTS, POINTS, LabelInput, Regime, coverage_text, saved_rounds

if TYPE_CHECKING:  # pragma: no cover
    from ..training.trainer import Trainer

POINTS_KEY, MASK_KEY = "points", "foreground"
LOCATIONS, CELLS, CELL_BOUNDARIES, LOCAL_BOUNDARIES = "locations", "cells", "cell_boundaries", "local_boundaries"
_BOUNDARY_TASKS = (CELL_BOUNDARIES, LOCAL_BOUNDARIES)

#: Where the rounds go in a model folder.
PARTITIONS_DIR = "partitions"
ROUND_FILE = "round_{:02d}.npz"
SETTINGS_FILE = "lacss.json"

_EIGHT = np.ones((3, 3), dtype=bool)

#: Point colours (one per class) and the mask's colour.
POINT_COLOURS = ((255, 255, 0), (255, 128, 0), (0, 255, 255), (255, 0, 255), (128, 255, 0))
MASK_COLOUR = ((0, 114, 178),)


@dataclass(frozen=True)
class LacssConfig:
    """Settings of the points + foreground-mask regime.

    Attributes:
        disk_radius: radius (px) of the disk the location task learns at each
            point; the predicted disks seed the instances, so it must be
            smaller than the smallest object.
        interface_width: width (px) of the interface targets between two
            parts of the partition.
        interface_gap: two parts at most this many px apart (a thin line of
            background between them, as a machine-made mask's cuts leave)
            meet at an interface too, which covers the line; 0: only parts
            that touch do.
        boundary_task: learn the interfaces of the point-seeded partition (the
            post-processing's cuts); off: touching objects are split by the
            seeded watershed alone.
        auxiliary_head: the low field-of-view boundary head (the auxnet),
            whose predictions guide the partition in the rounds.
        partition_rounds: how often the partition of the mask is made again
            from the network's own boundary predictions during training; 0:
            the first one (the distance transform's necks) throughout.
    """

    disk_radius: int = field(default=3, metadata={
        "help": "radius (px) of the disk learned at each point (the seeds of the instances)", "metavar": "PX"})
    interface_width: int = field(default=3, metadata={
        "help": "width (px) of the interfaces between the parts of the point-seeded partition of the mask",
        "metavar": "PX"})
    interface_gap: int = field(default=4, metadata={
        "help": "two parts of the mask at most this many px apart (a thin line of background between them) "
                "meet at an interface too (0: only touching parts do)", "metavar": "PX"})
    boundary_task: bool = field(default=True, metadata={
        "help": "learn the interfaces of the point-seeded partition of the mask (the cuts between touching "
                "objects)"})
    auxiliary_head: bool = field(default=True, metadata={
        "help": "a low field-of-view boundary head (LACSS's auxnet) whose predictions guide the partition"})
    partition_rounds: int = field(default=3, metadata={
        "help": "rounds in which the partition of the mask between the points is made again from the "
                "network's boundary predictions (0: the first partition throughout)", "metavar": "R"})

    def __post_init__(self):
        check_number("disk radius", self.disk_radius, low=1, high=64, integer=True)
        check_number("interface width", self.interface_width, low=1, high=32, integer=True)
        check_number("interface gap", self.interface_gap, low=0, high=32, integer=True)
        check_number("partition rounds", self.partition_rounds, low=0, high=100, integer=True)
        for name in ("boundary_task", "auxiliary_head"):
            if not isinstance(getattr(self, name), bool):
                raise SettingsError(f"{name.replace('_', ' ')} must be true or false, got {getattr(self, name)!r}")

    def interfaces(self, partition: np.ndarray) -> np.ndarray:
        """The interface targets of a partition of the mask under these options (int16 YX)."""
        return partition_interfaces(partition, self.interface_width, self.interface_gap).astype(np.int16)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> LacssConfig:
        return from_known_fields(cls, d)


@dataclass
class PartitionTargets:
    """What one image with points and a mask trains on (see the module doc)."""

    disks: np.ndarray             # int32: point id in its disk, 0 elsewhere
    partition: np.ndarray         # int32: point id of the part each mask pixel is in (0: a part without point)
    classes: np.ndarray           # class of point id i at index i (index 0: 0)
    mask: np.ndarray              # bool

    def locations(self) -> np.ndarray:
        return self.classes[self.disks].astype(np.int16)

    def cells(self, n_classes: int) -> np.ndarray:
        """Class of each mask pixel (its part's point's), 0 outside; with several classes, a mask pixel
        of no point's part is unlabelled (``n_classes + 1``)."""
        if n_classes <= 1:
            return self.mask.astype(np.int16)
        out = self.classes[self.partition].astype(np.int16)
        out[self.mask & (self.partition == 0)] = n_classes + 1
        return out


def partition_targets(points: np.ndarray, mask: np.ndarray, radius: int) -> PartitionTargets:
    """The disks at the points and the point-seeded partition of the mask (round 0)."""
    fg = np.asarray(mask) > 0
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    disks = point_disks(pts, fg.shape, radius, within=fg)
    classes = np.concatenate([[0], point_classes(pts)]).astype(np.int64)
    return PartitionTargets(disks, seeded_partition(fg, disks), classes, fg)


def repartition(disks: np.ndarray, mask: np.ndarray, boundary: np.ndarray) -> np.ndarray:
    """The mask cut between the disks along the predicted interfaces: a seeded watershed on the
    interface probability ``boundary`` plus ``1 / (1 + d)`` (``d``: distance to the mask's edge), which
    breaks the ties of a flat probability in favour of the necks."""
    fg = np.asarray(mask, bool)
    elevation = np.asarray(boundary, np.float64) + 1.0 / (1.0 + ndi.distance_transform_edt(fg))
    return seeded_partition(fg, disks, elevation)


class PartitionRounds:
    """The rounds of the point-seeded partition on a trainer's images (a rounds hook).

    Called after every ``every``-th step: predicts the boundary heads on every
    training image with points and a mask, cuts the mask between the points'
    disks along the predicted interfaces (:func:`repartition`) and hands the
    new interfaces (and, with several classes, the new class map) to the
    trainer. ``partitions``: per round (0 = the distance transform's), per
    image, the partition (None for an image without points).
    """

    def __init__(self, trainer: Trainer, config: LacssConfig, every: int):
        self.config = config
        self.every = int(every)
        tasks = {t.name: t for t in trainer.tasks}
        self.heads = [n for n in _BOUNDARY_TASKS if n in tasks]
        self.n_classes = tasks[CELLS].n_classes - 1
        self.names = [im.name for im in trainer.sampler.images]
        self.disks: list[np.ndarray | None] = []
        self.classes: list[np.ndarray | None] = []
        first = []
        for im in trainer.sampler.images:
            if not (im.annotated.get(LOCATIONS) and im.annotated.get(CELLS)):
                self.disks.append(None)
                self.classes.append(None)
                first.append(None)
                continue
            loc = np.asarray(im.targets[LOCATIONS])
            disks, n = ndi.label(loc > 0, structure=_EIGHT)
            classes = np.zeros(n + 1, np.int64)
            classes[disks.ravel()] = loc.ravel()
            classes[0] = 0
            self.disks.append(disks.astype(np.int32))
            self.classes.append(classes)
            first.append(seeded_partition(self._mask(im), disks))
        self.partitions: list[list[np.ndarray | None]] = [first]
        self.round_steps: list[int] = [trainer.step]

    @staticmethod
    def _mask(im) -> np.ndarray:
        return np.asarray(im.targets[CELLS]) > 0

    @property
    def current_round(self) -> int:
        return len(self.partitions) - 1

    def __call__(self, trainer: Trainer) -> None:
        if self.current_round >= self.config.partition_rounds:
            return
        net = trainer.network
        was_training = net.training
        new = []
        for i, im in enumerate(trainer.sampler.images):
            if self.disks[i] is None:
                new.append(None)
                continue
            probs = predict_tiled(net, im.image, device=trainer.device, amp=trainer.amp, tasks=self.heads)
            boundary = np.mean([probs[h][1] for h in self.heads], axis=0)
            part = repartition(self.disks[i], self._mask(im), boundary)
            self._apply(trainer, i, part)
            new.append(part)
        if was_training:
            net.train()
        self.partitions.append(new)
        self.round_steps.append(trainer.step)

    def _apply(self, trainer: Trainer, i: int, part: np.ndarray) -> None:
        """Targets of image ``i`` from partition ``part``: the interfaces, and the classes of the mask."""
        interfaces = self.config.interfaces(part)
        for h in self.heads:
            trainer.replace_targets(i, h, interfaces)
        if self.n_classes > 1:
            im = trainer.sampler.images[i]
            geo = PartitionTargets(self.disks[i], part, self.classes[i], self._mask(im))
            trainer.replace_targets(i, CELLS, geo.cells(self.n_classes))

    # -- saved state -----------------------------------------------------------------------
    def summary(self) -> str:
        return f"{self.current_round} partition rounds in {PARTITIONS_DIR}/"

    def provenance(self) -> dict:
        return {**self.config.to_dict(), "steps_per_round": self.every, "rounds_done": self.current_round}

    def artifacts(self) -> dict[str, dict[str, Any]]:
        """``partitions/round_00.npz`` ... (``names``, ``step`` and, for image ``i`` with points,
        ``partition_{i:03d}``: the point id of each mask pixel's part) and ``partitions/lacss.json``."""
        out: dict[str, dict[str, Any]] = {}
        for r, parts in enumerate(self.partitions):
            arrays: dict[str, Any] = {"names": np.array(self.names), "step": np.array(self.round_steps[r])}
            for i, p in enumerate(parts):
                if p is not None:
                    arrays[f"partition_{i:03d}"] = p.astype(smallest_label_dtype(p))
            out[f"{PARTITIONS_DIR}/{ROUND_FILE.format(r)}"] = arrays
        out[f"{PARTITIONS_DIR}/{SETTINGS_FILE}"] = {**self.provenance(), "round_steps": self.round_steps}
        return out

    def restore(self, artifacts: Mapping[str, Mapping[str, Any]], trainer: Trainer) -> int:
        """Continue from the rounds of a checkpoint; returns the round restored (0: nothing restored)."""
        saved = saved_rounds(artifacts, PARTITIONS_DIR)
        if not saved:
            return 0
        last = saved[max(saved)]
        for i, im in enumerate(trainer.sampler.images):
            key = f"partition_{i:03d}"
            if self.disks[i] is None:
                continue
            if key not in last or i >= len(last["names"]) or str(last["names"][i]) != im.name \
                    or last[key].shape != self.disks[i].shape:
                return 0
        self.partitions, self.round_steps = [self.partitions[0]], [0]
        for r in sorted(saved):
            if r == 0:
                continue
            d = saved[r]
            self.partitions.append([None if self.disks[i] is None else d[f"partition_{i:03d}"].astype(np.int32)
                                    for i in range(len(self.names))])
            self.round_steps.append(int(d["step"]) if "step" in d else 0)
        for i, part in enumerate(self.partitions[-1]):
            if part is not None:
                self._apply(trainer, i, part)
        return self.current_round


class Lacss(Regime):
    name = "lacss"
    title = "points + foreground mask (LACSS)"
    description = ("one point per object and an image-level foreground mask, clicked or machine-made "
                   "(lazylabels autolabel), with no traced boundary (LACSS, Shrestha et al. 2022): a location "
                   "task at the points, a foreground task on the mask, and the interfaces of the point-seeded "
                   "partition of the mask, re-estimated in rounds from the network's own boundary predictions "
                   f"(saved in MODEL_DIR/{PARTITIONS_DIR}/round_XX.npz)")
    inputs = (
        LabelInput(key=POINTS_KEY, title="Points", suffix=POINTS_KEY, layer_type=POINTS,
                   values="one point (y, x; optional class 1..K) per object, anywhere inside it: a CSV with "
                          "columns y,x or napari's axis-0,axis-1 (optional class)",
                   tooltip="Points (LACSS): one click per object, anywhere inside it (e.g. on its nucleus); "
                           "needs the image's foreground mask too.",
                   palette=POINT_COLOURS, brush_size=7, opacity=1.0, shortcut="Alt-5", summary=points_text,
                   machine_made=MACHINE_POINTS),
        LabelInput(key=MASK_KEY, title="Foreground", suffix=MASK_KEY, binary=True,
                   values="any value > 0 on every pixel that belongs to some object (e.g. a threshold of a "
                          "cell-body channel), 0 on the background",
                   tooltip="Foreground mask (LACSS): every pixel that belongs to some object, without "
                           "separating touching ones (a threshold is fine).",
                   class_values=False, value_names=("foreground",), palette=MASK_COLOUR, brush_size=10,
                   opacity=0.35, shortcut="Alt-6", summary=coverage_text, machine_made=MACHINE_MASK,
                   claims_objects=True),
    )
    options = LacssConfig
    features = REFINED
    role = None
    colour = (255, 200, 0)
    probability_colormap = "yellow"
    simulated_by_default = False

    def tasks(self, n_classes: int, options: LacssConfig) -> list[TaskSpec]:
        k = int(n_classes)
        out = [
            TaskSpec(LOCATIONS, k + 1, PLAIN, role=SEEDS,
                     description="disks at the points (their class), 0 elsewhere"),
            TaskSpec(CELLS, k + 1, REFINED, role=FOREGROUND, unlabelled_value=k + 1 if k > 1 else None,
                     description="the foreground mask, by the class of each part's point"),
        ]
        if options.boundary_task:
            out.append(TaskSpec(CELL_BOUNDARIES, 2, BOUNDARY, role=BOUNDARIES,
                                description="interfaces of the point-seeded partition of the mask, "
                                            "re-estimated in rounds"))
        if options.auxiliary_head:
            out.append(TaskSpec(LOCAL_BOUNDARIES, 2, LOCAL, role=None,
                                description="the same interfaces from a 7 px field of view (LACSS's auxnet; "
                                            "training only)"))
        return out

    def targets(self, item, done, tasks, options: LacssConfig):
        mine = [t for t in tasks if t.name in (LOCATIONS, CELLS, *_BOUNDARY_TASKS)]
        out: dict[str, tuple[np.ndarray | None, bool]] = {t.name: (None, False) for t in mine}
        k = next(t.n_classes for t in mine if t.name == CELLS) - 1
        points = item.labels.get(POINTS_KEY)
        has_points = item.is_annotated(POINTS_KEY)
        points = empty_points() if points is None else np.asarray(points, np.float64).reshape(-1, 3)
        mask = item.labels.get(MASK_KEY)
        if len(points) and (mask is None or not np.any(mask)):
            what = "is empty" if mask is not None else "is missing"
            raise AnnotationError(f"has {len(points)} point(s) but its {MASK_KEY} mask {what}: points need the "
                                  f"mask of the pixels that belong to objects", source=item.name)
        if not item.is_annotated(MASK_KEY):
            return out
        geo = partition_targets(points, mask, options.disk_radius)
        out[CELLS] = (geo.cells(k), True)
        if has_points:
            out[LOCATIONS] = (geo.locations(), True)
            interfaces = options.interfaces(geo.partition)
            for name in _BOUNDARY_TASKS:
                if name in out:
                    out[name] = (interfaces, True)
        return out

    def attach(self, trainer: Trainer, options: LacssConfig):
        names = {t.name for t in trainer.tasks}
        if CELL_BOUNDARIES in names and LOCAL_BOUNDARIES in names:
            # the same targets as the boundary task: its patches are drawn for that one
            trainer.sampler.exclude_from_draw(LOCAL_BOUNDARIES)
        if options.partition_rounds == 0 or not names & set(_BOUNDARY_TASKS) or LOCATIONS not in names:
            return None
        return PartitionRounds(trainer, options, max(1, trainer.config.steps // (options.partition_rounds + 1)))

    # -- benchmarks and tests ------------------------------------------------------------
    def simulate(self, instances, classes=None, rng=None):
        """A point at each object's centroid (its pixel nearest the centroid when that falls outside
        it) and the exact foreground."""
        inst = np.asarray(instances)
        return {POINTS_KEY: points_of_instances(inst, classes), MASK_KEY: (inst > 0).astype(np.uint8)}

    def cost(self, labels, instances=None):
        pts = labels.get(POINTS_KEY)
        mask = labels.get(MASK_KEY)
        n = 0 if pts is None else int(len(np.asarray(pts).reshape(-1, np.shape(pts)[-1] if np.size(pts) else 3)))
        px = 0 if mask is None else int(np.count_nonzero(mask))
        return {"painted_pixels": px, "strokes": 0, "points_clicked": n, "foreground_pixels": px}


REGIME = Lacss()
