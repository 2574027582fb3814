"""Self-training rounds on machine-made labels (LACSS's iterative refinement), saved and resumable.

Round 1 trains a model on the machine-made points and mask (the trusted region as each image's region
of interest). After each round, the model's confident foreground and its objects replace the labels
(:func:`napari_lazylabels.engine.selftrain.refined_labels`) and the next round trains a new model on
them. Every round leaves, in the self-training folder::

    round_01/            the model folder of round 1 (as ``lazylabels train`` writes it)
    labels_01.npz        the labels round 2 trains on (points_i, mask_i, trusted_i per image i)
    round_02/ ...

A rerun with the same folder continues after the last finished round. The rounds stop when the labels
change by less than ``tolerance`` (see ``refined_labels``: the share of mask pixels plus the share of
points that changed) or after ``rounds``. At the end the guard compares the last model with the
classical pipeline by their agreement with the machine-made labels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..engine.annotations import LazyAnnotations
from ..engine.autolabel import classical_instances
from ..engine.pipeline import segment
from ..engine.regimes import registry
from ..engine.selftrain import GuardReport, foreground_probability, guard, refined_labels
from ..errors import AnnotationError
from ..io.atomic import atomic_write_file
from ..io.modelio import load_model
from .train import TrainingPlan, TrainingRun

ROUND_DIR, LABELS_FILE = "round_{:02d}", "labels_{:02d}.npz"


@dataclass
class SelfTrainingResult:
    rounds: list[Path] = field(default_factory=list)       # the model folder of each round
    changes: list[float] = field(default_factory=list)     # the labels' change after each round
    guard: GuardReport | None = None

    @property
    def model_dir(self) -> Path:
        return self.rounds[-1]


def _keys() -> tuple[str, str]:
    pair = registry.machine_label_inputs()
    if pair is None:
        raise AnnotationError("no regime takes points and a foreground mask")
    return pair[0].key, pair[1].key


def _save_labels(path: Path, items: list[LazyAnnotations], change: float) -> None:
    pts_key, mask_key = _keys()
    arrays = {"change": np.array(change)}
    for i, it in enumerate(items):
        arrays[f"points_{i}"] = np.asarray(it.labels[pts_key], np.float64)
        arrays[f"mask_{i}"] = np.asarray(it.labels[mask_key], np.uint8)
        arrays[f"trusted_{i}"] = np.ones(it.shape, bool) if it.roi is None else np.asarray(it.roi, bool)
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    atomic_write_file(path, write, overwrite=True)


def _load_labels(path: Path, items: list[LazyAnnotations]) -> list[LazyAnnotations]:
    pts_key, mask_key = _keys()
    with np.load(path, allow_pickle=False) as d:
        return [dataclasses.replace(it, labels={pts_key: d[f"points_{i}"], mask_key: d[f"mask_{i}"]},
                                    roi=d[f"trusted_{i}"]) for i, it in enumerate(items)]


def _refine(model, items: list[LazyAnnotations], confident: float) -> tuple[list[LazyAnnotations], float, list]:
    pts_key, mask_key = _keys()
    out, changes, predicted = [], [], []
    for it in items:
        seg = segment(model, it.image, device="cpu")
        predicted.append(seg.instances)
        n = max(1, seg.n_objects)
        radius = max(2.0, float(np.sqrt(np.count_nonzero(seg.instances) / n / np.pi)))
        new = refined_labels(it.labels[pts_key], it.labels[mask_key], foreground_probability(seg, model.tasks),
                             seg.instances, radius=radius, confident=confident)
        out.append(dataclasses.replace(it, labels={pts_key: new.points, mask_key: new.mask}, roi=new.trusted))
        changes.append(new.change)
    return out, float(np.mean(changes)), predicted


def self_train(items: list[LazyAnnotations], plan: TrainingPlan, folder: str | Path, *, rounds: int = 3,
               tolerance: float = 0.05, confident: float = 0.9,
               log: Callable[[str], None] = print) -> SelfTrainingResult:
    """Train ``rounds`` rounds (see the module doc); ``plan``: the settings of each round's training
    (its items and model folder are replaced)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pts_key, mask_key = _keys()
    machine = list(items)
    current = list(items)
    result = SelfTrainingResult()
    model = None
    for r in range(1, rounds + 1):
        model_dir, labels_file = folder / ROUND_DIR.format(r), folder / LABELS_FILE.format(r)
        if model_dir.is_dir() and labels_file.is_file():       # finished before: resume after it
            model = load_model(model_dir)
            result.rounds.append(model_dir)
            with np.load(labels_file, allow_pickle=False) as d:
                result.changes.append(float(d["change"]) if "change" in d else float("nan"))
            current = _load_labels(labels_file, current)
            log(f"round {r}: already done ({model_dir})")
            continue
        run = TrainingRun(dataclasses.replace(plan, items=current, model_dir=model_dir, overwrite=True,
                                              resume=None))
        for _ in run.run():
            pass
        model = run.model()
        current, change, _ = _refine(model, current, confident)
        _save_labels(labels_file, current, change)
        result.rounds.append(model_dir)
        result.changes.append(change)
        log(f"round {r}: model in {model_dir}; the labels changed by {change:.3f}")
        if change < tolerance:
            log(f"the labels stopped changing (< {tolerance:g}): done after round {r}")
            break
    if model is not None:
        network = [segment(model, it.image, device="cpu").instances for it in machine]
        classical = [classical_instances(it.labels[pts_key], it.labels[mask_key]) for it in machine]
        result.guard = guard(network, classical, [it.labels[pts_key] for it in machine],
                             [it.labels[mask_key] for it in machine], [it.roi for it in machine])
        log(result.guard.describe())
    return result
