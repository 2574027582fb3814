"""Recursive approximation (Ke et al. 2021; METHOD section 4).

An extra task, ``approximation``, learns partial masks on the detection
features. Its targets start as the detection blobs and grow towards the object
boundaries every round (every ``steps_per_round`` optimisation steps), guided
by the segmentation head:

    S^r    = the object's current approximation (round 0: its blob)
    Shat   = the predicted segmentation region that holds it
    phi(i) = d(i, S^r) - lambda * d(i, complement(Shat))
    S^r+1  = { i : phi(i) <= 0 }

``d(i, A)`` is the Euclidean distance from pixel centre ``i`` to the nearest
pixel of ``A`` (0 inside ``A``). Hence ``lambda = 0`` keeps ``S``, ``lambda ->
inf`` gives ``S | Shat``, a larger lambda grows more, and growth slows near the
boundary of ``Shat`` (a pixel next to ``S`` joins only where it lies at least
``1 / lambda`` px deep inside ``Shat``; so with pixel distances the growth of a
round stops about ``1 / lambda`` px inside the predicted boundary, see
:class:`RecursiveConfig`).

Several objects (:func:`grow_objects`): the predicted foreground is split by a
seeded watershed with a one-pixel watershed line, seeded by the current
approximations, so that a foreground component touching several objects is cut
between them (the paper's "removing those pixels lying at the middle of two
neighbouring regions"); each object then grows only inside its own part and
keeps its class. Object identity is kept in an instance map across rounds, so
grown objects never merge.

Training: :func:`attach_recursive` adds the rounds to a
:class:`~napari_lazylabels.training.Trainer` as a hook; the approximations of
every round are kept (:attr:`RecursiveApproximation.rounds`) and can be written
as ``round_XX.npz`` files (:meth:`RecursiveApproximation.save`) to be looked at
as label layers. Inference: :func:`final_growth` applies one last growth with
``lambda_final`` to the approximation head's output, as the paper does, and
:func:`~napari_lazylabels.pipeline.segment` applies it to every model that has
the approximation head.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import expand_labels, relabel_sequential, watershed

from ..annotations import LazyAnnotations
from ..grabcut import blob_components
from ..postprocess.instances import InstanceParams, class_map, drop_small
from ..training.losses import auto_class_weights
from ..pipeline import Segmentation, instance_dtype, segmentation_from_probabilities
from ..training.sampling import MAX_CENTRES, painted_centres
from ..tasks import DETECTION, SEGMENTATION, SEPARATION, TaskSpec

if TYPE_CHECKING:  # pragma: no cover
    from ...io.modelio import LazyLabelsModel
    from ..training.trainer import Trainer

APPROXIMATION = "approximation"

#: Key of the recursive settings in a model's provenance (``config.json``).
PROVENANCE_KEY = "recursive"

ROUND_FILE = "round_{:02d}.npz"

#: The folder of a model directory that holds the saved rounds.
APPROXIMATIONS_DIR = "approximations"


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
            coherence of the approximation with the segmentation head).
        gap: grown approximations of different objects are kept about
            ``2 * gap + 1`` px apart (see :func:`grow_objects`), so that the
            approximation head learns to keep touching objects apart and its
            output can seed instances; 0 keeps only the one-pixel cut line.
    """

    rounds: int = 10
    steps_per_round: int | None = None
    lambda_train: float = 1.0
    lambda_final: float = 10.0
    gap: int = 1

    def __post_init__(self):
        if self.rounds < 0:
            raise ValueError("rounds must be >= 0")
        if self.steps_per_round is not None and self.steps_per_round < 1:
            raise ValueError("steps per round must be at least 1")
        if not (self.lambda_train >= 0 and self.lambda_final >= 0):
            raise ValueError("lambda must be >= 0")
        if self.gap < 0:
            raise ValueError("gap must be >= 0")

    def round_steps(self, total_steps: int) -> int:
        """Steps per round for a run of ``total_steps`` steps."""
        if self.steps_per_round is not None:
            return int(self.steps_per_round)
        return max(1, int(total_steps) // (self.rounds + 1))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> RecursiveConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(d).items() if k in known})


# --- the task ----------------------------------------------------------------------------

def approximation_task(n_classes: int = 1, weight: float = 1.0) -> TaskSpec:
    """The approximation task for ``n_classes`` object classes, on the detection features."""
    return TaskSpec(APPROXIMATION, n_classes + 1, DETECTION, weight=weight,
                    description="partial masks: the blobs, grown towards the boundaries each round")


def with_approximation(tasks: Sequence[TaskSpec], weight: float = 1.0) -> list[TaskSpec]:
    """The task list plus the approximation task (as many classes as detection)."""
    tasks = list(tasks)
    if any(t.name == APPROXIMATION for t in tasks):
        return tasks
    det = next((t for t in tasks if t.name == DETECTION), None)
    if det is None:
        raise ValueError("the approximation task needs a detection task (its round-0 targets are the blobs)")
    return tasks + [approximation_task(det.n_classes - 1, weight)]


def with_approximation_labels(items: Sequence[LazyAnnotations]) -> list[LazyAnnotations]:
    """Copies of the items whose approximation labels are their detection blobs (round 0)."""
    out = []
    for it in items:
        labels = dict(it.labels)
        annotated = dict(it.annotated)
        blobs = it.label(DETECTION)
        labels[APPROXIMATION] = None if blobs is None else np.array(blobs, copy=True)
        annotated[APPROXIMATION] = it.is_annotated(DETECTION)
        out.append(LazyAnnotations(image=it.image, labels=labels, roi=it.roi, name=it.name,
                                   annotated=annotated))
    return out


# --- the growth rule ---------------------------------------------------------------------

def level_set(region: np.ndarray, predicted: np.ndarray, lam: float) -> np.ndarray:
    """``phi = d(i, S) - lambda * d(i, complement(Shat))`` (float64, YX).

    ``d`` is the Euclidean distance between pixel centres, 0 inside the set.
    Distances to an empty set are infinite.
    """
    s = np.asarray(region, bool)
    shat = np.asarray(predicted, bool)
    d_s = ndi.distance_transform_edt(~s) if s.any() else np.full(s.shape, np.inf)
    if not lam or not shat.any():
        return d_s.astype(np.float64)
    if math.isinf(lam):
        return np.where(shat, -np.inf, d_s)
    d_out = ndi.distance_transform_edt(shat) if (~shat).any() else np.full(s.shape, np.inf)
    return d_s - lam * d_out


def grow_region(region: np.ndarray, predicted: np.ndarray, lam: float) -> np.ndarray:
    """One growth step of one object: ``{i : phi(i) <= 0}`` (bool YX).

    Args:
        region: S^r, the object's current approximation.
        predicted: Shat, the predicted region that holds it.
        lam: lambda >= 0 (``math.inf`` allowed).
    """
    s = np.asarray(region, bool)
    if lam == 0 or not s.any():
        return s.copy()
    return level_set(s, predicted, lam) <= 1e-9


def split_foreground(instances: np.ndarray, foreground: np.ndarray,
                     elevation: np.ndarray | None = None) -> np.ndarray:
    """The part of the foreground that belongs to each object.

    A seeded watershed inside ``foreground | instances > 0``, seeded by the
    objects of ``instances``, with a one-pixel watershed line: a foreground
    component that touches one object becomes all that object's; one that
    touches several is cut between them; one that touches none stays 0.
    ``elevation`` (YX float) decides where cuts go; default: minus the distance
    to the background, so cuts run along necks.

    Returns an int32 map: object id where a pixel is that object's (its own
    pixels included), 0 elsewhere and on the cut lines.
    """
    inst = np.asarray(instances).astype(np.int32, copy=False)
    fg = np.asarray(foreground, bool)
    mask = fg | (inst > 0)
    if not inst.any():
        return np.zeros(inst.shape, np.int32)
    if elevation is None:
        elevation = -ndi.distance_transform_edt(mask)
    parts = watershed(np.asarray(elevation, np.float64), markers=inst, mask=mask, watershed_line=True)
    return parts.astype(np.int32, copy=False)


def grow_objects(instances: np.ndarray, foreground: np.ndarray, lam: float,
                 elevation: np.ndarray | None = None, gap: int = 0) -> np.ndarray:
    """One growth step of every object of an instance map (METHOD 4, several objects).

    Each object ``k`` grows by :func:`grow_region` with ``Shat`` = its own
    part of the foreground (:func:`split_foreground`). Objects keep their ids
    and never take pixels of another object, so none merge.

    Args:
        instances: int YX, 0 = none, k = object k's current approximation.
        foreground: bool YX, the predicted foreground (any class).
        lam: lambda.
        elevation: where to cut shared foreground components (see
            :func:`split_foreground`).
        gap: newly grown pixels within ``gap`` px (chessboard distance) of
            another object are left out, so touching objects stay about
            ``2 * gap + 1`` px apart (0: only the one-pixel cut line).

    Returns:
        the grown instance map (int32), a superset of ``instances``.
    """
    inst = np.asarray(instances).astype(np.int32, copy=True)
    if lam == 0 or not inst.any():
        return inst
    fg = np.asarray(foreground, bool)
    parts = split_foreground(inst, fg, elevation)
    own = np.where(fg, parts, 0)
    union = np.where(inst > 0, inst, own)
    h, w = inst.shape
    out = inst.copy()
    for k, box in enumerate(ndi.find_objects(union), start=1):
        if box is None:
            continue
        y0, y1 = max(box[0].start - 1, 0), min(box[0].stop + 1, h)
        x0, x1 = max(box[1].start - 1, 0), min(box[1].stop + 1, w)
        s = inst[y0:y1, x0:x1] == k
        if not s.any():
            continue
        grown = grow_region(s, own[y0:y1, x0:x1] == k, lam)
        dst = out[y0:y1, x0:x1]
        dst[grown & (dst == 0)] = k
    if gap > 0:
        new = (out > 0) & (inst == 0)
        if new.any():
            size = 2 * int(gap) + 1
            hi = ndi.maximum_filter(out, size=size)
            lo = ndi.minimum_filter(np.where(out > 0, out, np.iinfo(np.int32).max), size=size)
            out[new & ((hi != out) | (lo != out))] = 0
    return out


def seeds_from_classes(class_map: np.ndarray, min_area: int = 0) -> tuple[np.ndarray, dict[int, int]]:
    """Objects of a class map: 8-connected regions of one class value, numbered 1..n.

    Regions smaller than ``min_area`` px are dropped. Returns the instance map
    and ``{id: class}``.
    """
    comps, classes = blob_components(np.asarray(class_map))
    return relabel_with_classes(drop_small(comps, min_area), classes)


def relabel_with_classes(labels: np.ndarray, classes: Mapping[int, int]) -> tuple[np.ndarray, dict[int, int]]:
    """Renumber ``labels`` 1..n (int32) and carry ``{id: class}`` over; ids no longer present are dropped."""
    out, fw, _ = relabel_sequential(labels)
    fw = np.asarray(fw)
    return out.astype(np.int32, copy=False), {int(fw[k]): c for k, c in classes.items()
                                              if k < len(fw) and fw[k] > 0}


def split_elevation(probs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Where to cut shared foreground: segmentation background probability, plus the
    separation head's interface probability where the model has one."""
    elev = np.asarray(probs[SEGMENTATION][0], np.float32).copy()
    sep = probs.get(SEPARATION)
    if sep is not None:
        elev += np.asarray(sep[1], np.float32)
    return elev


def grow_from_probabilities(instances: np.ndarray, probs: Mapping[str, np.ndarray], lam: float,
                            gap: int = 0) -> np.ndarray:
    """:func:`grow_objects` with ``Shat`` and the cuts from a model's probabilities."""
    fg = np.argmax(probs[SEGMENTATION], axis=0) > 0
    return grow_objects(instances, fg, lam, split_elevation(probs), gap)


# --- training ----------------------------------------------------------------------------

class RecursiveApproximation:
    """The rounds of the recursive approximation on a trainer's images.

    Called as a Trainer hook (``trainer.add_hook(steps_per_round, self)``):
    predicts the segmentation head on every training image annotated for the
    approximation task, grows each object of that image's approximation and
    writes the result into the sampler's targets and patch centres (and the
    task's class weights, when they are automatic).

    Attributes:
        config: the settings.
        names: the training images' names.
        rounds: per round (0 = the blobs), per image, the approximation class
            map (int16 YX; ``None`` for an image not annotated for it).
        instances: the same as instance maps (object ids fixed over rounds).
        round_steps: the trainer step of each round.
    """

    def __init__(self, trainer: "Trainer", config: RecursiveConfig, steps_per_round: int):
        self.config = config
        self.steps_per_round = int(steps_per_round)
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

    def __call__(self, trainer: "Trainer") -> None:
        if self.current_round >= self.config.rounds:
            return
        self.grow(trainer, self.config.lambda_train)

    def grow(self, trainer: "Trainer", lam: float) -> None:
        """One round: predict, grow, update the trainer's targets."""
        from ..inference import predict_tiled

        net = trainer.network
        heads = [SEGMENTATION] + ([SEPARATION] if SEPARATION in net.task_names else [])
        was_training = net.training
        new_inst, new_cls = [], []
        for i, im in enumerate(trainer.sampler.images):
            inst = self.instances[-1][i]
            if inst is None:
                new_inst.append(None)
                new_cls.append(None)
                continue
            probs = predict_tiled(net, im.image, device=trainer.device, amp=trainer.amp, tasks=heads)
            grown = grow_from_probabilities(inst, probs, lam, self.config.gap)
            targets = class_map(grown, self.classes[i])
            im.targets[APPROXIMATION] = targets
            im.centres[APPROXIMATION] = painted_centres(targets, im.valid[APPROXIMATION], trainer.sampler.rng)
            new_inst.append(grown)
            new_cls.append(targets)
        if was_training:
            net.train()
        self.instances.append(new_inst)
        self.rounds.append(new_cls)
        self.round_steps.append(trainer.step)
        self._update_weights(trainer)

    def _update_weights(self, trainer: "Trainer") -> None:
        import torch
        task = next(t for t in trainer.tasks if t.name == APPROXIMATION)
        if task.class_weights is not None:
            return
        w = auto_class_weights(trainer.sampler.class_counts(task), trainer.config.class_weight_cap)
        trainer.class_weights[APPROXIMATION] = torch.tensor(w, dtype=torch.float32, device=trainer.device)

    def restore(self, folder: str | Path, trainer: "Trainer") -> int:
        """Continue from the latest ``round_XX.npz`` in ``folder`` (a resumed run).

        Returns the round restored (0 when there is nothing to restore).
        """
        saved = load_rounds(folder)
        if not saved:
            return 0
        last = max(saved)
        data = saved[last]
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
        for i, im in enumerate(trainer.sampler.images):
            if self.rounds[-1][i] is not None:
                im.targets[APPROXIMATION] = self.rounds[-1][i]
                im.centres[APPROXIMATION] = np.argwhere(
                    (self.rounds[-1][i] > 0) & im.valid[APPROXIMATION]).astype(np.int32)[:MAX_CENTRES]
        self._update_weights(trainer)
        return self.current_round

    def save(self, folder: str | Path) -> Path:
        """Write ``round_00.npz`` ... into ``folder`` (created), one file per round.

        Each file holds ``names`` (the images), ``step`` (the trainer step of
        the round) and, for image ``i``, ``approximation_{i:03d}`` (class map)
        and ``instances_{i:03d}`` (instance map), for the images annotated for
        the task. ``recursive.json`` holds the settings.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for r, (cls_maps, inst_maps) in enumerate(zip(self.rounds, self.instances)):
            arrays = {"names": np.array(self.names), "step": np.array(self.round_steps[r])}
            for i, (c, m) in enumerate(zip(cls_maps, inst_maps)):
                if c is None:
                    continue
                arrays[f"approximation_{i:03d}"] = c.astype(np.uint16)
                arrays[f"instances_{i:03d}"] = m.astype(instance_dtype(m))
            np.savez_compressed(folder / ROUND_FILE.format(r), **arrays)
        (folder / "recursive.json").write_text(json.dumps(
            {**self.config.to_dict(), "steps_per_round": self.steps_per_round,
             "rounds_done": self.current_round, "round_steps": self.round_steps}, indent=2))
        return folder


def attach_recursive(trainer: "Trainer", config: RecursiveConfig | None = None, *,
                     resume_from: str | Path | None = None) -> RecursiveApproximation:
    """Add the recursive approximation rounds to a trainer (which must have the task).

    The trainer's items must carry approximation labels (see
    :func:`with_approximation_labels`), its tasks the approximation task (see
    :func:`with_approximation`). ``resume_from``: a folder of saved rounds to
    continue from (a resumed run). Returns the object that holds the rounds.
    """
    config = config or RecursiveConfig()
    if APPROXIMATION not in [t.name for t in trainer.tasks]:
        raise ValueError("the trainer has no approximation task; build its tasks with with_approximation()")
    if SEGMENTATION not in [t.name for t in trainer.tasks]:
        raise ValueError("the recursive approximation needs a segmentation task")
    spr = config.round_steps(trainer.config.steps)
    # Every patch carries the labels of all tasks its image is annotated for, so
    # the approximation task (annotated wherever detection is) trains on every
    # patch anyway. Not drawing patches for it keeps the sampling of the other
    # tasks as it is without it (otherwise the few strong masks would be drawn
    # a quarter of the time instead of a third).
    sampler = trainer.sampler
    if len(sampler.active_tasks) > 1 and APPROXIMATION in sampler.active_tasks:
        sampler.active_tasks = [t for t in sampler.active_tasks if t != APPROXIMATION]
    state = RecursiveApproximation(trainer, config, spr)
    if resume_from is not None and Path(resume_from).is_dir():
        state.restore(resume_from, trainer)
    trainer.add_hook(spr, state)
    return state


def save_recursive_model(trainer: "Trainer", state: RecursiveApproximation, folder: str | Path) -> Path:
    """Write the trainer's model (with its training state, to resume) and the rounds
    into ``folder`` atomically: the recursive settings go into the model's
    provenance (so prediction applies the final growth with ``lambda_final``) and
    the rounds into ``folder/approximations``."""
    from ...io.atomic import atomic_write_dir

    model = trainer.model()
    model.provenance[PROVENANCE_KEY] = {**state.config.to_dict(), "steps_per_round": state.steps_per_round,
                                        "rounds_done": state.current_round}
    training_state = trainer.training_state()

    def write(tmp: Path) -> None:
        model.write_into(tmp, training_state)
        state.save(tmp / APPROXIMATIONS_DIR)

    return atomic_write_dir(folder, write, overwrite=True)


def load_rounds(folder: str | Path) -> dict[int, dict[str, np.ndarray]]:
    """The saved rounds of a folder written by :meth:`RecursiveApproximation.save`: round -> arrays."""
    folder = Path(folder)
    out = {}
    for f in sorted(folder.glob("round_*.npz")):
        try:
            r = int(f.stem.split("_")[1])
        except (IndexError, ValueError):
            continue
        with np.load(f, allow_pickle=False) as data:
            out[r] = {k: data[k] for k in data.files}
    return out


# --- inference ---------------------------------------------------------------------------

def split_by_seeds(objects: np.ndarray, classes: Mapping[int, int], seeds: np.ndarray,
                   elevation: np.ndarray | None = None) -> tuple[np.ndarray, dict[int, int]]:
    """Split every object that holds more than one seed (the multi-object splitting
    applied to the objects themselves): a seeded watershed inside the object with
    a one-pixel cut line; each part keeps the object's class.

    Returns the new object map (ids 1..n) and ``{id: class}``.
    """
    obj = np.asarray(objects).astype(np.int32, copy=False)
    markers = np.where(obj > 0, np.asarray(seeds), 0).astype(np.int32)
    both = (obj > 0) & (markers > 0)
    pairs = np.unique(np.stack([obj[both], markers[both]], axis=1), axis=0) if both.any() else np.zeros((0, 2), int)
    ids, counts = np.unique(pairs[:, 0], return_counts=True) if len(pairs) else (np.zeros(0, int), [])
    multi = ids[np.asarray(counts) > 1]
    if not len(multi):
        return obj, dict(classes)
    in_multi = np.isin(obj, multi)
    parts = split_foreground(np.where(in_multi, markers, 0), in_multi, elevation)
    out = np.where(in_multi, 0, obj)
    new_classes = {k: c for k, c in classes.items() if k not in set(multi.tolist())}
    offset = int(obj.max())
    sel = in_multi & (parts > 0)
    out[sel] = parts[sel] + offset
    for marker in np.unique(parts[sel]):
        owner = int(np.bincount(obj[parts == marker]).argmax())
        new_classes[int(marker) + offset] = classes.get(owner, 1)
    return relabel_with_classes(out, new_classes)


def final_growth(probs: Mapping[str, np.ndarray], lambda_final: float,
                 params: InstanceParams | None = None) -> Segmentation:
    """The paper's last growth at inference: the approximation head's objects grown with
    ``lambda_final`` inside the segmentation head's foreground.

    Objects (the seeds of the growth) are the 8-connected regions of one
    class of the approximation head's argmax, cut by the predicted interfaces
    (separation probability > ``params.interface_threshold``), at least
    ``params.min_seed_area`` px; each keeps its class. An approximation
    region that holds more than one detection-head blob is split between
    them (:func:`split_by_seeds`): grown approximations of touching objects
    lie close together and the approximation head may join them, while the
    blobs stay apart. Grown objects smaller than ``params.min_size`` are
    dropped. The semantic map is the class map of the grown objects;
    foreground no seed reaches is left out. A model without the approximation
    head grows its detection blobs instead.
    """
    params = params or InstanceParams(seed_source=APPROXIMATION)
    head = probs.get(APPROXIMATION)
    if head is None:
        head = probs.get(DETECTION)
    if head is None:
        return segmentation_from_probabilities(probs, params)
    sep = probs.get(SEPARATION)
    cut = None if sep is None else np.asarray(sep[1]) > params.interface_threshold
    approx = np.argmax(head, axis=0)
    if cut is not None:
        approx[cut] = 0
    seeds, classes = seeds_from_classes(approx, params.min_seed_area)
    det = probs.get(DETECTION)
    elevation = split_elevation(probs)
    if det is not None and head is not det and seeds.any():
        blobs = np.argmax(det, axis=0)
        if cut is not None:
            blobs[cut] = 0
        blob_ids, _ = seeds_from_classes(blobs, params.min_seed_area)
        seeds, classes = split_by_seeds(seeds, classes, blob_ids, elevation)
    fg = np.argmax(probs[SEGMENTATION], axis=0) > 0
    grown = grow_objects(seeds, fg, lambda_final, elevation)
    # the cut lines between touching objects (foreground pixels next to two
    # objects) go to a neighbour
    if grown.any():
        big = np.iinfo(np.int32).max
        hi = ndi.maximum_filter(grown, size=3)
        lo = ndi.minimum_filter(np.where(grown > 0, grown, big), size=3)
        line = fg & (grown == 0) & (lo < big) & (hi != lo)
        if line.any():
            grown = np.where(line, expand_labels(grown, 1), grown)
    grown, classes = relabel_with_classes(drop_small(grown, params.min_size), classes)
    semantic = class_map(grown, classes, np.int32)
    return Segmentation(dict(probs), semantic, grown)


def recursive_settings(model: "LazyLabelsModel") -> RecursiveConfig | None:
    """The recursive settings a model was trained with, or None for a model without
    the approximation head (defaults when its provenance does not record them)."""
    if APPROXIMATION not in model.task_names:
        return None
    rec = (model.provenance or {}).get(PROVENANCE_KEY)
    return RecursiveConfig.from_dict(rec) if isinstance(rec, dict) else RecursiveConfig()
