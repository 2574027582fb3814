"""The engine is usable without Qt or napari."""

import subprocess
import sys

ENGINE = ["annotations", "atomic", "cli", "config", "demo", "device", "errors", "figures", "grabcut",
          "imageio", "inference", "instances", "losses", "manifest", "metrics", "model", "modelio",
          "normalize", "ome_zarr", "output", "pipeline", "progress", "recursive", "sampling", "simulate", "synthetic",
          "tasks", "training"]


def test_engine_imports_neither_qt_nor_napari():
    code = ("import sys\n"
            + "".join(f"import napari_lazylabels.{m}\n" for m in ENGINE)
            + "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
              "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui', 'vispy'))\n"
              "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine imported GUI modules: {out.stdout}"
