"""Training as a generator of typed progress reports.

    trainer = Trainer(items, tasks, network=preset("cpu"), config=TrainConfig(steps=500))
    for report in trainer.run():          # one TrainingProgress per step
        print(report.summary())
        if should_stop:
            trainer.stop()                # takes effect between steps
    model = trainer.model()               # a LazyLabelsModel

The trainer loops over the task list only; it knows nothing about particular
tasks, regimes or files. Hooks (``add_hook``) run between steps, e.g. the
rounds of a regime that update its targets through :meth:`Trainer.replace_targets`.
Saving checkpoints and resuming from them is the recipe's business
(:mod:`napari_lazylabels.recipes.train`): :meth:`Trainer.training_state` is
what a resume needs, ``Trainer(..., state=...)`` continues from it.
"""

from __future__ import annotations

import math
import platform
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ... import __version__
from ...errors import LazyLabelsError
from ..annotations import TrainingItem, annotation_summary
from ..config import NetworkConfig, TrainConfig, preset
from ..device import autocast_dtype, describe_device, empty_device_cache, select_device
from ..model import LazyUNet, build_model
from ..tasks import TaskSpec
from ..trained_model import LazyLabelsModel
from .losses import auto_class_weights, total_loss
from .budget import PROBE_STEPS, AutoBudget, choose_steps
from .distributed import DistributedContext
from .progress import TrainingProgress
from .sampling import PatchSampler, prepare


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5 % of the base rate."""
    warm = min(1.0, (step + 1) / max(config.warmup_steps, 1))
    cos = 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps))
    return config.learning_rate * warm * (0.05 + 0.95 * cos)


def default_class_names(n: int) -> list[str]:
    return [f"class {i}" for i in range(1, n + 1)]


@dataclass
class TrainingState:
    """What a resumed run continues from besides the network's weights."""

    step: int
    optimizer: dict
    history: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"optimizer": self.optimizer, "step": int(self.step),
                "history": {k: [float(v) for v in vals] for k, vals in self.history.items()}}


