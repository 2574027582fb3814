"""Peak memory of preparing a training set: the manifest read, checked and made into a run's trainer.

    python benchmarks/prepare_memory.py MANIFEST [--classes K]

MANIFEST is a CSV manifest or a project folder (e.g. one ``benchmarks/make_real_manifest.py`` wrote
for ../shared/data/phase). Python's ``tracemalloc`` counts every allocation, NumPy's arrays included,
from reading the manifest (``load_manifest``) to a built ``TrainingRun`` (regimes, targets, the
trainer's sampler with its stacks; the ``tiny`` network): the memory held after each and the peak.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.io.manifest import load_manifest
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

MIB = 2 ** 20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest", help="a CSV manifest or a project folder")
    ap.add_argument("--classes", type=int, default=1, help="object classes K")
    args = ap.parse_args(argv)
    tracemalloc.start()
    start = time.perf_counter()
    items = load_manifest(args.manifest, args.classes)
    loaded, load_peak = tracemalloc.get_traced_memory()
    TrainingRun(TrainingPlan(items, class_names=[f"class {i}" for i in range(1, args.classes + 1)],
                             network=preset("tiny"), config=TrainConfig(steps=1, device="cpu")))
    held, peak = tracemalloc.get_traced_memory()
    print(f"{len(items)} images; load_manifest: {loaded / MIB:.1f} MiB held, peak {load_peak / MIB:.1f} MiB; "
          f"with the run built: {held / MIB:.1f} MiB held, peak {peak / MIB:.1f} MiB "
          f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
