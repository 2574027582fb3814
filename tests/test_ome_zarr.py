"""OME-Zarr image stores and projects: exact round trips, NGFF layout, safe writes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from napari_lazylabels.io import ome_zarr
from napari_lazylabels.errors import ImageReadError, OutputExistsError
from napari_lazylabels.io.ome_zarr import ImageStore, read_image_store, write_image_store
from napari_lazylabels.io.project import (add_to_project, annotations_to_store, project_to_annotations, read_project,
                                          read_project_info, write_project)

RNG = np.random.default_rng(1)
Y, X = 24, 40


def _image(dtype, channels=None):
    shape = (Y, X) if channels is None else (Y, X, channels)
    if np.issubdtype(dtype, np.floating):
        return RNG.standard_normal(shape).astype(dtype)
    return RNG.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


def _labels():
    return {
        "detection": RNG.integers(0, 3, (Y, X)).astype(np.uint8),
        "segmentation": RNG.integers(0, 3, (Y, X)).astype(np.int32),
        "instances": RNG.integers(0, 2**32 - 1, (Y, X), dtype=np.uint32),
        "roi": RNG.random((Y, X)) > 0.3,
    }


def _probs():
    p = RNG.random((3, Y, X)).astype(np.float32)
    return {"detection": p / p.sum(0), "separation": RNG.random((2, Y, X)).astype(np.float32)}


def _assert_same(a: np.ndarray, b: np.ndarray):
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a, b, equal_nan=np.issubdtype(a.dtype, np.floating))


def _read_attrs(path):
    return json.loads((path / "zarr.json").read_text())["attributes"]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_store_round_trip_is_exact(tmp_path, dtype, channels):
    image, labels, probs = _image(dtype, channels), _labels(), _probs()
    meta = {"annotated": {"detection": True}, "class_names": ["cell"], "model": {"id": "abc"}}
    path = write_image_store(tmp_path / "img.ome.zarr", image, labels, probs, metadata=meta)
    s = read_image_store(path)
    _assert_same(s.image, image)
    assert list(s.labels) == list(labels) and list(s.probabilities) == list(probs)
    for k in labels:
        _assert_same(s.labels[k], labels[k])
    for k in probs:
        _assert_same(s.probabilities[k], probs[k])
    assert s.name == "img" and s.metadata == meta and s.path == str(path)


def test_store_layout_follows_ngff_05(tmp_path):
    image = _image(np.uint16, 2)
    path = write_image_store(tmp_path / "a.ome.zarr", image, _labels(), _probs(), name="cells A")
    root = _read_attrs(path)
    assert root["ome"]["version"] == "0.5"
    ms = root["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "y", "x"]
    assert ms["axes"][0]["type"] == "channel" and ms["name"] == "cells A"
    assert ms["datasets"][0]["path"] == "0"
    assert ms["datasets"][0]["coordinateTransformations"] == [{"type": "scale", "scale": [1.0, 1.0, 1.0]}]
    arr = json.loads((path / "0" / "zarr.json").read_text())
    assert arr["zarr_format"] == 3 and arr["shape"] == [2, Y, X] and arr["dimension_names"] == ["c", "y", "x"]
    assert _read_attrs(path / "labels")["ome"] == {"version": "0.5",
                                                   "labels": ["detection", "segmentation", "instances", "roi"]}
    lab = _read_attrs(path / "labels" / "detection")["ome"]
    assert lab["image-label"]["source"] == {"image": "../../"}
    assert [c["label-value"] for c in lab["image-label"]["colors"]] == [1, 2]
    assert [a["name"] for a in lab["multiscales"][0]["axes"]] == ["y", "x"]
    prob = _read_attrs(path / "probabilities" / "detection")["ome"]["multiscales"][0]
    assert [a["name"] for a in prob["axes"]] == ["c", "y", "x"]
    assert "probabilities" not in _read_attrs(path / "labels")["ome"]["labels"]
    assert read_image_store(path).name == "cells A"


def test_large_image_is_chunked(tmp_path):
    image = np.zeros((1100, 600), np.uint8)
    path = write_image_store(tmp_path / "big.ome.zarr", image)
    arr = json.loads((path / "0" / "zarr.json").read_text())
    assert arr["chunk_grid"]["configuration"]["chunk_shape"] == [512, 512]
    assert read_image_store(path).labels == {}


def test_existing_store_is_not_overwritten(tmp_path):
    path = tmp_path / "a.ome.zarr"
    first = _image(np.uint8)
    write_image_store(path, first, {"detection": np.ones((Y, X), np.uint8)})
    with pytest.raises(OutputExistsError, match="a.ome.zarr: .*pass --overwrite"):
        write_image_store(path, _image(np.uint8))
    s = read_image_store(path)
    _assert_same(s.image, first)
    assert list(s.labels) == ["detection"]

    second = _image(np.float32, 3)
    write_image_store(path, second, overwrite=True)
    s = read_image_store(path)
    _assert_same(s.image, second)
    assert s.labels == {} and not (path / "labels").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ome.zarr"]


def test_crash_during_write_leaves_nothing_and_keeps_old_store(tmp_path, monkeypatch):
    path = tmp_path / "a.ome.zarr"
    first = _image(np.uint16)
    write_image_store(path, first)

    def crash(root, probabilities, *rest):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ome_zarr, "_write_probabilities", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        write_image_store(path, _image(np.uint16), _labels(), _probs(), overwrite=True)
    with pytest.raises(RuntimeError, match="disk full"):
        write_image_store(tmp_path / "new.ome.zarr", _image(np.uint16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ome.zarr"]
    _assert_same(read_image_store(path).image, first)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image=np.zeros((2, 3, 4, 5))), "YX or YXC"),
    (dict(labels={"detection": np.zeros((Y, X + 1), np.uint8)}), "shape"),
    (dict(labels={"detection": np.zeros((Y, X), np.float32)}), "integer"),
    (dict(labels={"a/b": np.zeros((Y, X), np.uint8)}), "file name"),
    (dict(probabilities={"detection": np.zeros((Y, X), np.float32)}), r"\(C, Y, X\)"),
    (dict(metadata={"x": object()}), "JSON"),
])
def test_bad_input_refused_before_writing(tmp_path, kwargs, match):
    kwargs = {"image": _image(np.uint8), **kwargs}
    with pytest.raises(ValueError, match=match):
        write_image_store(tmp_path / "a.ome.zarr", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_read_errors(tmp_path):
    with pytest.raises(ImageReadError, match="missing.ome.zarr: OME-Zarr store not found"):
        read_image_store(tmp_path / "missing.ome.zarr")
    (tmp_path / "file.ome.zarr").write_text("x")
    with pytest.raises(ImageReadError, match="not a folder"):
        read_image_store(tmp_path / "file.ome.zarr")
    (tmp_path / "empty.ome.zarr").mkdir()
    with pytest.raises(ImageReadError, match="no zarr.json"):
        read_image_store(tmp_path / "empty.ome.zarr")
    path = write_image_store(tmp_path / "a.ome.zarr", _image(np.uint8), _labels())
    (path / "zarr.json").write_text("{ not json")
    with pytest.raises(ImageReadError, match="a.ome.zarr: cannot read OME-Zarr store") as err:
        read_image_store(path)
    assert "\n" not in str(err.value)
    path = write_image_store(tmp_path / "b.ome.zarr", _image(np.uint8), _labels())
    shutil.rmtree(path / "labels" / "detection")
    with pytest.raises(ImageReadError, match="b.ome.zarr: cannot read"):
        read_image_store(path)


def test_reads_plain_ngff_with_singleton_t_z(tmp_path):
    import zarr
    from zarr.storage import LocalStore

    path = tmp_path / "ext.ome.zarr"
    path.mkdir()
    data = RNG.integers(0, 255, (1, 2, 1, Y, X)).astype(np.uint8)
    axes = [{"name": n, "type": t} for n, t in zip("tczyx", ["time", "channel", "space", "space", "space"])]
    root = zarr.open_group(LocalStore(path), mode="w", zarr_format=3, attributes={"ome": {
        "version": "0.5", "multiscales": [{"axes": axes, "datasets": [{"path": "s0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0] * 5}]}]}]}})
    root.create_array("s0", data=data)
    s = read_image_store(path)
    _assert_same(s.image, np.moveaxis(data[0, :, 0], 0, -1))
    assert s.name == "ext" and s.metadata == {}


# ----------------------------------------------------------------- projects

def _stores():
    return [
        {"image": _image(np.uint8), "labels": {"detection": _labels()["detection"]}, "name": "a",
         "metadata": {"class_names": ["cell", "debris"]}},
        ImageStore(image=_image(np.float32, 2), labels={"segmentation": _labels()["segmentation"],
                                                       "roi": _labels()["roi"]},
                   probabilities=_probs(), name="b", metadata={"annotated": {"segmentation": True}}),
    ]


def test_project_round_trip(tmp_path):
    stores = _stores()
    folder = write_project(tmp_path / "proj", stores)
    info = read_project_info(folder)
    assert info["images"] == [{"name": "a", "path": "a.ome.zarr"}, {"name": "b", "path": "b.ome.zarr"}]
    assert info["class_names"] == ["cell", "debris"] and info["version"] == 1
    got = read_project(folder)
    assert [s.name for s in got] == ["a", "b"]
    _assert_same(got[0].image, stores[0]["image"])
    _assert_same(got[0].labels["detection"], stores[0]["labels"]["detection"])
    _assert_same(got[1].image, stores[1].image)
    for k, v in stores[1].labels.items():
        _assert_same(got[1].labels[k], v)
    for k, v in stores[1].probabilities.items():
        _assert_same(got[1].probabilities[k], v)
    assert got[1].metadata == {"annotated": {"segmentation": True}}


def test_project_refuses_overwrite_and_duplicates(tmp_path):
    folder = write_project(tmp_path / "proj", _stores()[:1])
    with pytest.raises(OutputExistsError, match="proj: .*pass --overwrite"):
        write_project(folder, _stores())
    assert [s.name for s in read_project(folder)] == ["a"]
    write_project(folder, _stores(), overwrite=True)
    assert [s.name for s in read_project(folder)] == ["a", "b"]
    twice = [_stores()[0], _stores()[0]]
    with pytest.raises(ValueError, match="duplicate image names"):
        write_project(tmp_path / "p2", twice)
    assert not (tmp_path / "p2").exists()


def test_add_to_project_keeps_the_others(tmp_path):
    a, b = _stores()
    folder = tmp_path / "proj"
    add_to_project(folder, a)  # creates the project
    a_json = (folder / "a.ome.zarr" / "zarr.json").stat().st_mtime_ns
    add_to_project(folder, b)
    assert [s.name for s in read_project(folder)] == ["a", "b"]
    assert (folder / "a.ome.zarr" / "zarr.json").stat().st_mtime_ns == a_json

    new_b = ImageStore(image=_image(np.uint8), name="b")
    with pytest.raises(OutputExistsError, match="b.ome.zarr: image 'b' is already in the project"):
        add_to_project(folder, new_b)
    _assert_same(read_project(folder)[1].image, b.image)
    add_to_project(folder, new_b, overwrite=True)
    got = read_project(folder)
    assert [s.name for s in got] == ["a", "b"]
    _assert_same(got[1].image, new_b.image)
    assert got[1].labels == {}
    assert read_project_info(folder)["class_names"] == ["cell", "debris"]


def test_read_project_errors(tmp_path):
    with pytest.raises(ImageReadError, match="project folder not found"):
        read_project(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ImageReadError, match="plain: not a lazylabels project"):
        read_project(tmp_path / "plain")
    folder = write_project(tmp_path / "proj", _stores())
    shutil.rmtree(folder / "b.ome.zarr")
    with pytest.raises(ImageReadError, match="b.ome.zarr: OME-Zarr store not found"):
        read_project(folder)
    (folder / "project.json").write_text(
        '{"format": "napari-lazylabels project", "version": 1, "images": [{"name": "x", "path": "../x"}]}')
    with pytest.raises(ImageReadError, match="inside the project folder"):
        read_project(folder)
    (folder / "project.json").write_text('{"format": "napari-lazylabels project", "version": 99, "images": []}')
    with pytest.raises(ImageReadError, match="newer"):
        read_project(folder)


def test_project_to_annotations_and_back(tmp_path):
    stores = _stores()
    folder = write_project(tmp_path / "proj", stores)
    items = project_to_annotations(read_project(folder))
    a, b = items
    assert a.name == "a" and a.labels["separation"] is None and a.roi is None
    assert a.is_annotated("detection") and not a.is_annotated("segmentation")
    assert b.labels["detection"] is None and b.is_annotated("segmentation")
    assert b.annotated == {"segmentation": True}
    _assert_same(b.roi, stores[1].labels["roi"])
    assert "instances" not in b.labels

    store = annotations_to_store(b)
    assert set(store.labels) == {"segmentation", "roi"} and store.metadata["annotated"] == {"segmentation": True}
    path = write_image_store(tmp_path / "b2.ome.zarr", **{k: getattr(store, k) for k in
                                                          ("image", "labels", "name", "metadata")})
    again = project_to_annotations([read_image_store(path)])[0]
    _assert_same(again.roi, b.roi)
    _assert_same(again.labels["segmentation"], b.labels["segmentation"])
