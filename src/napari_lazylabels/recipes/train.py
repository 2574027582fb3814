"""The one training recipe: data -> regimes -> tasks -> trainer -> rounds -> checkpoints -> the saved model.

The CLI, the napari training worker, the demo and the benchmarks all train
through it::

    run = TrainingRun(TrainingPlan(items, config=TrainConfig(steps=500), model_dir="my_model"))
    for report in run.run():              # one TrainingProgress per step
        ...                               # run.stop() ends it after the current step
    model = run.model()                   # also written to my_model at the end

What it does, in order:

1. checks the painted inputs of every image, once
   (:func:`~napari_lazylabels.engine.regimes.targets.check_inputs`: a
   :class:`~napari_lazylabels.engine.annotations.PaintedSet`, such as
   ``load_manifest`` returns, is trusted as it is);
2. picks the regimes: those whose inputs the data is annotated for (the lazy
   labels of Ke et al. together, see ``registry.trained_regimes``), plus the
   opt-in ones the plan names (``opt_in``: regime name -> its options), and
   binds each to its options (``options``, or ``opt_in`` for an opt-in
   regime; the defaults otherwise), once;
3. makes the tasks (the plan's task weights applied once), the post-processing
   the regimes declare (two that both set one are refused) and each image's
   training targets (:class:`~napari_lazylabels.engine.annotations.TrainingItem`);
   a task no image is annotated for gives its post-processing role to
   another task of that role that some image is (``roles_of_trained``);
   images annotated for nothing train only a self-supervised task, if the
   run has one (``Prepared.unlabelled``);
4. builds the trainer (from scratch, or from ``resume``: a model folder with
   its training state and the regimes' saved rounds) and attaches the
   regimes' rounds;
5. trains (on several processes when ``torchrun`` started it:
   :mod:`~napari_lazylabels.engine.training.distributed`; only process 0
   writes); with a ``model_dir`` it holds the folder's lock file while it
   runs (:class:`~napari_lazylabels.io.locks.FolderLock`: a second run into
   it is refused), writes a checkpoint every ``config.checkpoint_every``
   steps or ``config.checkpoint_seconds`` of training, whichever comes first,
   and the model once at the end (or when stopped or interrupted), with
   everything a resume needs (optimiser state, loss history, the rounds).

What is in ``model_dir`` is never lost to a run that does not finish: a run
that replaces an existing model (``overwrite``) writes its checkpoints to
``NAME.partial`` beside it and puts its model in place only at the end; a
``--resume`` continues ``NAME.partial`` when there is one (the folder's
lifecycle: :mod:`~napari_lazylabels.recipes.model_folder`). A loss or weights
that stop being finite end the run with
:class:`~napari_lazylabels.errors.TrainingDivergedError`, without writing
them: the last checkpoint stays as it was.

The settings a user gives are made consistent here, once for every caller:
the patch size is rounded up to the network's pooling multiple and the
warm-up is at most a tenth of the run.
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch

from ..engine.annotations import PaintedImage, PaintedSet, TrainingItem, common_pixel_size
from ..engine.config import NetworkConfig, TrainConfig, preset
from ..engine.mixed import kinds_line, label_conflicts, painted_kinds
from ..engine.postprocess.settings import InstanceParams, PostProcessing
from ..engine.regimes import registry
from ..engine.regimes.base import ConfiguredRegime, Regime, RoundsHook
from ..engine.regimes.targets import check_inputs, present_inputs, roles_of_trained, training_items
from ..engine.regimes.words import painted_counts
from ..engine.tasks import TaskSpec
from ..engine.trained_model import LazyLabelsModel
from ..engine.training.budget import LossTrend, loss_trend
from ..engine.training.distributed import from_environment
from ..engine.training.progress import TrainingProgress
from ..engine.training.trainer import Trainer, default_class_names
from ..errors import LazyLabelsError, OutputError, TrainingDivergedError, warn
from ..io.atomic import check_can_write
from ..io.modelio import load_artifacts, load_model, load_training_state, save_model
from .continue_training import keep_optimizer_state, start_from
from .instance_fit import FittedInstances, fit_on_labels
from .model_folder import ModelFolder
from .unsaved import unsaved_error

@dataclass
class TrainingPlan:
    """Everything one training run needs.

    Attributes:
        items: the images with what was painted on them (labels keyed by the
            regimes' input keys, e.g. manifest columns); a checked
            :class:`~napari_lazylabels.engine.annotations.PaintedSet` (what
            ``load_manifest`` returns) is not checked again.
        class_names: names of the K object classes (default: one class).
        network: the architecture of a new model (ignored on resume).
        config: the run's settings.
        weights: task name -> task weight alpha (default 1).
        opt_in: opt-in regime name -> its options (None: its defaults): the
            opt-in regimes to train.
        options: regime name -> its options, for the regimes that are not
            opt-in (used when the data trains them; missing: the defaults).
        regimes: train exactly these regimes (the single-task baselines of the
            benchmark); default: chosen from the data and ``opt_in``.
        model_dir: where checkpoints and the final model go (None: nowhere).
        overwrite: ``model_dir`` may exist and is then replaced at the end of
            the run (only a model folder; its checkpoints go to ``NAME.partial``
            until then).
        resume: a model folder to continue training from (its checkpoint, or
            a saved model to fine-tune).
        data_description: recorded in the model's provenance.
        instances: the instance post-processing settings stored in the model
            (the defaults of ``lazylabels predict`` and Predict); None: the defaults,
            fitted at the end of the run to the images with exact masks, or without exact masks to the
            points (``fit_instances``).
        fit_instances: when no ``instances`` are given, fit them to the exact masks (or the points) at
            the end of the run (:mod:`~napari_lazylabels.recipes.instance_fit`).
        init_from: a model folder to continue from on the labels as they are now: a new run
            from step 0 into a new ``model_dir``, with its weights and optimiser state where
            sound (:mod:`.continue_training`); the folder is only read.
    """

    items: Sequence[PaintedImage]
    class_names: Sequence[str] | None = None
    network: NetworkConfig = field(default_factory=lambda: preset("cpu"))
    config: TrainConfig = field(default_factory=TrainConfig)
    weights: Mapping[str, float] = field(default_factory=dict)
    opt_in: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    regimes: Sequence[Regime] | None = None
    model_dir: str | Path | None = None
    overwrite: bool = False
    resume: str | Path | None = None
    data_description: str = ""
    instances: InstanceParams | None = None
    fit_instances: bool = True
    init_from: str | Path | None = None

    @property
    def n_classes(self) -> int:
        return max(1, len(self.class_names)) if self.class_names else 1

    @property
    def all_options(self) -> dict[str, Any]:
        """Regime name -> its options, for every regime the plan gives options to."""
        return {**{k: v for k, v in self.options.items() if v is not None},
                **{k: v for k, v in self.opt_in.items() if v is not None}}


def consistent_config(config: TrainConfig, network: NetworkConfig) -> TrainConfig:
    """The patch size rounded up to the network's pooling multiple; warm-up at most a tenth of the run."""
    m = network.size_multiple
    return replace(config, patch_size=-(-config.patch_size // m) * m,
                   warmup_steps=min(config.warmup_steps, max(1, config.steps // 10)))


@dataclass
class Prepared:
    """A plan made concrete: its regimes (bound to their options), tasks, post-processing (None: the
    default), training items (made from the checked painted images; the trainer trusts them) and the
    checked painted images (a plan given them is not checked again)."""

    regimes: list[ConfiguredRegime]
    tasks: list[TaskSpec]
    items: list[TrainingItem]
    postprocess: PostProcessing | None = None
    painted: PaintedSet | None = None
    kinds: str = ""                     # which image carries which painted kinds, when they differ

    @property
    def self_supervised(self) -> list[str]:
        """The run's tasks that train on every image, labelled or not."""
        return [t.name for t in self.tasks if t.self_supervised]

    @property
    def unlabelled(self) -> int:
        """How many images are annotated for no task (they train only the self-supervised tasks)."""
        return sum(not any(it.is_annotated(t.name) for t in self.tasks) for it in self.items)

    def summary(self) -> str:
        """One line on the images: how many, annotated for which task, and what the unlabelled ones do."""
        counts = painted_counts({t.name: sum(it.is_annotated(t.name) for it in self.items) for t in self.tasks})
        text = f"{len(self.items)} images (annotated: {counts})"
        n = self.unlabelled
        if n and self.self_supervised:
            text += (f"; {n} without any label, used by the self-supervised loss of "
                     f"{', '.join(self.self_supervised)}")
        elif n:
            text += f"; {n} without any label (not used: no task of this run is self-supervised)"
        return f"{text}; {self.kinds}" if self.kinds else text


def prepare(plan: TrainingPlan) -> Prepared:
    """Steps 1-3 of the recipe: cheap, so a widget can refuse bad input before starting anything.

    Raises:
        AnnotationError / SettingsError: bad labels, unknown task weights, a
            regime that cannot run with the others.
    """
    painted = check_inputs(plan.items, plan.n_classes)
    chosen = plan.regimes if plan.regimes is not None else registry.trained_regimes(present_inputs(painted),
                                                                                    plan.opt_in)
    run_regimes = registry.configure(chosen, plan.all_options)
    tasks = registry.tasks_of(run_regimes, plan.n_classes, plan.weights)
    postprocess = registry.postprocessing_of(run_regimes)
    targets = training_items(painted, run_regimes, tasks)
    return Prepared(run_regimes, roles_of_trained(tasks, targets), targets, postprocess, painted,
                    kinds_line(painted))


def uses_unlabelled_images(plan: TrainingPlan) -> bool:
    """Whether the run of ``plan`` has a self-supervised task, which trains on images without labels
    too (so a caller may add them, e.g. the unpainted planes of a stack)."""
    return bool(prepare(plan).self_supervised)


class TrainingRun:
    """One run of the recipe (see the module docstring)."""

    def __init__(self, plan: TrainingPlan):
        self.plan = plan
        self.prepared = prepared = prepare(plan)
        self.regimes, self.tasks = prepared.regimes, prepared.tasks
        network: NetworkConfig | Any = plan.network
        class_names = list(plan.class_names or default_class_names(plan.n_classes))
        state = artifacts = None
        self.instances = plan.instances
        if plan.resume is not None:
            previous = load_model(plan.resume)
            _check_resumable(previous, self.tasks, plan)
            network, class_names = previous.network, previous.class_names
            if self.instances is None:  # a resumed run keeps the instance settings it was given
                self.instances = previous.postprocess.instances
            state = load_training_state(plan.resume, previous.network)
            if state is None:
                warn("has no training state: its weights are fine-tuned from step 0 with a new optimiser",
                     source=str(plan.resume))
            artifacts = load_artifacts(plan.resume)
        self.continued = None
        if plan.init_from is not None:
            network, previous, self.continued = start_from(plan, self.tasks, class_names)
            class_names = previous.class_names
            self.instances = self.instances or previous.postprocess.instances
        net_cfg = network if isinstance(network, NetworkConfig) else network.config
        self.config = consistent_config(plan.config, net_cfg)
        self.distributed = from_environment(self.config.device)
        self.trainer = Trainer(prepared.items, self.tasks, network, self.config, class_names=class_names,
                               state=state, data_description=plan.data_description, distributed=self.distributed)
        if self.distributed is not None:
            self.trainer.provenance["distributed"] = {"processes": self.distributed.world_size,
                                                      "backend": self.distributed.backend}
        self.trainer.provenance["painted_per_image"] = painted_kinds(prepared.painted)
        for name, what, n in label_conflicts(prepared.painted, plan.n_classes):
            warn(f"{n} px of {what}: these labels contradict each other; both are trained as painted "
                 "(fix one of them)", source=name)
        if self.continued is not None:
            keep_optimizer_state(self.trainer.optimizer, self.trainer.network, plan.init_from, previous,
                                 self.continued)
            self.trainer.provenance["continued_from"] = self.continued.to_dict()
        self.hooks: dict[str, RoundsHook] = {}
        for r in self.regimes:
            hook = r.attach(self.trainer)
            if hook is None:
                continue
            if artifacts:
                hook.restore(artifacts, self.trainer)
            self.trainer.add_hook(hook.every, hook)
            self.hooks[r.name] = hook
        self.model_dir = Path(plan.model_dir) if plan.model_dir is not None else None
        self.folder = (ModelFolder(self.model_dir, overwrite=plan.overwrite, resume=plan.resume)
                       if self.model_dir is not None else None)
        self._resumed = None if plan.resume is None else (self.trainer.step, Path(plan.resume))
        #: The instance settings fitted at the end of the run (None: not fitted, or nothing to fit to).
        self.fitted: FittedInstances | None = None

    # -- the run ---------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.trainer.step

    @property
    def is_writer(self) -> bool:
        """Whether this process writes (the only one, or process 0 of a distributed run)."""
        return self.distributed is None or self.distributed.is_writer

    @property
    def done(self) -> bool:
        """Whether the run has nothing left to train (e.g. a checkpoint already at ``steps``)."""
        return self.trainer.step >= self.config.steps

    def run(self) -> Iterator[TrainingProgress]:
        """Train, yielding a report per step; checkpoints and the final model go to ``model_dir``.

        The folder's lock is held from the first step to the last. An
        interruption (Ctrl-C, or SIGTERM through the CLI) writes the model of
        the last step before it propagates, so ``resume`` continues from there.

        Raises:
            InUseError: another run holds ``model_dir``.
            OutputExistsError: ``model_dir`` may not be written (see :func:`~.model_folder.check_model_dir`).
            TrainingDivergedError: the loss or the weights stopped being finite.
        """
        try:
            with ExitStack() as held:
                if self.folder is not None and self.is_writer:
                    try:
                        held.enter_context(self.folder.held())
                    except Exception as exc:
                        if self.distributed is not None:
                            self.distributed.share_start(exc)      # the other processes stop with it
                        raise
                if self.model_dir is not None and self.distributed is not None:
                    self.distributed.share_start(None)             # wait for process 0's checks
                yield from self._train()
        finally:
            if self.distributed is not None and self.trainer.step >= self.config.steps:
                self.distributed.close()

    def _train(self) -> Iterator[TrainingProgress]:
        last_step, last_save = self.trainer.step, time.monotonic()
        try:
            for report in self.trainer.run():
                if report.step != last_step and not math.isfinite(report.loss):
                    raise self._diverged(f"the loss is {report.loss} at step {report.step}")
                last_step = report.step
                if report.done and self.is_writer:
                    self._fit_instances()
                due = (report.done or report.step % self.config.checkpoint_every == 0
                       or time.monotonic() - last_save >= self.config.checkpoint_seconds)
                if self.model_dir is not None and due and self.is_writer:
                    done = report.step >= self.config.steps
                    report = replace(report, checkpoint=str(self._save_final() if done else self.save_checkpoint()))
                    last_save = time.monotonic()
                yield report
        except KeyboardInterrupt:
            self.save_checkpoint()
            raise

    def _fit_instances(self) -> None:
        """Instance settings fitted to the exact masks (or the points), once, when the run ends (unless given)."""
        if self.fitted is None and self.plan.instances is None and self.plan.fit_instances:
            self.fitted = fit_on_labels(self.model(), self.prepared.painted, self.trainer.device)
            if self.fitted is not None:
                self.instances = self.fitted.instances

    def loss_trend(self) -> LossTrend | None:
        """Whether the training loss still falls at the end of the run (the stopping signal; no test data)."""
        return loss_trend(self.trainer.history["total"])

    def stop(self) -> None:
        """End the run after the current step (the model is then written)."""
        self.trainer.stop()

    @property
    def checkpoint_dir(self) -> Path | None:
        """Where the checkpoints of this run go (None without a ``model_dir``)."""
        return None if self.folder is None else self.folder.checkpoint_dir

    def save_checkpoint(self) -> Path | None:
        """Write the model as it is now as the run's checkpoint (once per step; None without a folder).

        Raises:
            TrainingDivergedError: the weights are not finite (nothing is written).
            OutputError: the folder could not be written (full disk...).
        """
        if self.folder is None or not self.is_writer:
            return None
        return self.folder.write(self.trainer.step, self._save_checked)

    def _save_final(self) -> Path:
        """The finished run's model into ``model_dir`` (replacing the one kept there), then no ``NAME.partial``."""
        assert self.folder is not None
        return self.folder.write(self.trainer.step, self._save_checked, final=True)

    def _save_checked(self, target: Path) -> None:
        """The model as it is now into ``target``, unless its weights stopped being finite."""
        bad = [n for n, t in self.trainer.network.state_dict().items()
               if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            raise self._diverged(f"the weights hold NaN or infinite values after step {self.trainer.step} "
                                 f"({bad[0]}...)")
        try:
            check_can_write(target, self.checkpoint_bytes() // 2)     # room for this model, checked first
            self.save(target, overwrite=True)
        except (OSError, OutputError) as exc:
            kept = self.folder.saved if self.folder is not None else None
            raise unsaved_error(exc, step=self.trainer.step, target=target, kept=kept or self._resumed,
                                model_dir=self.model_dir) from None

    def _diverged(self, reason: str) -> TrainingDivergedError:
        target = self.checkpoint_dir
        kept = (f"the last checkpoint with finite weights is kept in {target}" if target is not None and
                target.exists() else "nothing was written")
        return TrainingDivergedError(f"training stopped: {reason}; {kept}; try a lower learning rate "
                                     f"(it is {self.config.learning_rate:g}) or lower task weights")

    def checkpoint_bytes(self) -> int:
        """About how much disk a checkpoint takes while it is written: weights and the optimiser's two
        moments (4 bytes each per parameter), twice (the new and the previous one for a moment)."""
        n = sum(p.numel() for p in self.trainer.network.parameters())
        n += sum(b.numel() for b in self.trainer.network.buffers())
        return 2 * 3 * 4 * n

    # -- the model ------------------------------------------------------------------------
    def model(self) -> LazyLabelsModel:
        """The model as it is now: the regimes' post-processing (with the plan's instance settings),
        the training pixel size (when every image has the same known one) and provenance included."""
        model = self.trainer.model()
        if self.prepared.postprocess is not None:
            model.postprocess = self.prepared.postprocess
        for name, hook in self.hooks.items():
            model.provenance[name] = hook.provenance()
        if self.instances is not None:
            model.postprocess = replace(model.postprocess, instances=self.instances)
        if self.fitted is not None:
            model.provenance["instance_fit"] = self.fitted.to_dict()
        trend = self.loss_trend()
        if trend is not None:
            model.provenance["loss_trend"] = {"change_last_tenth": round(trend.change, 4),
                                              "still_learning": trend.still_learning}
        pixel_size = common_pixel_size(it.pixel_size for it in self.plan.items)
        model.provenance["pixel_size"] = None if pixel_size is None else pixel_size.to_dict()
        return model

    def artifacts(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for hook in self.hooks.values():
            out.update(hook.artifacts())
        return out

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model with its training state and the regimes' files (everything a resume needs)."""
        return save_model(self.model(), path, overwrite=overwrite, training_state=self.trainer.training_state(),
                          artifacts=self.artifacts())


def _check_resumable(previous: LazyLabelsModel, tasks: Sequence[TaskSpec], plan: TrainingPlan) -> None:
    """A run continues a checkpoint only with its tasks and its number of classes."""
    names = [t.name for t in tasks]
    if previous.task_names != names:
        raise LazyLabelsError(f"checkpoint has tasks {previous.task_names}, this run has {names}",
                              source=str(plan.resume))
    before = {t.name: t.n_classes for t in previous.tasks}
    for t in tasks:
        if before[t.name] != t.n_classes:
            k = len(previous.class_names) or max(before.values()) - 1
            raise LazyLabelsError(f"checkpoint was trained with {k} class(es) ({', '.join(previous.class_names)}), "
                                  f"this run has {plan.n_classes}; resume with --classes {k}",
                                  source=str(plan.resume))
    channels = previous.network.config.in_channels
    for old, new in zip(previous.tasks, tasks):
        if old.head_channels(channels) != new.head_channels(channels):
            raise LazyLabelsError(f"checkpoint's {old.name} head has {old.n_classes} classes x {old.components} "
                                  f"component(s), this run asks for {new.n_classes} x {new.components}",
                                  source=str(plan.resume))
