"""The ``lazylabels`` command line: train, predict, export, demo, info, autolabel.

Every user error ends in one line ``lazylabels: error: <file>: <problem>`` on
stderr, exit status 2, no traceback, and nothing written. The manifest
columns, the task weights and the options of the opt-in regimes come from the
regime registry.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import textwrap
import threading
import time
import warnings
from dataclasses import fields, replace
from pathlib import Path
from typing import Iterator, Sequence

from .. import __version__
from ..engine.config import check_number
from ..engine.device import DEVICE_CHOICES
from ..engine.regimes import registry
from ..errors import LazyLabelsError, LazyLabelsWarning, SettingsError
from .autolabel import add_parser as add_autolabel_parser, cmd_autolabel
from .console import Terminated, progress_bar, run_training
from .options import add_options, options_from

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + 15


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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


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


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")


def _pixel_size(text: str):
    from ..engine.annotations import PixelSize
    try:
        value = float(text)
        return PixelSize(value, value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a pixel size in micrometres (a number > 0)") from None


def _postprocess_options(parser: argparse.ArgumentParser, default_text: str) -> None:
    from ..engine.postprocess.settings import InstanceParams
    group = parser.add_argument_group("post-processing (instances from the probabilities; sizes in pixels "
                                      "of the network's input)")
    add_options(group, InstanceParams, default_text=default_text)


def build_parser() -> argparse.ArgumentParser:
    from ..engine.config import PRESETS, TrainConfig
    from ..engine.postprocess.settings import RESCALE_RANGE
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="lazylabels",
        description="Segment microscopy images from lazy labels (blobs, interface scribbles, "
                    "a few exact masks).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    tr = sub.add_parser("train", help="train a model on lazy labels",
                        description=train_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    columns = ",".join(["image", *registry.input_keys()])
    tr.add_argument("--data", required=True, metavar="MANIFEST", help=f"CSV manifest ({columns}) or project folder")
    tr.add_argument("--model", required=True, metavar="MODEL_DIR",
                    help="folder to write the model to (must not exist unless --overwrite or --resume)")
    tr.add_argument("--steps", type=_positive, default=defaults.steps,
                    help=f"optimisation steps in total (default {defaults.steps})")
    tr.add_argument("--patch-size", type=_positive, default=defaults.patch_size, metavar="P",
                    help=f"training patch edge in pixels (default {defaults.patch_size})")
    tr.add_argument("--batch-size", type=_positive, default=defaults.batch_size, metavar="B",
                    help=f"patches per step (default {defaults.batch_size})")
    tr.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                    help="compute device; auto takes CUDA, then Apple MPS, then the CPU (default auto)")
    tr.add_argument("--seed", type=_seed, default=defaults.seed, help="random seed (default 0)")
    tr.add_argument("--preset", choices=sorted(PRESETS), default=None,
                    help="network size: cpu (trains in minutes on 2 cores), paper (the paper's "
                         "6-level network, for GPUs), tiny (tests) (default cpu; with --resume the "
                         "checkpoint's network)")
    tr.add_argument("--lr", type=_number, default=defaults.learning_rate,
                    help=f"peak learning rate of Adam (default {defaults.learning_rate})")
    tr.add_argument("--classes", type=_positive, default=1, metavar="K",
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
    tr.add_argument("--overwrite", action="store_true", help="replace an existing MODEL_DIR")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    _postprocess_options(tr, "stored in the model as the default of predict; default {default}")

    from ..engine.prediction_spec import BLOCK_SIZE, HALO, TILE_SIZE
    pr = sub.add_parser("predict", help="segment images (or each plane of a T/Z stack) with a trained model",
                        description="Segment one image (--out) or many (--outdir) with a trained model. Images "
                                    "of more than 3072 x 3072 px, and every image on a dask cluster, are predicted "
                                    "block by block (out of core): the same result in bounded memory.")
    pr.add_argument("--model", required=True, metavar="MODEL",
                    help="a model folder written by train, or a bioimage.io package written by export (.zip)")
    pr.add_argument("--image", required=True, nargs="+", metavar="IMAGE",
                    help="images to segment: files (.tif/.tiff/.png/.npy; .czi/.nd2/.lif with bioio), OME-Zarr "
                         "stores (.zarr, NGFF 0.4 or 0.5), folders of them, or quoted patterns ('raw/*.tif'); a T "
                         "or Z stack is segmented plane by plane")
    where = pr.add_mutually_exclusive_group(required=True)
    where.add_argument("--out",
                       help="one image's output: OUT.tif: instance labels (uint16, uint32 if needed; a stack: one "
                            "page per plane); OUT.zarr: OME-Zarr with the image, labels/instances, labels/semantic "
                            "and per-task probabilities (a stack: a project of one store per plane)")
    where.add_argument("--outdir", metavar="DIR",
                       help="a folder for the outputs of every image (named by --outname); an image that fails is "
                            "reported and skipped, and the exit status is 2 at the end")
    pr.add_argument("--outname", default=None, metavar="PATTERN",
                    help="with --outdir: each output's name, {stem} and {name} being the image's name without and "
                         "with its extension; .tif/.tiff or .zarr as for --out (default {stem}_labels.tif)")
    pr.add_argument("--skip-existing", action="store_true",
                    help="with --outdir: leave out images whose output exists (to continue an interrupted batch)")
    mode = pr.add_mutually_exclusive_group()
    mode.add_argument("--in-memory", action="store_true", help="read each image whole (default: up to 3072 x 3072 px)")
    mode.add_argument("--out-of-core", action="store_true",
                      help="predict block by block whatever the image's size (default: beyond 3072 x 3072 px)")
    pr.add_argument("--block-size", type=_positive, default=BLOCK_SIZE, metavar="PX",
                    help=f"block edge of the out-of-core prediction; memory grows with its square "
                         f"(default {BLOCK_SIZE})")
    pr.add_argument("--halo", type=_seed, default=HALO, metavar="PX",
                    help=f"context around each block for the instances; objects larger than it are "
                         f"post-processed whole, later (default {HALO})")
    cluster = pr.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=_positive, default=None, metavar="N",
                         help="predict on a dask LocalCluster of N worker processes on this machine "
                              "(needs the distributed extra)")
    cluster.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="predict on a running dask cluster (tcp://host:8786, e.g. one dask-jobqueue started); "
                              "its workers must see the image and the output")
    pr.add_argument("--pixel-size", type=_pixel_size, default=None, metavar="UM",
                    help="the image's pixel size in micrometres (overrides the file's)")
    pr.add_argument("--rescale", type=_number, default=None, metavar="F",
                    help=f"resize the image by F ({RESCALE_RANGE[0]:g}..{RESCALE_RANGE[1]:g}) before predicting, "
                         f"the results back: 2 when the objects look half as large as those trained on "
                         f"(default: the model's; else image pixel size / training pixel size when both are "
                         f"known, else 1)")
    pr.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default auto)")
    pr.add_argument("--tile-size", type=_positive, default=TILE_SIZE,
                    help=f"largest tile edge in pixels; lower it if memory runs out (default {TILE_SIZE})")
    pr.add_argument("--flips", action="store_true",
                    help="test-time augmentation: average the probabilities of the image and its three flips "
                         "(four times the prediction time; default: the model's, off)")
    pr.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    _postprocess_options(pr, "default: the model's, see lazylabels info")

    ex = sub.add_parser("export", help="write a model as a bioimage.io model package (.zip)",
                        description="Write a model as a bioimage.io model package (spec 0.5): weights as "
                                    "pytorch_state_dict and TorchScript, axes, normalisation, test input and "
                                    "output, cover image, provenance and citations. Fiji (deepImageJ), "
                                    "QuPath, ilastik and the bioimage.io tools run it; lazylabels predict "
                                    "reads it back. Needs the bioimageio extra "
                                    "(pip install \"napari-lazylabels[bioimageio]\").")
    ex.add_argument("--model", required=True, metavar="MODEL_DIR", help="a model folder written by train")
    ex.add_argument("--out", required=True, metavar="OUT.zip", help="the package to write (.zip)")
    ex.add_argument("--name", default=None, help="the model's name in the package (default: the folder's name)")
    ex.add_argument("--test-image", default=None, metavar="IMAGE",
                    help="a 2D image for the package's test input and cover (default: a synthetic one)")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing OUT")

    de = sub.add_parser("demo", help="train on synthetic lazy labels and score on held-out images")
    de.add_argument("--out", default="lazylabels-demo", metavar="DIR",
                    help="folder for the project, model and figure (default ./lazylabels-demo)")
    de.add_argument("--steps", type=_positive, default=None,
                    help="training steps (default: the demo's tuned value)")
    de.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default auto)")
    de.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    de.add_argument("--quiet", action="store_true", help="no progress bar")

    info = sub.add_parser("info", help="describe a model folder")
    info.add_argument("--model", required=True, metavar="MODEL_DIR")
    add_autolabel_parser(sub, _pixel_size)
    return parser


def _warn_ignored_preset(args, network) -> None:
    """``--resume`` takes the checkpoint's network: a ``--preset`` that differs from it is ignored, and said so."""
    from dataclasses import replace

    from ..engine.config import preset
    if args.preset is None:
        return
    net = network.config
    if replace(preset(args.preset), in_channels=net.in_channels) != net:
        warnings.warn(f"--preset {args.preset} is ignored with --resume: the network comes from the checkpoint "
                      f"(depth {net.depth}, {net.base_channels} base channels)", LazyLabelsWarning)


