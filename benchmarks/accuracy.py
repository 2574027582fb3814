"""``python benchmarks/accuracy.py ...``: the benchmarks' entry point (benchmarks/cli.py), runnable as a
script from the checkout (with the package napari_lazylabels installed or on PYTHONPATH)."""

import sys
from pathlib import Path

if __name__ == "__main__":
    # the checkout's root instead of this folder: the package is `benchmarks`, and this folder's
    # module names must not hide installed ones
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from benchmarks.cli import main

    raise SystemExit(main())
