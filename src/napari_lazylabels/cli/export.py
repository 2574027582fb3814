"""``lazylabels export``: a model folder as a bioimage.io model package."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    ex = sub.add_parser("export", help="write a model as a bioimage.io model package (.zip)",
                        description="Write a model as a bioimage.io model package (spec 0.5): weights as "
                                    "pytorch_state_dict and TorchScript, axes, normalisation, test input and "
                                    "output, cover image, provenance and citations. Fiji (deepImageJ), "
                                    "QuPath, ilastik and the bioimage.io tools run it; lazylabels predict "
                                    "reads it back. Needs the bioimageio extra "
                                    "(pip install \"napari-lazylabels[bioimageio]\").")
    ex.add_argument("--model", required=True, metavar="MODEL_DIR", help="a model folder written by train")
    ex.add_argument("--out", required=True, metavar="OUT.zip", help="the package to write (.zip)")
    ex.add_argument("--name", default=None,
                    help="the model's name in the package: 5 to 128 letters, digits, spaces or _+-() (default: "
                         "made from the folder's name)")
    ex.add_argument("--test-image", default=None, metavar="IMAGE",
                    help="a 2D image for the package's test input and cover (default: a synthetic one)")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    ex.set_defaults(run=cmd_export)


def cmd_export(args) -> int:
    from ..io.bioimageio import check_package_name, export_bioimageio, package_name
    from ..io.imageio import load_image
    from ..io.modelio import load_model

    name = check_package_name(args.name) if args.name is not None else package_name(Path(args.model).resolve().name)
    model = load_model(args.model)
    test_image = load_image(args.test_image) if args.test_image else None
    out = export_bioimageio(model, args.out, name=name, test_image=test_image, overwrite=args.overwrite)
    print(f"bioimage.io package written to {out}")
    return 0