def cmd_train(args) -> int:
    from ..engine.config import TrainConfig, preset
    from ..engine.postprocess.settings import InstanceParams
    from ..engine.training.trainer import default_class_names
    from ..io.atomic import check_can_write
    from ..io.manifest import load_manifest, manifest_files
    from ..recipes.train import TrainingPlan, TrainingRun, check_model_dir, resume_source

    model_dir = Path(args.model)
    resume = resume_source(model_dir) if args.resume else None
    # the model folder first: never replace what is not a model, nor the data (checked again by the run)
    check_model_dir(model_dir, overwrite=args.overwrite, resume=resume, data_files=manifest_files(args.data))
    # settings next: a bad value is refused before any image is read
    config = TrainConfig(steps=args.steps, patch_size=args.patch_size, batch_size=args.batch_size,
                         learning_rate=args.lr, seed=args.seed, device=args.device)
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
                                   resume=resume, data_description=str(args.data), instances=instances))
    if resume is not None:
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
    print(f"model written to {model_dir} ({run.step} steps, {time.perf_counter() - start:.0f} s)")
    return 0


def _postprocess_from(args, model):
    """The model's post-processing with the options given on the command line."""
    from ..engine.postprocess.settings import InstanceParams
    instances = options_from(args, InstanceParams, base=model.postprocess.instances)
    rescale = model.postprocess.rescale if args.rescale is None else args.rescale
    return replace(model.postprocess, instances=instances, rescale=rescale,
                   flips=model.postprocess.flips or bool(getattr(args, "flips", False)))


