"""Training off the GUI thread, with throttled messages (no Qt, no napari here).

:class:`TrainingJob` runs the training recipe
(:class:`~napari_lazylabels.recipes.train.TrainingRun`, the same the CLI and
the demo use) in a background thread (:class:`~.background.BackgroundJob`) and
posts small messages that the widget drains on a timer. What the worker sends is throttled so that the GUI thread never
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
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..engine.pipeline import segment
from ..errors import LazyLabelsError
from ..recipes.train import TrainingPlan, TrainingRun
from .background import BackgroundJob

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
    """Everything a training job needs: the recipe's plan (arrays are the caller's copies) and the preview."""

    plan: TrainingPlan
    preview_image: np.ndarray | None = None
    preview_key: Any = None
    threads: int | None = None
    preview_interval_s: float = 2.0
    progress_interval_s: float = 0.5
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
    components: dict[str, np.ndarray] = field(default_factory=dict)


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
    run = None
    step, total = 0, spec.plan.config.steps
    stopped, checkpoint = False, None
    try:
        if spec.nice:
            lower_thread_priority()
        torch.set_num_threads(int(spec.threads or default_threads()))
        run = TrainingRun(spec.plan)
        if register is not None:
            register(run)
        step, total = run.step, run.config.steps
        if run.done:
            raise LazyLabelsError(f"the checkpoint has {run.step} steps already; "
                                  f"raise Steps above it to continue", source="resume")
        post(Started(run.trainer.device_name, run.step, total,
                     {k: list(v) for k, v in run.trainer.history.items()}, len(spec.plan.items)))
        start = time.perf_counter()
        last_progress = last_preview = -1e9
        preview_gap = spec.preview_interval_s
        first = True
        batch: dict[str, list[tuple[int, float]]] = {}
        for report in run.run():
            if should_stop():
                run.stop()
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
                seg = segment(run.model(), spec.preview_image, device=run.trainer.device)
                cost = time.perf_counter() - t0
                preview_gap = max(spec.preview_interval_s, 4 * cost)
                post(Preview(report.step, spec.preview_key, seg.probabilities, seg.semantic,
                             seg.instances, cost, seg.components))
                last_preview = time.perf_counter()
            first = False
        post(Finished(step, total, stopped, checkpoint))
    except LazyLabelsError as exc:
        post(Finished(step, total, stopped, checkpoint, error=str(exc)))
    except Exception as exc:
        post(Finished(step, total, stopped, checkpoint, error=f"training failed: {type(exc).__name__}: {exc}",
                      details=traceback.format_exc()))
    finally:
        del run
        gc.collect()
        torch.set_num_threads(old_threads)


class TrainingJob(BackgroundJob):
    """A training run in a background thread; the GUI calls :meth:`drain` on a timer."""

    thread_name = "lazylabels-training"

    def __init__(self, spec: JobSpec):
        super().__init__()
        self.spec = spec
        self._run: TrainingRun | None = None

    def work(self, post) -> None:
        try:
            run_training(self.spec, post, self.stop_requested, self._register)
        finally:
            self._run = None

    def _register(self, run: TrainingRun) -> None:
        self._run = run
        if self.stop_requested():
            run.stop()

    def stop(self) -> None:
        """Ask for a stop after the current step (a checkpoint is written)."""
        super().stop()
        run = self._run
        if run is not None:
            run.stop()
