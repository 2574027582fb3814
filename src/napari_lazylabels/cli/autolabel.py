"""``lazylabels autolabel``: machine-made points and a foreground mask from an image.

Points by Laplacian-of-Gaussian blob detection on one channel, the mask by a
threshold of another (the same by default); see
:mod:`napari_lazylabels.engine.autolabel`. The outputs are a points CSV
(``y,x``) and a mask TIFF (uint16, 1 on the foreground), the two label
columns of the points + mask regime: ``lazylabels train`` takes them like any
other labels, and napari opens them for review.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine.autolabel import AutolabelConfig
from ..errors import LazyLabelsError
from .arguments import pixel_size_option
from .options import add_options, options_from


def _channel(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a channel number (0, 1, ...)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: channels are numbered from 0")
    return value


def add_parser(sub) -> None:
    au = sub.add_parser(
        "autolabel", help="machine-made points (blob detection) and a foreground mask (a threshold) for an image",
        description="Make the labels of the points + mask regime from the image itself: one point per "
                    "Laplacian-of-Gaussian blob of the object size (e.g. on a nuclear stain) and a foreground "
                    "mask by a threshold (e.g. of a cell-body channel), smoothed, small pieces and holes "
                    "removed. Review them in napari, or train on them as they are.")
    au.add_argument("--image", required=True, help="a 2D image, grayscale or with channels (.tif/.png/.npy ...)")
    au.add_argument("--points", required=True, metavar="OUT.csv", help="the points to write (a y,x CSV)")
    au.add_argument("--foreground", required=True, metavar="OUT.tif",
                    help="the foreground mask to write (TIFF, 1 on the foreground, 0 elsewhere)")
    au.add_argument("--channel", type=_channel, default=None, metavar="C",
                    help="the channel of both the points and the mask (default: the mean of the channels)")
    au.add_argument("--points-channel", type=_channel, default=None, metavar="C",
                    help="the channel the points are detected in (e.g. the nuclear stain; default --channel)")
    au.add_argument("--mask-channel", type=_channel, default=None, metavar="C",
                    help="the channel thresholded for the mask (e.g. a cytoplasm stain; default --channel)")
    au.add_argument("--pixel-size", type=pixel_size_option, default=None, metavar="UM",
                    help="the image's pixel size in micrometres, for --size-unit um (overrides the file's)")
    au.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    st = au.add_argument_group("self-training (optional)")
    st.add_argument("--self-train", default=None, metavar="FOLDER",
                    help="then train on the labels in rounds, each round's model in FOLDER/round_XX, the "
                         "model's confident foreground and objects replacing the labels between rounds; a rerun "
                         "continues after the last finished round; the end compares the model with the "
                         "classical pipeline (threshold + distance watershed) and warns when it is not better")
    st.add_argument("--rounds", type=int, default=3, metavar="N", help="at most N rounds (default 3)")
    st.add_argument("--steps", type=int, default=300, metavar="S", help="training steps of each round (default 300)")
    st.add_argument("--preset", default="cpu", help="the network preset of each round (default cpu)")
    add_options(au.add_argument_group("labels"), AutolabelConfig)
    au.set_defaults(run=cmd_autolabel)


def cmd_autolabel(args) -> int:
    from ..engine.autolabel import autolabel
    from ..io.atomic import check_can_write, check_writable
    from ..io.image_file import stack_refused
    from ..io.imageio import read_image_file
    from ..io.label_tiff import write_labels_tiff
    from ..io.points import write_points_csv

    config = options_from(args, AutolabelConfig)
    points_out, mask_out = Path(args.points), Path(args.foreground)
    if not points_out.name.lower().endswith(".csv"):
        raise LazyLabelsError("--points must end in .csv", source=str(points_out))
    if not mask_out.name.lower().endswith((".tif", ".tiff")):
        raise LazyLabelsError("--foreground must end in .tif or .tiff", source=str(mask_out))
    if points_out.resolve() == mask_out.resolve():
        raise LazyLabelsError("--points and --foreground are the same file", source=str(points_out))
    for out in (points_out, mask_out):
        check_writable(out, args.overwrite)
        check_can_write(out)
    image = read_image_file(args.image)
    if image.is_stack:
        raise stack_refused(image)
    pixel_size = args.pixel_size or image.pixel_size
    um = None if pixel_size is None else sum(pixel_size.micrometers()) / 2.0
    pick = (lambda c: args.channel if c is None else c)
    labels = autolabel(image.data, config, points_channel=pick(args.points_channel),
                       mask_channel=pick(args.mask_channel), micrometers_per_pixel=um, source=str(args.image))
    write_labels_tiff(mask_out, labels.foreground, overwrite=args.overwrite, pixel_size=pixel_size)
    write_points_csv(points_out, labels.points, overwrite=args.overwrite)
    print(f"{args.image}: {labels.describe()}; written to {points_out} and {mask_out}")
    for concern in labels.concerns():
        print(f"warning: {args.image}: {concern}", file=sys.stderr)
    if args.self_train:
        _self_train(args, image, labels)
    return 0


def _self_train(args, image, labels) -> None:
    from ..engine.annotations import LazyAnnotations
    from ..engine.config import TrainConfig, preset
    from ..engine.regimes import registry
    from ..recipes.selftrain import self_train
    from ..recipes.train import TrainingPlan
    if args.rounds < 1 or args.steps < 1:
        raise LazyLabelsError("--rounds and --steps must be at least 1")
    pts_key, mask_key = (i.key for i in registry.machine_label_inputs())
    item = LazyAnnotations(image.data, labels={pts_key: labels.points, mask_key: labels.foreground},
                           roi=labels.trusted(), name=Path(args.image).stem)
    plan = TrainingPlan([item], network=preset(args.preset), config=TrainConfig(steps=args.steps, device="cpu"))
    result = self_train([item], plan, args.self_train, rounds=args.rounds)
    print(f"self-training: {len(result.rounds)} rounds, label change per round "
          f"{', '.join(f'{c:.3f}' for c in result.changes)}; the last model: {result.model_dir}")
