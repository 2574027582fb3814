"""What PyPI and the napari hub see: the licence shipped, the metadata, README images that work off GitHub,
napari and Qt only in an extra, and no dependency that nothing uses."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src").rglob("*.py"))

#: distribution name -> the module it is imported as
IMPORT_NAMES = {"scikit-image": "skimage", "opencv-python-headless": "cv2"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0]


def test_licence_and_metadata():
    assert PROJECT["license"] == "BSD-3-Clause" and PROJECT["license-files"] == ["LICENSE"]
    assert "BSD 3-Clause License" in (ROOT / "LICENSE").read_text()
    assert PROJECT["authors"] and PROJECT["requires-python"] == ">=3.11"
    assert {"Homepage", "Repository", "Issues"} <= set(PROJECT["urls"])
    assert "Framework :: napari" in PROJECT["classifiers"]
    assert not any(c.startswith("License ::") for c in PROJECT["classifiers"])   # PEP 639: the expression only


def test_readme_images_have_absolute_urls():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (ROOT / "README.md").read_text())
    assert images and all(i.startswith("https://raw.githubusercontent.com/") for i in images)


def test_the_core_install_is_headless():
    core = {_name(r).lower() for r in PROJECT["dependencies"]}
    assert not core & {"napari", "magicgui", "qtpy", "pyqt6", "pyqt5", "pyside6"}
    assert {"napari", "magicgui", "qtpy"} <= {_name(r).lower() for r in PROJECT["optional-dependencies"]["napari"]}


@pytest.mark.parametrize("requirement", PROJECT["dependencies"])
def test_every_dependency_is_used(requirement):
    name = _name(requirement)
    if name == "imagecodecs":       # tifffile's codecs: used through tifffile, so check that it decodes LZW
        import numpy as np
        import tifffile
        from io import BytesIO
        buf = BytesIO()
        tifffile.imwrite(buf, np.arange(64, dtype=np.uint8).reshape(8, 8), compression="lzw")
        assert tifffile.imread(BytesIO(buf.getvalue())).sum() == np.arange(64).sum()
        return
    module = IMPORT_NAMES.get(name, name.replace("-", "_"))
    assert re.search(rf"^\s*(import|from) {re.escape(module)}\b", SOURCE, re.MULTILINE), f"nothing imports {module}"
