"""``lazylabels train``: a model from lazy labels (a manifest or a project folder), through the recipe."""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
import warnings
from dataclasses import fields
from pathlib import Path

from ..engine.config import PRESETS, TrainConfig, check_number
from ..engine.device import DEVICE_CHOICES
from ..engine.regimes import registry
from ..engine.training.budget import MAX_AUTO_STEPS
from ..errors import LazyLabelsWarning, SettingsError
from .arguments import number, positive, postprocess_options, whole_number
from .console import run_training
from .options import add_options, options_from


def train_help() -> str:
    inputs = registry.label_inputs()
    columns = ",".join(["image", *(i.key for i in inputs)])
    lines = [
        "Train a model on lazy labels.", "",
        f"MANIFEST is a CSV file with the header {columns}",
        "(an optional roi column too). Paths are relative to the CSV's folder; an empty cell means the image is not annotated",
        "for that column. Images: .tif/.tiff/.png/.npy, 2D grayscale or 2D with channels (a T or Z",
        "stack is refused: one row per plane). Labels: integer arrays of the image's YX shape, 0 elsewhere:",
    ]
    for i in inputs:
        optional = "" if i.required else " (optional column)"
        lines.append(f"  {i.key:<14s} {i.values}{optional}")
    if any(i.required for i in inputs) and any(not i.required for i in inputs):
        lines += ["A manifest with optional label columns only (e.g. fg/bg scribbles) may leave out",
                  "the other columns: it trains the regimes of its columns alone."]
    lines += ["MANIFEST may also be a project folder written by lazylabels (OME-Zarr stores with "
              "labels/<column>).", ""]
    return "\n".join(lines)


def _task_weights(text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, text.split(",")):
        key, _, val = part.partition("=")
        try:
            out[key.strip()] = float(val)
        except ValueError:
            example = ",".join(f"{n}=1" for n in registry.task_names()[:2])
            raise argparse.ArgumentTypeError(f"bad task weight {part!r}; use e.g. {example}")
    return out


def _check_weights(weights: dict[str, float], opt_in) -> None:
    """Refuse unknown tasks, tasks of an opt-in regime that is not switched on, and weights that are
    not finite numbers >= 0 (before any image is read)."""
    unknown = set(weights) - set(registry.task_names())
    if unknown:
        raise SettingsError(f"unknown task(s) in --task-weights: {', '.join(sorted(unknown))} "
                            f"(tasks: {', '.join(registry.task_names())})")
    for r in registry.opt_in_regimes():
        off = set(weights) & set(r.task_names) if r.name not in opt_in else set()
        if off:
            raise SettingsError(f"--task-weights names {', '.join(sorted(off))}, trained only with --{r.name}")
    for name, value in weights.items():
        check_number(f"task {name!r}: weight", value, low=0)


