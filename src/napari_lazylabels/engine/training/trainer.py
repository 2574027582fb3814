"""Training as a generator of typed progress reports.

    trainer = Trainer(items, tasks, network=preset("cpu"), config=TrainConfig(steps=500))
    for report in trainer.run():          # one TrainingProgress per step
        print(report.summary())
        if should_stop:
            trainer.stop()                # takes effect between steps
    model = trainer.model()               # a LazyLabelsModel

The trainer loops over the task list only; it knows nothing about particular
tasks. Checkpoints (model plus optimiser state and step) are written to
``checkpoint_dir`` every ``config.checkpoint_every`` steps and when the run
ends or is stopped; ``Trainer(..., resume=checkpoint_dir)`` continues from one.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..annotations import LazyAnnotations, annotation_summary, validate_set
from ..config import NetworkConfig, TrainConfig, preset
from ..device import describe_device, release_memory, select_device
from ...errors import LazyLabelsError
from ..inference import predict_tiled
from .losses import auto_class_weights, total_loss
from ..model import build_model
from ...io.modelio import (LazyLabelsModel, default_class_names, load_model, load_training_state, now_iso,
                      versions)
from ..normalize import normalize
from .progress import TrainingProgress
from .sampling import PatchSampler, prepare
from ..tasks import TaskSpec, lazy_tasks


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5 % of the base rate."""
    warm = min(1.0, (step + 1) / max(config.warmup_steps, 1))
    cos = 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps))
    return config.learning_rate * warm * (0.05 + 0.95 * cos)


