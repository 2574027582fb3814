"""Continue training from a model on the labels as they are now (``train --init-from MODEL``).

Unlike a resume (the same run, the same data, up to its ``--steps``), a
continued run is a new run: a new model folder, the labels as they are now
(more painted, corrected, or a new regime), a new learning-rate schedule from
step 0. What it takes from the model it starts from:

* the weights of the network, and of every head this run still trains (same
  name, same shape); a head the model does not have (a regime painted for the
  first time) starts fresh; a head whose shape changed (another number of
  classes) is refused in one line;
* Adam's moments of every parameter tensor it kept, when the model folder has
  its training state (the same optimiser, so they are sound to keep); a new
  head's moments start at zero.

The model it starts from is only read: its folder is never written (a run
into the same folder, or into its ``NAME.partial``, is refused).
:class:`Continued` says what was kept; the recipe records it in the new
model's provenance (``continued_from``) and the CLI prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..engine.model import LazyUNet, build_model
from ..engine.tasks import TaskSpec
from ..engine.trained_model import LazyLabelsModel
from ..errors import LazyLabelsError, OutputExistsError, SettingsError
from ..io.modelio import load_model, load_training_state
from .model_folder import _same, partial_dir


@dataclass
class Continued:
    """What a continued run took from the model it starts from."""

    source: str
    trained_steps: int
    kept_heads: list[str] = field(default_factory=list)
    new_heads: list[str] = field(default_factory=list)
    dropped_heads: list[str] = field(default_factory=list)
    optimizer_tensors: int = 0                  # parameter tensors whose Adam moments were kept
    parameter_tensors: int = 0                  # parameter tensors of the new network

    def summary(self) -> str:
        """One line: what was kept, what starts fresh."""
        parts = [f"continuing from {self.source} ({self.trained_steps} steps): kept the network's weights"]
        if self.kept_heads:
            parts.append(f"the heads {', '.join(self.kept_heads)}")
        if self.new_heads:
            parts.append(f"new heads started fresh: {', '.join(self.new_heads)}")
        if self.dropped_heads:
            parts.append(f"heads not trained by this run were left out: {', '.join(self.dropped_heads)}")
        if self.optimizer_tensors:
            parts.append(f"the optimiser state of {self.optimizer_tensors} of {self.parameter_tensors} "
                         "parameter tensors")
        else:
            parts.append("a new optimiser (the model has no training state)")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {"model": self.source, "trained_steps": self.trained_steps, "kept_heads": self.kept_heads,
                "new_heads": self.new_heads, "dropped_heads": self.dropped_heads,
                "optimizer_state_kept": f"{self.optimizer_tensors} of {self.parameter_tensors} parameter tensors"}


def check_not_source(model_dir: str | Path | None, init_from: str | Path) -> None:
    """Refuse to write a continued run into the folder it starts from (or its ``NAME.partial``)."""
    if model_dir is None:
        return
    if _same(model_dir, init_from) or _same(partial_dir(model_dir), init_from):
        raise OutputExistsError("is the model this run continues from; it is never written: give --model "
                                "a new folder", source=str(model_dir))


def continued_network(init_from: str | Path, tasks: Sequence[TaskSpec], class_names: Sequence[str]
                      ) -> tuple[LazyUNet, LazyLabelsModel, Continued]:
    """A network for ``tasks`` with the weights of the model in ``init_from`` (see the module docstring).

    Raises:
        ModelFileError: the model cannot be read.
        LazyLabelsError: another number of classes, or a head of another shape (one line).
    """
    previous = load_model(init_from)
    source = str(init_from)
    if len(previous.class_names) != len(class_names):
        raise LazyLabelsError(f"the model was trained with {len(previous.class_names)} class(es) "
                              f"({', '.join(previous.class_names)}), this run has {len(class_names)}; "
                              f"continue with --classes {len(previous.class_names)} or train from scratch",
                              source=source)
    channels = previous.network.config.in_channels
    before = {t.name: t for t in previous.tasks}
    for t in tasks:
        old = before.get(t.name)
        if old is not None and old.head_channels(channels) != t.head_channels(channels):
            raise LazyLabelsError(f"the model's {t.name} head has {old.n_classes} classes x {old.components} "
                                  f"component(s), this run asks for {t.n_classes} x {t.components}; "
                                  "train from scratch", source=source)
    network = build_model(previous.network.config, tasks)
    old_state = previous.network.state_dict()
    new_state = network.state_dict()
    for name, value in new_state.items():
        if name in old_state and old_state[name].shape == value.shape:
            new_state[name] = old_state[name]
    network.load_state_dict(new_state)
    names = [t.name for t in tasks]
    info = Continued(source, int(previous.provenance.get("trained_steps", 0) or 0),
                     kept_heads=[n for n in names if n in before], new_heads=[n for n in names if n not in before],
                     dropped_heads=[n for n in previous.task_names if n not in names],
                     parameter_tensors=len(list(network.parameters())))
    return network, previous, info


def keep_optimizer_state(optimizer: torch.optim.Optimizer, network: LazyUNet, init_from: str | Path,
                         previous: LazyLabelsModel, info: Continued) -> None:
    """Load into ``optimizer`` (Adam over ``network``) the saved moments of every parameter tensor the
    two networks share (same name and shape); the others start at zero. Updates ``info``."""
    state = load_training_state(init_from, previous.network)
    if state is None:
        return
    old_names = [n for n, _ in previous.network.named_parameters()]
    old_saved = state.optimizer.get("state", {})
    by_name = {old_names[int(i)]: s for i, s in old_saved.items() if int(i) < len(old_names)}
    fresh = optimizer.state_dict()
    kept = {}
    for i, (name, p) in enumerate(network.named_parameters()):
        saved = by_name.get(name)
        if saved is None or tuple(saved["exp_avg"].shape) != tuple(p.shape):
            continue
        kept[i] = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in saved.items()}
    if kept:
        fresh["state"] = kept
        optimizer.load_state_dict(fresh)
    info.optimizer_tensors = len(kept)


def start_from(plan, tasks: Sequence[TaskSpec], class_names: Sequence[str]
               ) -> tuple[LazyUNet, LazyLabelsModel, Continued]:
    """The checks and the network of a :class:`~.train.TrainingPlan` with ``init_from``."""
    if plan.resume is not None:
        raise SettingsError("--init-from starts a new run from a model, --resume continues a run: give one")
    check_not_source(plan.model_dir, plan.init_from)
    return continued_network(plan.init_from, tasks, class_names)
