"""``lazylabels predict``: segment images with a trained model (one, or a batch; in memory or out of core)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from ..engine.device import DEVICE_CHOICES
from ..engine.postprocess.settings import RESCALE_RANGE
from ..engine.prediction_spec import BLOCK_SIZE, HALO, TILE_SIZE
from ..errors import SettingsError
from .arguments import number, pixel_size_option, positive, postprocess_options, whole_number
from .console import EXIT_USER_ERROR, progress_bar
from .options import options_from


def add_parser(sub) -> None:
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
    pr.add_argument("--block-size", type=positive, default=BLOCK_SIZE, metavar="PX",
                    help=f"block edge of the out-of-core prediction; memory grows with its square "
                         f"(default {BLOCK_SIZE})")
    pr.add_argument("--halo", type=whole_number, default=HALO, metavar="PX",
                    help=f"context around each block for the instances; objects larger than it are "
                         f"post-processed whole, later (default {HALO})")
    cluster = pr.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=positive, default=None, metavar="N",
                         help="predict on a dask LocalCluster of N worker processes on this machine "
                              "(needs the distributed extra)")
    cluster.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="predict on a running dask cluster (tcp://host:8786, e.g. one dask-jobqueue started); "
                              "its workers must see the image and the output")
    pr.add_argument("--pixel-size", type=pixel_size_option, default=None, metavar="UM",
                    help="the image's pixel size in micrometres (overrides the file's)")
    pr.add_argument("--rescale", type=number, default=None, metavar="F",
                    help=f"resize the image by F ({RESCALE_RANGE[0]:g}..{RESCALE_RANGE[1]:g}) before predicting, "
                         f"the results back: 2 when the objects look half as large as those trained on "
                         f"(default: the model's; else image pixel size / training pixel size when both are "
                         f"known, else 1)")
    pr.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default auto)")
    pr.add_argument("--tile-size", type=positive, default=TILE_SIZE,
                    help=f"largest tile edge in pixels; lower it if memory runs out (default {TILE_SIZE})")
    pr.add_argument("--flips", action="store_true",
                    help="test-time augmentation: average the probabilities of the image and its three flips "
                         "(four times the prediction time; default: the model's, off)")
    pr.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    postprocess_options(pr, "default: the model's, see lazylabels info")
    pr.set_defaults(run=cmd_predict)


def postprocess_from(args, model):
    """The model's post-processing with the options given on the command line."""
    from ..engine.postprocess.settings import InstanceParams
    instances = options_from(args, InstanceParams, base=model.postprocess.instances)
    rescale = model.postprocess.rescale if args.rescale is None else args.rescale
    return replace(model.postprocess, instances=instances, rescale=rescale,
                   flips=model.postprocess.flips or bool(getattr(args, "flips", False)))


def cmd_predict(args) -> int:
    from ..engine.device import resolve_device
    from ..engine.prediction_spec import PredictionSpec
    from ..io.inputs import expand_inputs
    from ..io.modelio import load_model
    from ..io.output_paths import DEFAULT_OUTNAME, check_outname, plan_outputs, single_output
    from ..recipes.predict import PredictOptions

    if args.outdir is None and (args.outname is not None or args.skip_existing):
        raise SettingsError(f"--{'outname' if args.outname is not None else 'skip-existing'} goes with --outdir")
    mode = "memory" if args.in_memory else "blocks" if args.out_of_core else "auto"
    options = PredictOptions(pixel_size=args.pixel_size, overwrite=args.overwrite, mode=mode, workers=args.workers,
                             scheduler=args.scheduler)
    images = expand_inputs(args.image)
    skipped: list = []
    if args.out is not None:
        pairs = single_output(images, Path(args.out), args.overwrite)
    else:
        template = check_outname(args.outname or DEFAULT_OUTNAME)
        pairs, skipped = plan_outputs(images, Path(args.outdir), template, overwrite=args.overwrite,
                                      skip_existing=args.skip_existing)
    device = resolve_device(args.device)
    model = load_model(args.model, device=device)
    spec = PredictionSpec.resolve(model, device=device, postprocess=postprocess_from(args, model),
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
        line += f"; {len(failed)} failed: " + "; ".join(f"{r.image.name}: {r.reason}" for r in failed)
    print(line)
    return EXIT_USER_ERROR if failed else 0
