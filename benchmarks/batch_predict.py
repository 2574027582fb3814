"""Batch, out-of-core and cluster prediction: time, peak memory, and that every mode gives the same result.

    python benchmarks/batch_predict.py [--preset tiny] [--images 20] [--sizes 4096 20000] [--work DIR]

Everything runs through the ``lazylabels predict`` command, each case in a fresh subprocess (so a time
includes the imports and the model load, as a user sees it, and a peak is the case's own: ``VmHWM`` of
``/proc/self/status``, the peak resident set size, read by the process at its end). It prints JSON:

  1. ``batch``: one call on ``--images`` 256 x 256 images (``--image DIR --outdir``, the model loaded
     once) against as many single calls (``--image X --out Y``); the outputs must be identical;
  2. ``memory``: the peak memory of out-of-core prediction (``--out-of-core``, 1024 px blocks) of each
     ``--sizes`` square ``.npy`` input (memory-mapped; the image is a synthetic 1024 x 1024 tile repeated),
     and of in-memory prediction (``--in-memory``) of the smallest (up to 8192 px), for comparison;
  3. ``cluster``: out-of-core prediction of the smallest size in one process against a dask
     ``LocalCluster`` of 2 worker processes (``--workers 2``): wall times and their ratio;
  4. ``identical``: whether the instances of in-memory, out-of-core and cluster prediction of the
     smallest size are the same up to relabelling.

The model is a ``--preset`` network trained for ``--steps`` steps on synthetic data (the figures are
about the machinery, not the accuracy; memory is bounded by the block size whatever the network).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.synthetic import make_image, make_lazy_dataset
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

CHILD = """
import sys
from napari_lazylabels.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
print("PEAK_KB", peak, file=sys.stderr)
sys.exit(code)
"""


def predict(model: Path, *args) -> tuple[float, float]:
    """Run ``lazylabels predict`` in a subprocess; (wall seconds, peak resident MB)."""
    cmd = [sys.executable, "-c", CHILD, "predict", "--model", str(model), "--device", "cpu", "--quiet",
           *map(str, args)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[3:])} failed:\n{proc.stderr[-2000:]}")
    peak = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KB"))
    return seconds, peak / 1024


def train_model(folder: Path, network: str, steps: int) -> Path:
    items, _ = make_lazy_dataset(6, seed=3, shape=(96, 96), strong_fraction=0.3)
    run = TrainingRun(TrainingPlan(items, network=preset(network), model_dir=folder,
                                   config=TrainConfig(steps=steps, patch_size=64, batch_size=4, device="cpu")))
    for _ in run.run():
        pass
    return folder


def tiled_npy(path: Path, size: int) -> Path:
    """A size x size uint16 .npy written a band at a time (never whole in memory)."""
    tile = make_image(7, (1024, 1024), density=0.35, touching=0.4).image
    tile = np.clip(tile / max(float(tile.max()), 1e-9) * 60000, 0, 65535).astype(np.uint16)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(size, size))
    reps = -(-size // 1024)
    band = np.tile(tile, (1, reps))[:, :size]
    for y in range(0, size, 1024):
        out[y:y + 1024] = band[:min(1024, size - y)]
    out.flush()
    del out
    return path


def same_up_to_relabelling(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or not np.array_equal(a == 0, b == 0):
        return False
    fg = a != 0
    pairs = np.unique(np.stack([a[fg], b[fg]]).astype(np.int64), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 20000])
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["batch", "memory", "cluster"])
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="lazylabels_batch_"))
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model"
    if not model.exists():
        train_model(model, args.preset, args.steps)
    report: dict = {"preset": args.preset, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                    "load_average_at_start": os.getloadavg()}

    if "batch" not in args.skip:
        raw, many, single = work / "raw", work / "out_batch", work / "out_single"
        for d in (raw, many, single):
            d.mkdir(exist_ok=True)
        for i in range(args.images):
            tifffile.imwrite(raw / f"img{i:02d}.tif", make_image(100 + i, (256, 256)).image)
        batch_s, _ = predict(model, "--image", raw, "--outdir", many, "--overwrite")
        single_s = sum(predict(model, "--image", p, "--out", single / f"{p.stem}_labels.tif", "--overwrite")[0]
                       for p in sorted(raw.glob("*.tif")))
        same = all(np.array_equal(tifffile.imread(many / p.name), tifffile.imread(p))
                   for p in sorted(single.glob("*.tif")))
        report["batch"] = {"images": args.images, "one_call_s": round(batch_s, 1),
                           "single_calls_s": round(single_s, 1), "speed_up": round(single_s / batch_s, 2),
                           "identical": same}
        print(json.dumps(report["batch"]), file=sys.stderr)

    sizes = sorted(args.sizes)
    small = sizes[0]
    outputs: dict[str, Path] = {}
    if "memory" not in args.skip:
        report["memory"] = {}
        for size in sizes:
            src = tiled_npy(work / f"image_{size}.npy", size)
            out = work / f"blocks_{size}.tif"
            seconds, peak = predict(model, "--image", src, "--out", out, "--out-of-core", "--overwrite")
            report["memory"][f"out-of-core {size}"] = {"peak_mb": round(peak), "s": round(seconds)}
            print(json.dumps({size: report["memory"][f"out-of-core {size}"]}), file=sys.stderr)
            if size == small:
                outputs["out-of-core"] = out
    if "memory" not in args.skip and small <= 8192:      # read whole: only an image that fits
        out = work / f"memory_{small}.tif"
        seconds, peak = predict(model, "--image", work / f"image_{small}.npy", "--out", out, "--in-memory",
                                "--overwrite")
        report["memory"][f"in-memory {small}"] = {"peak_mb": round(peak), "s": round(seconds)}
        outputs["in-memory"] = out
    if "cluster" not in args.skip:
        src = work / f"image_{small}.npy"
        if not src.exists():
            tiled_npy(src, small)
        one = work / f"one_{small}.tif"
        one_s, _ = predict(model, "--image", src, "--out", one, "--out-of-core", "--overwrite")
        out = work / f"cluster_{small}.tif"
        cluster_s, _ = predict(model, "--image", src, "--out", out, "--workers", "2", "--overwrite")
        report["cluster"] = {"size": small, "one_process_s": round(one_s, 1), "local_cluster_2_s": round(cluster_s, 1),
                             "throughput_ratio": round(one_s / cluster_s, 2)}
        outputs.setdefault("out-of-core", one)
        outputs["cluster"] = out
    if len(outputs) > 1:
        ref_name, ref = next(iter(outputs.items()))
        ref_labels = tifffile.imread(ref)
        report["identical"] = {f"{name} vs {ref_name}": same_up_to_relabelling(tifffile.imread(p), ref_labels)
                               for name, p in outputs.items() if name != ref_name}
        report["objects"] = int(len(np.unique(ref_labels)) - 1)
    report["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