def add_parser(sub) -> None:
    defaults = TrainConfig()
    tr = sub.add_parser("train", help="train a model on lazy labels",
                        description=train_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    columns = ",".join(["image", *registry.input_keys()])
    tr.add_argument("--data", required=True, metavar="MANIFEST", help=f"CSV manifest ({columns}) or project folder")
    tr.add_argument("--model", required=True, metavar="MODEL_DIR",
                    help="folder to write the model to (must not exist unless --overwrite or --resume)")
    tr.add_argument("--steps", type=positive, default=None,
                    help=f"optimisation steps in total (default {defaults.steps}; with --budget auto the most "
                         f"it may take, default {MAX_AUTO_STEPS})")
    tr.add_argument("--budget", choices=("steps", "auto"), default="steps",
                    help="steps: train --steps steps; auto: time the first steps, then train as many as end "
                         "within --time-limit (a GPU trains many more than a CPU), and say what it chose "
                         "(default steps)")
    tr.add_argument("--time-limit", type=number, default=None, metavar="MIN",
                    help=f"with --budget auto: minutes of training (default {DEFAULT_TIME_LIMIT_MIN} on the CPU, "
                         f"{DEFAULT_TIME_LIMIT_MIN_GPU} on a GPU)")
    tr.add_argument("--patch-size", type=positive, default=defaults.patch_size, metavar="P",
                    help=f"training patch edge in pixels (default {defaults.patch_size})")
    tr.add_argument("--batch-size", type=positive, default=defaults.batch_size, metavar="B",
                    help=f"patches per step (default {defaults.batch_size})")
    tr.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                    help="compute device; auto takes CUDA, then Apple MPS, then the CPU (default auto)")
    tr.add_argument("--seed", type=whole_number, default=defaults.seed, help="random seed (default 0)")
    tr.add_argument("--preset", choices=sorted(PRESETS), default=None,
                    help="network size: cpu (trains in minutes on 2 cores), paper (the paper's "
                         "6-level network, for GPUs), tiny (tests) (default cpu; with --resume the "
                         "checkpoint's network)")
    tr.add_argument("--lr", type=number, default=defaults.learning_rate,
                    help=f"peak learning rate of Adam (default {defaults.learning_rate})")
    tr.add_argument("--classes", type=positive, default=1, metavar="K",
                    help="number of object classes K; label values must be 0..K (default 1)")
    tr.add_argument("--task-weights", type=_task_weights, default={}, metavar="W",
                    help="task weights alpha_k, e.g. " + ",".join(f"{n}=1" for n in registry.task_names()))
    for r in registry.opt_in_regimes():
        group = tr.add_argument_group(f"--{r.name}")
        group.add_argument(f"--{r.name}", action="store_true", help=r.description)
        if r.options is not None:
            add_options(group, r.options, help_prefix=f"with --{r.name}: ")
    for r in registry.regimes_with_options():
        columns = ", ".join(i.key for i in r.inputs)
        group = tr.add_argument_group(r.title, textwrap.fill(
            f"{r.description}. Trained when the data has labels in the column(s) {columns}; these "
            "options apply then.", 78))
        add_options(group, r.options)
    tr.add_argument("--resume", action="store_true",
                    help="continue training from the checkpoint in MODEL_DIR up to --steps")
    tr.add_argument("--init-from", metavar="MODEL", default=None,
                    help="start from this model's weights (and optimiser state where sound) on the labels "
                         "as they are now: a new run of --steps into a new MODEL_DIR; MODEL is only read")
    tr.add_argument("--overwrite", action="store_true", help="replace an existing MODEL_DIR")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.add_argument("--no-fit-instances", dest="fit_instances", action="store_false",
                    help="keep the instance settings' defaults instead of fitting them to the exact masks (or, "
                         "without exact masks, to the points) at the end of the run (they are fitted unless some "
                         "are given below)")
    postprocess_options(tr, "stored in the model as the default of predict; default {default}")
    tr.set_defaults(run=cmd_train)


def _warn_ignored_preset(args, network) -> None:
    """``--resume`` takes the checkpoint's network: a ``--preset`` that differs from it is ignored, and said so."""
    from dataclasses import replace

    from ..engine.config import preset
    if args.preset is None:
        return
    net = network.config
    if replace(preset(args.preset), in_channels=net.in_channels) != net:
        warnings.warn(f"--preset {args.preset} is ignored with --resume or --init-from: the network comes from the checkpoint "
                      f"(depth {net.depth}, {net.base_channels} base channels)", LazyLabelsWarning)


#: The automatic budget's time limits (minutes), when --time-limit is not given.
DEFAULT_TIME_LIMIT_MIN = 15
DEFAULT_TIME_LIMIT_MIN_GPU = 30


def _time_limit_s(args) -> float | None:
    """The automatic budget's time limit in seconds (None: a fixed number of steps)."""
    if args.budget != "auto":
        if args.time_limit is not None:
            raise SettingsError("--time-limit goes with --budget auto")
        return None
    if args.time_limit is not None:
        return 60.0 * args.time_limit
    from ..engine.device import select_device
    gpu = select_device(args.device).type != "cpu"
    return 60.0 * (DEFAULT_TIME_LIMIT_MIN_GPU if gpu else DEFAULT_TIME_LIMIT_MIN)