def cmd_predict(args) -> int:
    from ..engine.device import resolve_device
    from ..engine.prediction_spec import PredictionSpec
    from ..io.inputs import DEFAULT_OUTNAME, check_outname, expand_inputs
    from ..io.modelio import load_model
    from ..recipes.predict import PredictOptions, check_output, plan_outputs

    if args.outdir is None and (args.outname is not None or args.skip_existing):
        raise SettingsError(f"--{'outname' if args.outname is not None else 'skip-existing'} goes with --outdir")
    mode = "memory" if args.in_memory else "blocks" if args.out_of_core else "auto"
    options = PredictOptions(pixel_size=args.pixel_size, overwrite=args.overwrite, mode=mode, workers=args.workers,
                             scheduler=args.scheduler)
    images = expand_inputs(args.image)
    skipped: list = []
    if args.out is not None:
        if len(images) != 1:
            raise SettingsError(f"--out names the output of one image, and {len(images)} are given; "
                                f"give --outdir DIR for several")
        pairs = [(images[0], check_output(Path(args.out), args.overwrite))]
    else:
        template = check_outname(args.outname or DEFAULT_OUTNAME)
        pairs, skipped = plan_outputs(images, Path(args.outdir), template, overwrite=args.overwrite,
                                      skip_existing=args.skip_existing)
    device = resolve_device(args.device)
    model = load_model(args.model, device=device)
    spec = PredictionSpec.resolve(model, device=device, postprocess=_postprocess_from(args, model),
                                  tile_size=args.tile_size, block_size=args.block_size, halo=args.halo)
    if args.out is not None:
        return _predict_one(model, spec, options, *pairs[0], args.quiet)
    return _predict_batch(model, spec, options, pairs, skipped, args)


