"""Training off the GUI thread, with throttled messages (no Qt, no napari here).

:class:`TrainingJob` runs the engine's :class:`~napari_lazylabels.training.Trainer`
in a Python thread and posts small messages to a queue that the widget drains
on a timer. What the worker sends is throttled so that the GUI thread never
has much to do:

* :class:`Progress` at most every ``progress_interval_s`` (the per-step losses
  in between are batched into it);
* :class:`Preview` (probabilities, semantic and instance maps of the preview
  image) after the first step, at the end, and in between at most every
  ``preview_interval_s`` seconds, or every 4x the time a preview takes when
  that is longer, so previews never take more than a fifth of the time;
* :class:`Finished` once, with the checkpoint or the error.

The training thread uses ``threads`` torch threads (default: all cores but
one), leaving a core to napari, and runs at a lower priority than the GUI
thread (Linux). Stop is cooperative: the trainer finishes its step, writes its
checkpoint and the thread ends.

Why a thread and not a process: ``benchmarks/ui_latency.py`` found the GUI's
stalls while training come from CPU contention, not from the GIL (torch and
OpenCV release it; a subprocess trainer stalled napari just as much), and a
thread starts at once, shares the arrays without copies and needs no care
about how napari was launched.
"""

from __future__ import annotations

import gc
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..engine.annotations import LazyAnnotations
from ..engine.config import NetworkConfig, TrainConfig
from ..errors import LazyLabelsError
from ..engine.pipeline import segmentation_from_probabilities
from ..engine.tasks import TaskSpec
from ..engine.training.trainer import Trainer


#: How much nicer than napari's GUI thread the training thread is (Linux: per-thread nice value).
NICENESS = 10


def lower_thread_priority(increment: int = NICENESS) -> bool:
    """Make the calling thread nicer, so the GUI thread wins the CPU when both want it.

    Linux only: there the nice value belongs to a thread (``setpriority`` on its
    thread id). Elsewhere it would apply to a whole process, so nothing is done.
    """
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
        return True
    except OSError:
        return False


def default_threads() -> int:
    """Torch threads for training on the CPU: all cores but one (at least one)."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass
class JobSpec:
    """Everything a training run needs (arrays are the caller's copies)."""

    items: list[LazyAnnotations]
    tasks: list[TaskSpec]
    network: NetworkConfig | None
    config: TrainConfig
    class_names: list[str]
    checkpoint_dir: str
    resume: str | None = None
    preview_image: np.ndarray | None = None
    preview_key: Any = None
    threads: int | None = None
    preview_interval_s: float = 2.0
    progress_interval_s: float = 0.5
    data_description: str = "napari layers"
    nice: bool = True


@dataclass
class Started:
    device: str
    step: int
    total_steps: int
    history: dict[str, list[float]]
    n_images: int


@dataclass
class Progress:
    step: int
    total_steps: int
    losses: dict[str, list[tuple[int, float]]]   # task (and "total") -> [(step, loss), ...] since the last
    eta_s: float
    elapsed_s: float
    patches_per_s: float
    device: str


@dataclass
class Preview:
    step: int
    key: Any
    probabilities: dict[str, np.ndarray]
    semantic: np.ndarray
    instances: np.ndarray
    seconds: float


@dataclass
class Finished:
    step: int
    total_steps: int
    stopped: bool
    checkpoint: str | None
    error: str | None = None
    details: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def run_training(spec: JobSpec, post, should_stop, register=None) -> None:
    """The body of a training job: train, post throttled messages, always end with :class:`Finished`."""
    old_threads = torch.get_num_threads()
    trainer = None
    step, total = 0, spec.config.steps
    stopped, checkpoint = False, None
    try:
        if spec.nice:
            lower_thread_priority()
        torch.set_num_threads(int(spec.threads or default_threads()))
        trainer = Trainer(spec.items, spec.tasks, spec.network, spec.config,
                          class_names=spec.class_names, resume=spec.resume,
                          checkpoint_dir=spec.checkpoint_dir, data_description=spec.data_description)
        if register is not None:
            register(trainer)
        step = trainer.step
        if trainer.step >= total:
            raise LazyLabelsError(f"the checkpoint has {trainer.step} steps already; "
                                  f"raise Steps above it to continue", source="resume")
        post(Started(trainer.device_name, trainer.step, total,
                     {k: list(v) for k, v in trainer.history.items()}, len(spec.items)))
        start = time.perf_counter()
        last_progress = last_preview = -1e9
        preview_gap = spec.preview_interval_s
        first = True
        batch: dict[str, list[tuple[int, float]]] = {}
        for report in trainer.run():
            if should_stop():
                trainer.stop()
            step, stopped = report.step, report.stopped
            checkpoint = report.checkpoint or checkpoint
            batch.setdefault("total", []).append((report.step, float(report.loss)))
            for k, v in report.losses.items():
                batch.setdefault(k, []).append((report.step, float(v)))
            now = time.perf_counter()
            if report.done or first or now - last_progress >= spec.progress_interval_s:
                post(Progress(report.step, report.total_steps, batch, report.eta_s,
                              now - start, report.patches_per_s, report.device))
                batch, last_progress = {}, now
            if spec.preview_image is not None and (first or report.done or now - last_preview >= preview_gap):
                t0 = time.perf_counter()
                probs = trainer.model().predict(spec.preview_image, device=trainer.device)
                seg = segmentation_from_probabilities(probs)
                cost = time.perf_counter() - t0
                preview_gap = max(spec.preview_interval_s, 4 * cost)
                post(Preview(report.step, spec.preview_key, seg.probabilities, seg.semantic,
                             seg.instances, cost))
                last_preview = time.perf_counter()
            first = False
        post(Finished(step, total, stopped, checkpoint))
    except LazyLabelsError as exc:
        post(Finished(step, total, stopped, checkpoint, error=str(exc)))
    except Exception as exc:
        post(Finished(step, total, stopped, checkpoint, error=f"training failed: {type(exc).__name__}: {exc}",
                      details=traceback.format_exc()))
    finally:
        del trainer
        gc.collect()
        torch.set_num_threads(old_threads)


class TrainingJob:
    """A training run in a background thread; the GUI calls :meth:`drain` on a timer."""

    def __init__(self, spec: JobSpec):
        self.spec = spec
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._trainer: Trainer | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="lazylabels-training")

    def _run(self) -> None:
        try:
            run_training(self.spec, self._queue.put, self._stop.is_set, self._register)
        finally:
            self._trainer = None

    def _register(self, trainer: Trainer) -> None:
        self._trainer = trainer
        if self._stop.is_set():
            trainer.stop()

    def start(self) -> None:
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def stop(self) -> None:
        """Ask for a stop after the current step (a checkpoint is written)."""
        self._stop.set()
        trainer = self._trainer
        if trainer is not None:
            trainer.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out
