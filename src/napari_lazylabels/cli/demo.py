"""The demo: synthetic lazy labels -> trained model -> scored held-out images.

``lazylabels demo`` runs :func:`run_demo`: it makes the synthetic sample (every
image with blobs and interface scribbles, exact masks on 10 % of them), trains
the default CPU network on those lazy labels only, segments held-out synthetic
images, and writes into the output folder:

    project/      OME-Zarr project: training images with their lazy labels,
                  test images with ground truth and predictions
    model/        the trained model (safetensors + config.json)
    overlay.png   test images with predicted (red) and true (green) outlines
    loss.png      per-task loss curves
    metrics.json  Dice and AP50 on the test images
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..engine.config import TrainConfig, preset
from ..engine.device import DEVICE_CHOICES
from ..engine.metrics import aggregate, summarize
from ..engine.pipeline import segment
from ..engine.regimes import registry
from ..engine.synthetic import make_lazy_dataset, make_test_set
from ..engine.tasks import FOREGROUND
from ..errors import OutputExistsError
from ..io.atomic import atomic_write_dir, check_can_write, check_not_current_folder, check_writable, write_error
from ..io.figures import save_loss_curve, save_overlay_figure
from ..io.modelio import save_model
from ..io.ome_zarr import ImageStore
from ..io.project import annotations_to_store, write_project
from ..recipes.train import TrainingPlan, TrainingRun
from .arguments import positive
from .console import run_training

#: The demo's data and training budget (tuned to finish in minutes on 2 CPU cores).
DEMO_TRAIN_IMAGES = 30
DEMO_TEST_IMAGES = 4
DEMO_SHAPE = (256, 256)
DEMO_STRONG_FRACTION = 0.1
DEMO_STEPS = 600
DEMO_SEED = 0
#: About what the demo writes (project, model, figures), checked free before it starts.
DEMO_BYTES = 64 << 20
METRICS_FILE = "metrics.json"
DEMO_FOLDER = f"a demo output folder (with {METRICS_FILE}, model/ and project/)"


@dataclass
class DemoReport:
    dice: float
    ap50: float
    per_image: list[dict] = field(default_factory=list)
    train_images: int = 0
    strong_images: int = 0
    steps: int = 0
    train_seconds: float = 0.0
    total_seconds: float = 0.0
    device: str = ""
    out: str = ""

    def text(self) -> str:
        return (f"demo: trained {self.steps} steps on {self.train_images} synthetic images "
                f"({self.strong_images} with exact masks) in {self.train_seconds:.0f} s on {self.device}\n"
                f"held-out images: {len(self.per_image)}\n"
                f"Dice  {self.dice:.3f}\n"
                f"AP50  {self.ap50:.3f}\n"
                f"written to {self.out} (project/, model/, overlay.png, loss.png, metrics.json); "
                f"total {self.total_seconds:.0f} s")


def _log(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def run_demo(out: str | Path = "lazylabels-demo", *, steps: int | None = None, device: str = "auto",
             overwrite: bool = False, quiet: bool = False, network: str = "cpu") -> DemoReport:
    """Run the demo into ``out``; ``network`` is a preset name (``tiny`` for tests)."""
    t_start = time.perf_counter()
    out = check_not_current_folder(out)
    check_writable(out, overwrite)
    if overwrite and out.exists() and not (out.is_dir() and not any(out.iterdir())) and not is_demo_folder(out):
        raise OutputExistsError(f"is not {DEMO_FOLDER}; --overwrite only replaces such a folder, so it is left "
                                f"alone", source=str(out))
    check_can_write(out, DEMO_BYTES)
    items, _ = make_lazy_dataset(DEMO_TRAIN_IMAGES, seed=DEMO_SEED, shape=DEMO_SHAPE,
                                 strong_fraction=DEMO_STRONG_FRACTION)
    tests = make_test_set(DEMO_TEST_IMAGES, seed=DEMO_SEED + 1000, shape=DEMO_SHAPE)
    strong_key = registry.input_with_role(FOREGROUND).key
    strong = sum(it.is_annotated(strong_key) for it in items)
    _log(quiet, f"synthetic sample: {len(items)} training images ({strong} with exact masks), "
                f"{len(tests)} held-out images")
    config = TrainConfig(steps=steps or DEMO_STEPS, device=device, seed=DEMO_SEED)
    run = TrainingRun(TrainingPlan(items, network=preset(network), config=config,
                                   data_description="synthetic demo sample"))
    _log(quiet, f"training on {run.trainer.device_name}")
    t0 = time.perf_counter()
    run_training(run, quiet)
    train_s = time.perf_counter() - t0
    model = run.model()
    trainer = run.trainer

    stores = [annotations_to_store(it, {"class_names": model.class_names, "split": "train"}) for it in items]
    panels, per_image, summaries = [], [], []
    for i, t in enumerate(tests):
        result = segment(model, t.image, device=trainer.device)
        summary = summarize(result.instances, t.instances, result.semantic, t.semantic)
        summaries.append(summary)
        per_image.append({"name": f"test_{i:03d}", "dice": summary["dice"], "ap50": summary["ap50"],
                          "object_dice": summary["object_dice"],
                          "objects_true": int(summary["n_gt"]), "objects_found": int(summary["n_pred"])})
        labels = result.label_layers()
        labels["ground_truth"] = t.instances.astype(np.uint16)
        stores.append(ImageStore(image=t.image, labels=labels, probabilities=result.probabilities,
                                 name=f"test_{i:03d}", metadata={"class_names": model.class_names,
                                                                 "split": "test"}))
        panels.append({"image": t.image, "instances": result.instances, "reference": t.instances,
                       "title": f"test_{i:03d}",
                       "subtitle": f"Dice {summary['dice']:.3f}  AP50 {summary['ap50']:.3f}"})
    total = aggregate(summaries)
    report = DemoReport(dice=float(total["dice"]), ap50=float(total["ap50"]),
                        per_image=per_image, train_images=len(items), strong_images=strong,
                        steps=trainer.step, train_seconds=train_s, device=trainer.device_name, out=str(out))

    def fill(work: Path) -> None:
        write_project(work / "project", stores, class_names=model.class_names)
        save_model(model, work / "model")
        save_overlay_figure(work / "overlay.png", panels,
                            title="held-out synthetic images: predicted (red) and true (green) outlines")
        save_loss_curve(work / "loss.png", trainer.history)
        report.total_seconds = time.perf_counter() - t_start
        (work / METRICS_FILE).write_text(json.dumps(asdict(report), indent=2))

    try:
        atomic_write_dir(out, fill, overwrite=overwrite, replaceable=is_demo_folder, what=DEMO_FOLDER)
    except OSError as exc:
        raise write_error(exc, out) from None
    return report


def is_demo_folder(path: Path) -> bool:
    """Whether ``path`` is what a demo wrote (its metrics.json, model/ and project/): what --overwrite replaces."""
    return (path / METRICS_FILE).is_file() and (path / "model").is_dir() and (path / "project").is_dir()


def add_parser(sub) -> None:
    de = sub.add_parser("demo", help="train on synthetic lazy labels and score on held-out images")
    de.add_argument("--out", default="lazylabels-demo", metavar="DIR",
                    help="folder for the project, model and figure (default ./lazylabels-demo)")
    de.add_argument("--steps", type=positive, default=None,
                    help="training steps (default: the demo's tuned value)")
    de.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default auto)")
    de.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    de.add_argument("--quiet", action="store_true", help="no progress bar")
    de.set_defaults(run=cmd_demo)


def cmd_demo(args) -> int:
    report = run_demo(args.out, steps=args.steps, device=args.device, overwrite=args.overwrite,
                      quiet=args.quiet)
    print(report.text())
    return 0
