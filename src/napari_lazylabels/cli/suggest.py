"""``lazylabels suggest``: the k boxes where one more label would help a model most
(:mod:`napari_lazylabels.engine.suggest`), as a CSV file."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from ..engine.device import DEVICE_CHOICES
from ..engine.suggest import DEFAULT_BOX, DEFAULT_K
from .arguments import whole_number


def add_parser(sub) -> None:
    su = sub.add_parser(
        "suggest", help="where to annotate next: the k boxes where labels would help the model most",
        description="Rank boxes over every image of a manifest by the model's uncertainty (its foreground "
                    "entropy and the disagreement of flipped passes), the disagreement of its seeds and "
                    "foreground heads, and the distance to the nearest label; write the k best, each with "
                    "its reason, as a CSV file (rank,image,index,y,x,height,width,score,reason,...).")
    su.add_argument("--model", required=True, metavar="MODEL_DIR", help="a trained model folder")
    su.add_argument("--data", required=True, metavar="MANIFEST", help="CSV manifest or project folder (as train)")
    su.add_argument("--out", required=True, metavar="BOXES.csv", help="the CSV file to write")
    su.add_argument("--k", type=whole_number, default=DEFAULT_K, help=f"how many boxes (default {DEFAULT_K})")
    su.add_argument("--box", type=whole_number, default=DEFAULT_BOX, metavar="PX",
                    help=f"the box edge in pixels (default {DEFAULT_BOX})")
    su.add_argument("--passes", type=int, choices=(2, 4), default=2,
                    help="flipped passes of the network per image (default 2)")
    su.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default auto)")
    su.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    su.set_defaults(run=cmd_suggest)


def cmd_suggest(args) -> int:
    from ..engine.suggest import COLUMNS, check_request, suggest
    from ..io.atomic import atomic_write_file, check_writable
    from ..io.manifest import load_manifest
    from ..io.modelio import load_model

    out = check_writable(Path(args.out), args.overwrite)
    model = load_model(args.model)
    items = load_manifest(args.data, max(1, len(model.class_names)))
    check_request(model, items, args.k, args.box)
    boxes = suggest(model, items, args.k, args.box, device=args.device, passes=args.passes)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
            w.writeheader()
            w.writerows(b.to_row() for b in boxes)

    atomic_write_file(out, write, overwrite=args.overwrite)
    for b in boxes:
        print(f"{b.rank}. {b.image} y {b.y} x {b.x} ({b.height} x {b.width} px): {b.reason} "
              f"(score {b.score:.3f})", file=sys.stderr)
    print(f"{len(boxes)} boxes written to {out}")
    return 0