def check_init_from(model_dir: Path, args) -> None:
    """``--init-from``: not with ``--resume``, never into the model it reads (one line each)."""
    from ..recipes.continue_training import check_not_source
    if args.resume:
        raise SettingsError("--init-from starts a new run from a model, --resume continues a run: give one")
    check_not_source(model_dir, args.init_from)


def cmd_train(args) -> int:
    from ..engine.config import TrainConfig, preset
    from ..engine.postprocess.settings import InstanceParams
    from ..engine.training.trainer import default_class_names
    from ..io.atomic import check_can_write
    from ..io.manifest import load_manifest, manifest_files
    from ..recipes.model_folder import check_model_dir, resume_source
    from ..recipes.train import TrainingPlan, TrainingRun

    model_dir = Path(args.model)
    if args.init_from is not None:
        check_init_from(model_dir, args)
    resume = resume_source(model_dir) if args.resume else None
    # the model folder first: never replace what is not a model, nor the data (checked again by the run)
    check_model_dir(model_dir, overwrite=args.overwrite, resume=resume, data_files=manifest_files(args.data))
    # settings next: a bad value is refused before any image is read
    config = TrainConfig(steps=args.steps or (MAX_AUTO_STEPS if args.budget == "auto" else TrainConfig.steps),
                         patch_size=args.patch_size, batch_size=args.batch_size, learning_rate=args.lr,
                         seed=args.seed, device=args.device, time_limit_s=_time_limit_s(args))
    opt_in = {r.name: options_from(args, r.options) if r.options is not None else None
              for r in registry.opt_in_regimes() if getattr(args, r.name)}
    options = {r.name: options_from(args, r.options) for r in registry.regimes_with_options()}
    _check_weights(args.task_weights, opt_in)
    given = [f.name for f in fields(InstanceParams) if getattr(args, f.name) is not None]
    instances = options_from(args, InstanceParams, base=InstanceParams()) if given else None
    items = load_manifest(args.data, args.classes)
    run = TrainingRun(TrainingPlan(items, class_names=default_class_names(args.classes),
                                   network=preset(args.preset or "cpu"), config=config, weights=args.task_weights,
                                   opt_in=opt_in, options=options, model_dir=model_dir, overwrite=args.overwrite,
                                   resume=resume, data_description=str(args.data), instances=instances,
                                   fit_instances=args.fit_instances, init_from=args.init_from))
    if run.continued is not None:
        print(run.continued.summary(), file=sys.stderr)
    if resume is not None or args.init_from is not None:
        _warn_ignored_preset(args, run.trainer.network)
    check_can_write(model_dir, run.checkpoint_bytes())
    if run.is_writer:       # under torchrun, process 0 speaks for all
        ranks = f" x {run.distributed.world_size} processes" if run.distributed is not None else ""
        print(f"{run.prepared.summary()}; device {run.trainer.device_name}{ranks}", file=sys.stderr)
    if run.done:
        print(f"checkpoint {resume} already at step {run.step} >= --steps {config.steps}; nothing to do",
              file=sys.stderr)
        return 0
    start = time.perf_counter()
    run_training(run, args.quiet or not run.is_writer)
    if not run.is_writer:
        return 0
    for name, hook in run.hooks.items():
        print(f"{name}: {hook.summary()} of {model_dir}", file=sys.stderr)
    if run.trainer.auto_budget is not None:
        print(run.trainer.auto_budget.summary(), file=sys.stderr)
    trend = run.loss_trend()
    if trend is not None:
        print(trend.summary(), file=sys.stderr)
    if run.fitted is not None:
        print(run.fitted.summary(), file=sys.stderr)
    print(f"model written to {model_dir} ({run.step} steps, {time.perf_counter() - start:.0f} s)")
    return 0