def _predict_one(model, spec, options, image, out, quiet: bool) -> int:
    """One image: its progress (tiles, or the passes over the blocks); an error ends the command."""
    from ..recipes.predict import Predictor
    bars: list = []      # made at the first tick: a bad image is refused before any bar is drawn
    passes: list = []

    def tick(what, done, total):
        if not bars:
            bars.append(progress_bar(1, what, quiet, unit="tile" if what == "tiles" else "block"))
        bar = bars[0]
        if passes[-1:] != [what]:       # the next pass: its own count and rate
            passes.append(what)
            bar.set_description(what, refresh=False)
            bar.reset(total=max(total, 1))
        bar.total = max(total, 1)
        bar.update(done - bar.n)

    def note(text):
        (bars[0].write if bars else print)(text, file=sys.stderr)

    with Predictor(model, spec, options, progress=tick, notify=note) as predictor:
        try:
            result = predictor.predict(image, out)
        except OSError as exc:
            from ..io.atomic import write_error
            raise write_error(exc, out) from None
        finally:
            for bar in bars:
                bar.close()
    per = f" in {result.planes} planes" if result.planes > 1 else ""
    print(f"{result.n_objects} objects{per}; written to {out}")
    return 0


def _predict_batch(model, spec, options, pairs, skipped, args) -> int:
    """Many images: a bar over them; one that fails is said in one line and skipped; a summary at the end."""
    from ..recipes.predict import Predictor
    bar = progress_bar(len(pairs), "images", args.quiet, unit="image")

    def tick(what, done, total):
        bar.set_postfix_str(f"{what} {done}/{total}")

    if skipped:
        bar.write(f"{len(skipped)} image(s) skipped: their output exists (--skip-existing)", file=sys.stderr)
    results = []
    with Predictor(model, spec, options, progress=tick,
                   notify=lambda text: bar.write(text, file=sys.stderr)) as predictor:
        for result in predictor.predict_all(pairs, before=lambda image: bar.set_description(Path(image).name)):
            bar.update(1)
            if not result.ok:
                bar.write(f"lazylabels: error: {result.error}", file=sys.stderr)
            results.append(result)
    bar.close()
    for result in results:
        print(result.summary())
    failed = [r for r in results if not r.ok]
    done = len(results) - len(failed)
    objects = sum(r.n_objects for r in results)
    line = f"{done} of {len(results)} images predicted ({objects} objects) into {args.outdir}"
    if skipped:
        line += f"; {len(skipped)} skipped (output exists)"
    if failed:
        line += f"; {len(failed)} failed: {', '.join(str(r.image) for r in failed)}"
    print(line)
    return EXIT_USER_ERROR if failed else 0


def cmd_export(args) -> int:
    from ..io.bioimageio import export_bioimageio
    from ..io.imageio import load_image
    from ..io.modelio import load_model

    model = load_model(args.model)
    test_image = load_image(args.test_image) if args.test_image else None
    out = export_bioimageio(model, args.out, name=args.name or Path(args.model).name, test_image=test_image,
                            overwrite=args.overwrite)
    print(f"bioimage.io package written to {out}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    report = run_demo(args.out, steps=args.steps, device=args.device, overwrite=args.overwrite,
                      quiet=args.quiet)
    print(report.text())
    return 0


def cmd_info(args) -> int:
    import json

    from ..engine.model import count_parameters
    from ..io.modelio import load_model
    model = load_model(args.model)
    print(json.dumps({"network": model.network_config.to_dict(), "parameters": count_parameters(model.network),
                      "tasks": model.task_names, "class_names": model.class_names,
                      "postprocess": model.postprocess.to_dict(), "provenance": model.provenance}, indent=2))
    return 0


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "export": cmd_export, "demo": cmd_demo, "info": cmd_info,
            "autolabel": cmd_autolabel}


def _error(message: str) -> int:
    print(f"lazylabels: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt), so training writes its checkpoint as on
    Ctrl-C; a second SIGTERM while it does is ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum, frame):
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """The package's warnings as one line each, ``lazylabels: warning: ...``, every time."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", LazyLabelsWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, LazyLabelsWarning):
                print(f"lazylabels: warning: {message}", file=sys.stderr)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _sigterm_as_interrupt(), _warnings_as_lines():
            code = COMMANDS[args.command](args)
        sys.stdout.flush()
        return code
    except LazyLabelsError as exc:
        return _error(str(exc))
    except Terminated:
        print("lazylabels: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("lazylabels: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        return _error("out of memory; try a smaller --tile-size or --batch-size")
    except BrokenPipeError:
        # the reader of our output went away (`lazylabels info | head`): no more output to
        # it, and none at exit either (the interpreter would flush stdout again)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return _error("the output was closed before everything was written (broken pipe)")


if __name__ == "__main__":
    sys.exit(main())
