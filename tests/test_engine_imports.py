"""Everything but the dock widgets is usable without Qt or napari.

The modules are discovered (every module of the package outside
``plugin.widgets``), not listed by hand, so a new module is checked too. The
napari reader, writer and sample data are among them: opening a project file
must not load Qt.
"""

import pkgutil
import subprocess
import sys

import napari_lazylabels

GUI = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy", "superqt")
WIDGETS = "napari_lazylabels.plugin.widgets"


def qt_free_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(napari_lazylabels.__path__, "napari_lazylabels.")]
    return sorted(n for n in names if n != WIDGETS and not n.startswith(WIDGETS + "."))


def test_discovery_finds_the_layers_and_the_napari_entry_points():
    found = qt_free_modules()
    for expected in ("napari_lazylabels.engine.training.trainer", "napari_lazylabels.io.ome_zarr",
                     "napari_lazylabels.recipes.train", "napari_lazylabels.cli.main",
                     "napari_lazylabels.plugin.reader", "napari_lazylabels.plugin.writer",
                     "napari_lazylabels.plugin.sample_data"):
        assert expected in found
    assert not any(n.startswith(WIDGETS) for n in found)


def test_no_module_outside_the_widgets_imports_qt_napari_or_the_widgets():
    modules = qt_free_modules()
    code = ("import sys\n"
            + "".join(f"import {m}\n" for m in modules)
            + f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {GUI!r} "
              f"or m == {WIDGETS!r} or m.startswith({WIDGETS + '.'!r}))\n"
              "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"GUI modules imported: {out.stdout}"