class Trainer:
    """Trains a (multi-task) U-Net on lazy annotations.

    Args:
        items: annotated images (validated here; bad input raises
            :class:`~napari_lazylabels.errors.AnnotationError`).
        tasks: the task list (default: the three lazy tasks, one class).
        network: architecture (default: the ``cpu`` preset). Ignored on resume.
        config: the run's settings.
        class_names: names of the K object classes.
        resume: a checkpoint/model directory to continue from.
        checkpoint_dir: where checkpoints go (None: no checkpoints).
        preview_image: a raw YX/YXC image predicted every ``preview_every`` steps.
        data_description: recorded in the model's provenance.
    """

    def __init__(self, items: Sequence[LazyAnnotations], tasks: Sequence[TaskSpec] | None = None,
                 network: NetworkConfig | None = None, config: TrainConfig | None = None, *,
                 class_names: Sequence[str] | None = None, resume: str | Path | None = None,
                 checkpoint_dir: str | Path | None = None, preview_image: np.ndarray | None = None,
                 data_description: str = ""):
        self.config = config or TrainConfig()
        self.tasks = list(tasks or lazy_tasks(1))
        self.items = validate_set(items, self.tasks)
        self.device = select_device(self.config.device)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.preview_image = preview_image
        self.data_description = data_description
        self._stop = False
        self.step = 0
        self.history: dict[str, list[float]] = {t.name: [] for t in self.tasks}
        self.history["total"] = []
        seed_everything(self.config.seed)
        channels = self.items[0].image.shape[2] if self.items[0].image.ndim == 3 else 1
        state = None
        if resume is not None:
            previous = load_model(resume)
            if [t.name for t in previous.tasks] != [t.name for t in self.tasks]:
                raise LazyLabelsError(f"checkpoint has tasks {previous.task_names}, this run has "
                                      f"{[t.name for t in self.tasks]}", source=str(resume))
            self.network = previous.network
            self.class_names = previous.class_names
            state = load_training_state(resume)
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
        self.network.to(self.device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.config.learning_rate,
                                          weight_decay=self.config.weight_decay)
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.step = int(state["step"])
            for k, v in (state.get("history") or {}).items():
                self.history[k] = list(v)
        self.amp = self.config.mixed_precision and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        rng = np.random.default_rng(self.config.seed + self.step)
        prepared = [prepare(it, self.tasks, self.config.normalization, rng) for it in self.items]
        self.sampler = PatchSampler(prepared, self.tasks, self.config, rng)
        self.class_weights = {}
        for t in self.tasks:
            w = np.asarray(t.class_weights) if t.class_weights is not None else \
                auto_class_weights(self.sampler.class_counts(t), self.config.class_weight_cap)
            self.class_weights[t.name] = torch.tensor(w, dtype=torch.float32, device=self.device)
        self.annotated_counts = annotation_summary(self.items, self.tasks)
        self._hooks: list[tuple[int, Callable[["Trainer"], None]]] = []

    def add_hook(self, every: int, fn: Callable[["Trainer"], None]) -> None:
        """Call ``fn(trainer)`` after every ``every``-th step (e.g. to update the
        targets of a task between rounds, as the recursive approximation does).
        Hooks may change ``trainer.sampler.images[i].targets`` in place."""
        self._hooks.append((int(every), fn))

    # -- control -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to end after the current step (a checkpoint is written)."""
        self._stop = True

    @property
    def device_name(self) -> str:
        return describe_device(self.device)

    def model(self) -> LazyLabelsModel:
        """The network as it is now, with its configuration and provenance."""
        provenance = {
            "trained_steps": self.step,
            "date": now_iso(),
            "data": self.data_description,
            "images": [it.name for it in self.items],
            "annotated_images_per_task": self.annotated_counts,
            "train_config": self.config.to_dict(),
            "device": self.device_name,
            "versions": versions(),
        }
        return LazyLabelsModel(self.network, self.tasks, self.class_names, self.config.normalization,
                               self.config.patch_size, provenance)

    def training_state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "step": self.step,
                "history": {k: list(map(float, v)) for k, v in self.history.items()}}

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        path = Path(path or self.checkpoint_dir)
        self.model().save(path, overwrite=True, training_state=self.training_state())
        return path

    # -- the loop ------------------------------------------------------------------------
    def _train_step(self) -> tuple[float, dict[str, float]]:
        self.network.train()
        batch = self.sampler.sample(self.config.batch_size)
        image = batch["image"].to(self.device, non_blocking=True)
        for key in ("targets", "valid", "annotated"):
            batch[key] = {k: v.to(self.device, non_blocking=True) for k, v in batch[key].items()}
        lr = learning_rate_at(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=self.amp):
            outputs = self.network(image)
        loss, parts = total_loss(outputs, batch, self.tasks, self.class_weights)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach()), parts

    def _preview(self) -> dict[str, np.ndarray] | None:
        if self.preview_image is None:
            return None
        norm = normalize(self.preview_image, self.config.normalization)
        out = predict_tiled(self.network, norm, device=self.device, amp=self.amp)
        self.network.train()
        return out

    def _report(self, loss, parts, rate, start, preview=None, checkpoint=None) -> TrainingProgress:
        cfg = self.config
        return TrainingProgress(
            step=self.step, total_steps=cfg.steps, loss=loss, losses=parts,
            learning_rate=learning_rate_at(max(self.step - 1, 0), cfg), patches_per_s=rate,
            elapsed_s=time.perf_counter() - start,
            eta_s=(cfg.steps - self.step) * cfg.batch_size / max(rate, 1e-9),
            device=self.device_name, preview=preview, checkpoint=checkpoint,
            stopped=self._stop, history=self.history)

    def run(self) -> Iterator[TrainingProgress]:
        """Train until ``config.steps`` or ``stop()``; yield a report per step.

        When ``stop()`` is called between steps, one more report with
        ``stopped=True`` (and the checkpoint, if any) closes the run.
        """
        cfg = self.config
        start = time.perf_counter()
        first_step = self.step
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
                inst = cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
                rate = inst if rate == 0 else 0.9 * rate + 0.1 * inst
                self.history["total"].append(loss)
                for k, v in parts.items():
                    self.history[k].append(v)
                last = self.step >= cfg.steps or self._stop
                preview = self._preview() if (last or self.step % cfg.preview_every == 0
                                              or self.step == first_step + 1) else None
                checkpoint = None
                if self.checkpoint_dir and (last or self.step % cfg.checkpoint_every == 0):
                    checkpoint = str(self.save_checkpoint())
                final_sent = last
                yield self._report(loss, parts, rate, start, preview, checkpoint)
            if self._stop and not final_sent:
                checkpoint = str(self.save_checkpoint()) if self.checkpoint_dir else None
                yield self._report(loss, parts, rate, start, self._preview(), checkpoint)
        finally:
            release_memory(self.device)