class Trainer:
    """Trains a (multi-task) U-Net on lazy annotations.

    Args:
        items: the training items (targets keyed by task name), made by the
            regimes from checked painted images
            (:func:`~napari_lazylabels.engine.regimes.targets.training_items`):
            trusted, not checked again.
        tasks: the task list.
        network: an architecture to build (default: the ``cpu`` preset), or a
            network to go on training (a resumed or fine-tuned model).
        config: the run's settings.
        class_names: names of the K object classes.
        state: the optimiser state, step and loss history to continue from.
        data_description: recorded in the model's provenance.
        distributed: this process's part of a DDP run (:mod:`.distributed`), or None.
    """

    #: The network and its batches in channels-last memory format: the same function up to
    #: float rounding, steps 1.3x faster on the CPU (oneDNN's convolutions; benchmarks/speed.py).
    memory_format = torch.channels_last

    def __init__(self, items: Sequence[TrainingItem], tasks: Sequence[TaskSpec],
                 network: NetworkConfig | LazyUNet | None = None, config: TrainConfig | None = None, *,
                 class_names: Sequence[str] | None = None, state: TrainingState | None = None,
                 data_description: str = "", distributed: DistributedContext | None = None):
        self.config = config or TrainConfig()
        self.tasks = list(tasks)
        self.items = list(items)
        self.distributed = distributed
        self.device = (select_device(self.config.device) if distributed is None
                       else distributed.device(self.config.device))
        self.data_description = data_description
        self._stop = False
        self.step = 0
        self.history: dict[str, list[float]] = {t.name: [] for t in self.tasks}
        self.history["total"] = []
        self.provenance: dict = {}
        seed_everything(self.config.seed)
        channels = self.items[0].image.shape[2] if self.items[0].image.ndim == 3 else 1
        if isinstance(network, LazyUNet):
            if network.task_names != [t.name for t in self.tasks]:
                raise LazyLabelsError(f"the network has the heads {network.task_names}, this run trains "
                                      f"{[t.name for t in self.tasks]}")
            self.network = network
        else:
            net_cfg = network or preset("cpu")
            if net_cfg.in_channels != channels:
                net_cfg = NetworkConfig.from_dict({**net_cfg.to_dict(), "in_channels": channels})
            self.network = build_model(net_cfg, self.tasks)
        n_classes = max(t.n_classes for t in self.tasks) - 1
        self.class_names = list(class_names or default_class_names(n_classes))
        if self.network.config.in_channels != channels:
            raise LazyLabelsError(f"the model expects {self.network.config.in_channels} channel(s), "
                                  f"the images have {channels}")
        self.network.to(self.device, memory_format=self.memory_format)
        self._forward = self.network if distributed is None else distributed.wrap(self.network)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate,
                                          weight_decay=self.config.weight_decay)
        if state is not None:
            self.optimizer.load_state_dict(state.optimizer)
            self.step = int(state.step)
            for k, v in state.history.items():
                self.history[k] = list(v)
        self.amp = self.config.mixed_precision and self.device.type == "cuda"
        #: The autocast type on CUDA: bfloat16 where the GPU has it (float32's range, so no loss scaling),
        #: else float16 with a gradient scaler.
        self.amp_dtype = autocast_dtype(self.device) if self.amp else None
        #: Draw the next batch while a step runs. Off on the CPU, where drawing is under 1 % of a step
        #: (benchmarks/speed.py) and the extra thread only competes for the same cores.
        self.prefetch = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        rng = np.random.default_rng(self.config.seed + self.step if distributed is None or distributed.rank == 0
                                    else (self.config.seed + self.step, distributed.rank))   # patches of its own
        prepared = [prepare(it, self.tasks, self.config.normalization, rng) for it in self.items]
        self.sampler = PatchSampler(prepared, self.tasks, self.config, rng)
        self.class_weights: dict[str, torch.Tensor] = {}
        for t in self.tasks:
            self._update_class_weights(t)
        self.annotated_counts = annotation_summary(self.items, self.tasks)
        self._hooks: list[tuple[int, Callable[["Trainer"], None]]] = []
        #: What the automatic budget chose (``config.time_limit_s``), once it has.
        self.auto_budget: AutoBudget | None = None

    def _update_class_weights(self, task: TaskSpec) -> None:
        w = np.asarray(task.class_weights) if task.class_weights is not None else \
            auto_class_weights(self.sampler.class_counts(task), self.config.class_weight_cap)
        self.class_weights[task.name] = torch.tensor(w, dtype=torch.float32, device=self.device)

    def add_hook(self, every: int, fn: Callable[["Trainer"], None]) -> None:
        """Call ``fn(trainer)`` after every ``every``-th step (e.g. to update the targets of a
        task between rounds, through :meth:`replace_targets`)."""
        self._hooks.append((int(every), fn))

    def replace_targets(self, index: int, task: str, targets: np.ndarray) -> None:
        """New targets of one task on one training image: the sampler updates them, its patch
        centres and class counts, and the task's automatic class weights follow."""
        self.sampler.set_targets(index, task, targets)
        spec = next(t for t in self.tasks if t.name == task)
        if spec.class_weights is None:
            self._update_class_weights(spec)

    # -- control -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to end after the current step."""
        self._stop = True

    @property
    def stopping(self) -> bool:
        return self._stop

    @property
    def device_name(self) -> str:
        return describe_device(self.device)

    def model(self) -> LazyLabelsModel:
        """The network as it is now, with its configuration and provenance."""
        provenance = {
            "trained_steps": self.step,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "data": self.data_description,
            "images": [it.name for it in self.items],
            "annotated_images_per_task": self.annotated_counts,
            "train_config": self.config.to_dict(),
            "device": self.device_name,
            "precision": f"{str(self.amp_dtype).removeprefix('torch.')} autocast" if self.amp else "float32",
            "versions": {"napari_lazylabels": __version__, "torch": torch.__version__,
                         "numpy": np.__version__, "python": platform.python_version()},
            **self.provenance,
        }
        return LazyLabelsModel(self.network, self.tasks, self.class_names, self.config.normalization,
                               self.config.patch_size, provenance=provenance)

    def training_state(self) -> TrainingState:
        return TrainingState(step=self.step, optimizer=self.optimizer.state_dict(),
                             history={k: list(map(float, v)) for k, v in self.history.items()})

    # -- the loop ------------------------------------------------------------------------
    def _train_step(self) -> tuple[float, dict[str, float]]:
        self.network.train()
        batch = self.sampler.sample(self.config.batch_size)
        for key, value in batch.items():
            batch[key] = {k: v.to(self.device, non_blocking=True) for k, v in value.items()} \
                if isinstance(value, dict) else value.to(self.device, non_blocking=True)
        # the next batch is drawn while this step runs (the same batches, in the same order)
        if self.prefetch:
            self.sampler.prefetch(self.config.batch_size, pin_memory=self.device.type == "cuda")
        image = batch["image"].contiguous(memory_format=self.memory_format)
        lr = learning_rate_at(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device_type="cuda", dtype=self.amp_dtype or torch.float16, enabled=self.amp):
            outputs = self._forward(image)
        loss, parts = total_loss(outputs, batch, self.tasks, self.class_weights)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.distributed is not None:
            self.distributed.sync_buffers(self.network)
            return self.distributed.average(float(loss.detach()), parts)
        return float(loss.detach()), parts

    def _report(self, loss, parts, rate, start) -> TrainingProgress:
        cfg = self.config
        return TrainingProgress(
            step=self.step, total_steps=cfg.steps, loss=loss, losses=dict(parts),
            learning_rate=learning_rate_at(max(self.step - 1, 0), cfg), patches_per_s=rate,
            elapsed_s=time.perf_counter() - start,
            eta_s=(cfg.steps - self.step) * cfg.batch_size / max(rate, 1e-9),
            device=self.device_name, stopped=self._stop)

    def _fix_budget(self, steps: int, elapsed_s: float) -> None:
        """The automatic budget: the run's steps fixed from the time its first ``steps`` took (the
        config is shared with the recipe, which then sees the same end)."""
        limit = float(self.config.time_limit_s or 0)
        if self.distributed is not None:    # every process must end at the same step
            elapsed_s = self.distributed.average(elapsed_s, {})[0]
        self.auto_budget = choose_steps(steps, elapsed_s, limit)
        self.config.steps = min(self.config.steps, max(self.auto_budget.steps, self.step))
        self.provenance["auto_budget"] = self.auto_budget.to_dict()

    def run(self) -> Iterator[TrainingProgress]:
        """Train until ``config.steps`` or ``stop()``; yield a report per step.

        When ``stop()`` is called between steps, one more report with
        ``stopped=True`` closes the run (unless the last report said so already).
        """
        cfg = self.config
        start, first = time.perf_counter(), self.step
        rate, loss, parts = 0.0, float("nan"), {}
        final_sent = False
        try:
            while self.step < cfg.steps and not self._stop:
                t0 = time.perf_counter()
                loss, parts = self._train_step()
                self.step += 1
                for every, fn in self._hooks:
                    if self.step % every == 0:
                        fn(self)
                if cfg.time_limit_s is not None and self.auto_budget is None and self.step - first >= PROBE_STEPS:
                    self._fix_budget(self.step - first, time.perf_counter() - start)
                inst = cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
                rate = inst if rate == 0 else 0.9 * rate + 0.1 * inst
                self.history["total"].append(loss)
                for k, v in parts.items():
                    self.history[k].append(v)
                final_sent = self.step >= cfg.steps or self._stop
                yield self._report(loss, parts, rate, start)
            if self._stop and not final_sent:
                yield self._report(loss, parts, rate, start)
        finally:
            self.sampler.cancel_prefetch()
            empty_device_cache(self.device)
