"""OME-Zarr stores that were damaged or edited are refused, not read as zeros (issue 9, items 8 and 12)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from napari_lazylabels.cli import main
from napari_lazylabels.errors import ImageReadError
from napari_lazylabels.io import memory
from napari_lazylabels.io.ome_zarr import read_image_store, write_image_store
from napari_lazylabels.io.project import write_project

from test_cli import TRAIN, one_line_error

RNG = np.random.default_rng(5)
Y, X = 600, 540                       # 2 x 2 chunks of 512


def _store(tmp_path, name="a.ome.zarr"):
    image = RNG.integers(1, 255, (Y, X)).astype(np.uint8)
    blobs = np.zeros((Y, X), np.uint8)
    blobs[10:20, 10:20] = 1
    blobs[550:560, 500:510] = 1
    return write_image_store(tmp_path / name, image, {"detection": blobs}), image


def _chunks(array_dir):
    return sorted(p for p in (array_dir / "c").rglob("*") if p.is_file())


@pytest.mark.parametrize("array", ["0", "labels/detection/0"])
def test_a_missing_chunk_is_an_error_naming_store_and_array(tmp_path, array):
    path, _ = _store(tmp_path)
    _chunks(path / array)[-1].unlink()
    with pytest.raises(ImageReadError) as err:
        read_image_store(path)
    text = str(err.value)
    assert text.startswith(str(path)) and repr(array) in text and "lost 1 of the" in text, text


def test_chunks_never_written_are_not_missing(tmp_path):
    """Zarr does not store chunks that hold only zeros: those read as zeros, as written."""
    path, image = _store(tmp_path)
    assert len(_chunks(path / "labels" / "detection" / "0")) == 2          # of 4: two are all zero
    store = read_image_store(path)
    np.testing.assert_array_equal(store.image, image)
    assert store.labels["detection"].sum() == 200


def test_an_edited_shape_is_an_error(tmp_path):
    path, _ = _store(tmp_path)
    meta_file = path / "labels" / "detection" / "0" / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["shape"] = [Y + 100, X]                                         # used to pad with zeros
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ImageReadError, match=r"'labels/detection/0' is \(700, 540\) uint8, it was written as "
                                             r"\(600, 540\) uint8"):
        read_image_store(path)


def test_stores_of_other_tools_are_read_as_before(tmp_path):
    path, image = _store(tmp_path)
    meta_file = path / "zarr.json"
    meta = json.loads(meta_file.read_text())
    del meta["attributes"]["lazylabels"]["arrays"]                       # no record: nothing to check
    meta_file.write_text(json.dumps(meta))
    _chunks(path / "0")[-1].unlink()
    assert read_image_store(path).image.shape == image.shape


def test_train_refuses_a_project_with_a_missing_chunk(tmp_path, capsys):
    image = RNG.random((Y, X)).astype(np.float32)
    blobs = np.zeros((Y, X), np.uint8)
    blobs[100:110, 100:110] = 1
    project = write_project(tmp_path / "project", [{"image": image, "labels": {"detection": blobs}, "name": "a"}])
    shutil.rmtree(project / "a.ome.zarr" / "labels" / "detection" / "0" / "c")
    code = main(["train", "--data", str(project), "--model", str(tmp_path / "m")] + TRAIN)
    one_line_error(capsys, code, "a.ome.zarr", "labels/detection/0", "lost 1 of the 1 chunks")
    assert not (tmp_path / "m").exists()


def _huge_foreign_store(tmp_path):
    import zarr
    from zarr.storage import LocalStore
    path = tmp_path / "huge.ome.zarr"
    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    root = zarr.open_group(LocalStore(path), mode="w", zarr_format=3, attributes={"ome": {
        "version": "0.5", "multiscales": [{"axes": axes, "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 1.0]}]}]}]}})
    root.create_array("0", shape=(200_000, 200_000), dtype="float64", chunks=(4096, 4096))
    return path


def test_a_store_too_big_for_memory_is_one_line(tmp_path):
    """`read_lazylabels` (the napari reader) used to raise a raw MemoryError."""
    from napari_lazylabels.plugin.reader import read_lazylabels
    path = _huge_foreign_store(tmp_path)
    with pytest.raises(ImageReadError, match=r"huge.ome.zarr: array 'image' \(200000 x 200000 float64\) needs "
                                             r"298.0 GiB of memory, .* GiB are available"):
        read_lazylabels(str(path))


def test_the_memory_check_counts_every_array(tmp_path, monkeypatch):
    path, image = _store(tmp_path)
    monkeypatch.setattr(memory, "available_memory", lambda: image.nbytes + 10)
    with pytest.raises(ImageReadError, match="array 'labels/detection'"):
        read_image_store(path)
