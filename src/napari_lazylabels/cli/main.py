"""The ``lazylabels`` command line: train, predict, demo, info.

Every user error ends in one line ``lazylabels: error: <file>: <problem>`` on
stderr, exit status 2, no traceback, and nothing written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from .. import __version__
from ..engine.device import DEVICE_CHOICES
from .console import progress_bar, run_training
from ..errors import LazyLabelsError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

TRAIN_HELP = """\
Train a model on lazy labels.

MANIFEST is a CSV file with the header image,detection,separation,segmentation
(an optional roi column too). Paths are relative to the CSV's folder; an empty
cell means the image is not annotated for that task. Images: .tif/.tiff/.png/.npy,
2D grayscale or 2D with a trailing channel axis. Labels: integer arrays of the
image's YX shape: detection = class id (1..K) in a blob inside each object,
separation = 1 on interfaces between touching objects, segmentation = class id
(1..K) exact to the boundary, 0 elsewhere. MANIFEST may also be a project folder
written by lazylabels (OME-Zarr stores with labels/detection, ...).
"""


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
            raise argparse.ArgumentTypeError(f"bad task weight {part!r}; use e.g. detection=1,separation=2")
    return out


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    from ..engine.config import PRESETS, TrainConfig
    from ..engine.regimes.recursive import RecursiveConfig
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="lazylabels",
        description="Segment microscopy images from lazy labels (blobs, interface scribbles, "
                    "a few exact masks).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    tr = sub.add_parser("train", help="train a model on lazy labels",
                        description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.add_argument("--data", required=True, metavar="MANIFEST",
                    help="CSV manifest (image,detection,separation,segmentation) or project folder")
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
    tr.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default 0)")
    tr.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                    help="network size: cpu (trains in minutes on 2 cores), paper (the paper's "
                         "6-level network, for GPUs), tiny (tests) (default cpu)")
    tr.add_argument("--lr", type=float, default=defaults.learning_rate,
                    help=f"peak learning rate of Adam (default {defaults.learning_rate})")
    tr.add_argument("--classes", type=_positive, default=1, metavar="K",
                    help="number of object classes K; label values must be 0..K (default 1)")
    tr.add_argument("--task-weights", type=_task_weights, default={}, metavar="W",
                    help="task weights alpha_k, e.g. detection=1,separation=2,segmentation=1")
    rec = RecursiveConfig()
    tr.add_argument("--recursive", action="store_true",
                    help="add the recursive approximation task (Ke et al. 2021): targets start as the "
                         "blobs and grow towards the boundaries every round, guided by the segmentation "
                         "head; the rounds are saved in MODEL_DIR/approximations/round_XX.npz")
    tr.add_argument("--rounds", type=_positive, default=rec.rounds,
                    help=f"with --recursive: growth rounds (default {rec.rounds})")
    tr.add_argument("--steps-per-round", type=_positive, default=None, metavar="T",
                    help="with --recursive: steps between two growth rounds "
                         "(default: --steps divided by rounds+1)")
    tr.add_argument("--lambda-train", type=_non_negative, default=rec.lambda_train, metavar="L",
                    help=f"with --recursive: growth speed lambda in training (default {rec.lambda_train})")
    tr.add_argument("--lambda-final", type=_non_negative, default=rec.lambda_final, metavar="L",
                    help=f"with --recursive: lambda of the last growth at prediction "
                         f"(default {rec.lambda_final})")
    tr.add_argument("--resume", action="store_true",
                    help="continue training from the checkpoint in MODEL_DIR up to --steps")
    tr.add_argument("--overwrite", action="store_true", help="replace an existing MODEL_DIR")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")

    pr = sub.add_parser("predict", help="segment an image with a trained model")
    pr.add_argument("--model", required=True, metavar="MODEL_DIR", help="a model folder written by train")
    pr.add_argument("--image", required=True, help="image to segment (.tif/.tiff/.png/.npy)")
    pr.add_argument("--out", required=True,
                    help="OUT.tif: instance labels (uint16, uint32 if needed); OUT.zarr: OME-Zarr with "
                         "the image, labels/instances, labels/semantic and per-task probabilities")
    pr.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default auto)")
    pr.add_argument("--tile-size", type=_positive, default=1024,
                    help="largest tile edge in pixels; lower it if memory runs out (default 1024)")
    pr.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")

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
    return parser


def cmd_train(args) -> int:
    from ..io.atomic import check_writable
    from ..engine.config import TrainConfig, preset
    from ..errors import ModelFileError
    from ..io.manifest import load_manifest
    from ..engine.tasks import lazy_tasks
    from ..engine.training.trainer import Trainer

    model_dir = Path(args.model)
    if args.resume:
        if not model_dir.exists():
            raise ModelFileError("nothing to resume: model directory not found", source=str(model_dir))
    else:
        check_writable(model_dir, args.overwrite)
    known = {"detection", "separation", "segmentation"} | ({"approximation"} if args.recursive else set())
    unknown = set(args.task_weights) - known
    if unknown:
        raise LazyLabelsError(f"unknown task(s) in --task-weights: {', '.join(sorted(unknown))}")
    tasks = lazy_tasks(args.classes, args.task_weights)
    items = load_manifest(args.data, tasks)
    recursive = None
    if args.recursive:
        from ..engine.regimes.recursive import RecursiveConfig, with_approximation, with_approximation_labels
        recursive = RecursiveConfig(rounds=args.rounds, steps_per_round=args.steps_per_round,
                                    lambda_train=args.lambda_train, lambda_final=args.lambda_final)
        tasks = with_approximation(tasks, args.task_weights.get("approximation", 1.0))
        items = with_approximation_labels(items)
    config = TrainConfig(steps=args.steps, patch_size=args.patch_size, batch_size=args.batch_size,
                         learning_rate=args.lr, seed=args.seed, device=args.device)
    trainer = Trainer(items, tasks, preset(args.preset), config, resume=model_dir if args.resume else None,
                      checkpoint_dir=model_dir, data_description=str(args.data))
    rounds = None
    if recursive is not None:
        from ..engine.regimes.recursive import APPROXIMATIONS_DIR, attach_recursive
        rounds = attach_recursive(trainer, recursive,
                                  resume_from=model_dir / APPROXIMATIONS_DIR if args.resume else None)
    counts = ", ".join(f"{k} {v}" for k, v in trainer.annotated_counts.items())
    print(f"{len(items)} images (annotated: {counts}); device {trainer.device_name}", file=sys.stderr)
    if trainer.step >= config.steps:
        print(f"checkpoint already at step {trainer.step} >= --steps {config.steps}; nothing to do",
              file=sys.stderr)
        return 0
    start = time.perf_counter()
    if rounds is None:
        run_training(trainer, args.quiet)
    else:
        from ..engine.regimes.recursive import save_recursive_model
        try:
            run_training(trainer, args.quiet)
        except KeyboardInterrupt:
            save_recursive_model(trainer, rounds, model_dir)
            raise
        save_recursive_model(trainer, rounds, model_dir)
        print(f"{rounds.current_round} approximation rounds written to {model_dir / 'approximations'}",
              file=sys.stderr)
    print(f"model written to {model_dir} ({trainer.step} steps, {time.perf_counter() - start:.0f} s)")
    return 0


def cmd_predict(args) -> int:
    from ..io.atomic import check_writable
    from ..engine.device import select_device
    from ..io.imageio import load_image
    from ..io.modelio import load_model
    from ..io.output import write_prediction
    from ..engine.pipeline import segment

    out = Path(args.out)
    name = out.name.lower()
    if not (name.endswith((".tif", ".tiff", ".zarr"))):
        raise LazyLabelsError("--out must end in .tif, .tiff or .zarr", source=str(out))
    check_writable(out, args.overwrite)
    device = select_device(args.device)
    model = load_model(args.model, device=device)
    image = load_image(args.image)
    bar = progress_bar(1, "predicting", args.quiet, unit="tile")

    def tick(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    result = segment(model, image, device=device, tile_size=args.tile_size, progress=tick)
    bar.close()
    write_prediction(out, image, result, model, overwrite=args.overwrite, source=str(args.image))
    print(f"{result.n_objects} objects; written to {out}")
    return 0


def cmd_demo(args) -> int:
    from ..recipes.demo import run_demo
    report = run_demo(args.out, steps=args.steps, device=args.device, overwrite=args.overwrite,
                      quiet=args.quiet)
    print(report.text())
    return 0


def cmd_info(args) -> int:
    import json

    from ..io.modelio import load_model
    from ..engine.model import count_parameters
    model = load_model(args.model)
    print(json.dumps({"network": model.network_config.to_dict(), "parameters": count_parameters(model.network),
                      "tasks": model.task_names, "class_names": model.class_names,
                      "provenance": model.provenance}, indent=2))
    return 0


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "demo": cmd_demo, "info": cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except LazyLabelsError as exc:
        print(f"lazylabels: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("lazylabels: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("lazylabels: error: out of memory; try a smaller --tile-size or --batch-size", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
