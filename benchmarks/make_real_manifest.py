"""Write a training manifest for real frames, with lazy labels simulated from ground truth.

    python benchmarks/make_real_manifest.py ../shared/data/hela OUT_DIR [--strong t00] [--test t19]

For every ``*_image.tif`` with a ``*_labels.tif`` beside it (instance ground
truth) it writes blobs and interface scribbles (and exact masks for the frames
named by ``--strong``) into OUT_DIR as TIFFs, plus ``manifest.csv``. Frames
named by ``--test`` are left out of the manifest (split by frame) and listed
in ``test.txt`` for scoring.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tifffile

from napari_lazylabels.io.manifest import write_manifest
from napari_lazylabels.engine.simulate import simulate_lazy_labels


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="folder with *_image.tif and *_labels.tif")
    ap.add_argument("out", type=Path, help="output folder (created)")
    ap.add_argument("--strong", nargs="*", default=None,
                    help="frame tags (e.g. t00) that get exact masks (default: the first frame)")
    ap.add_argument("--test", nargs="*", default=None, help="frame tags held out (default: the last frame)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-gap", type=int, default=0,
                    help="objects this many px apart count as touching for the scribbles "
                         "(real ground truth often leaves a gap between neighbours; try 4 for E. coli)")
    args = ap.parse_args(argv)
    images = sorted(args.data.glob("*_image.tif"))
    tags = [p.name[: -len("_image.tif")] for p in images]
    strong = args.strong if args.strong is not None else [tags[0].split("_")[-1]]
    test = args.test if args.test is not None else [tags[-1].split("_")[-1]]
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    rows, held_out = [], []
    for img_path, tag in zip(images, tags):
        frame = tag.split("_")[-1]
        if frame in test:
            held_out.append(str(img_path.resolve()))
            continue
        truth = tifffile.imread(args.data / f"{tag}_labels.tif")
        lazy = simulate_lazy_labels(truth, rng=rng, strong=frame in strong, max_gap=args.max_gap)
        row = {"image": img_path.resolve()}
        for key, lab in lazy.items():
            if lab is not None:
                name = f"{tag}_{key}.tif"
                tifffile.imwrite(args.out / name, lab, compression="zlib")
                row[key] = name
        rows.append(row)
    write_manifest(args.out / "manifest.csv", rows, overwrite=True)
    (args.out / "test.txt").write_text("\n".join(held_out) + "\n")
    print(f"{len(rows)} training frames ({len(strong)} with exact masks), {len(held_out)} held out -> "
          f"{args.out / 'manifest.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
