"""CSV manifests and project folders as training sets; every error names its file."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_lazylabels.errors import AnnotationError, ImageReadError, OutputExistsError
from napari_lazylabels.io.manifest import load_manifest, write_manifest
from napari_lazylabels.io.ome_zarr import write_image_store
from napari_lazylabels.io.project import write_project
from napari_lazylabels.engine.regimes import registry

K = 2  # two classes: blobs and masks hold 0..2, interface scribbles 0..1
Y, X = 16, 20
RNG = np.random.default_rng(2)


def _blobs(value=1):
    lab = np.zeros((Y, X), np.uint8)
    lab[4:7, 4:7] = value
    return lab


@pytest.fixture
def data(tmp_path):
    """Images in img/, labels in lab/, a manifest in the top folder with relative paths."""
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    images = {}
    for n in ("a", "b"):
        images[n] = (RNG.random((Y, X)) * 1000).astype(np.uint16)
        tifffile.imwrite(tmp_path / "img" / f"{n}.tif", images[n])
    tifffile.imwrite(tmp_path / "lab" / "a_det.tif", _blobs(2))
    tifffile.imwrite(tmp_path / "lab" / "a_seg.tif", _blobs(1))
    np.save(tmp_path / "lab" / "b_sep.npy", _blobs(1))
    np.save(tmp_path / "lab" / "roi.npy", (_blobs(255) > 0).astype(np.uint8) * 255)
    return tmp_path, images


def _csv(folder, text, name="train.csv"):
    path = folder / name
    path.write_text(text)
    return path


GOOD = ("image,detection,separation,segmentation,roi\n"
        "img/a.tif,lab/a_det.tif,,lab/a_seg.tif,\n"
        "img/b.tif,,lab/b_sep.npy,,lab/roi.npy\n")


def test_csv_with_relative_paths(data, monkeypatch, tmp_path_factory):
    folder, images = data
    path = _csv(folder, GOOD)
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # paths are relative to the CSV, not the cwd
    a, b = load_manifest(path, K)
    assert (a.name, b.name) == ("a", "b")
    assert np.array_equal(a.image, images["a"]) and a.image.dtype == np.uint16
    assert a.labels["detection"].dtype == np.int32 and np.array_equal(a.labels["detection"], _blobs(2))
    assert a.labels["separation"] is None and a.roi is None
    assert a.annotated_inputs() == ["detection", "segmentation"]
    assert b.annotated_inputs() == ["separation"]
    assert b.roi.dtype == bool and b.roi.sum() == 9


def test_column_order_free_and_case_insensitive(data):
    folder, _ = data
    path = _csv(folder, "Segmentation, Image ,separation,DETECTION\nlab/a_seg.tif,img/a.tif,,\n")
    (item,) = load_manifest(path, K)
    assert item.annotated_inputs() == ["segmentation"]


def test_single_task_needs_only_its_column(data):
    folder, _ = data
    path = _csv(folder, "image,segmentation\nimg/a.tif,lab/a_seg.tif\n")
    (item,) = load_manifest(path, inputs=[registry.find_input("segmentation")])
    assert list(item.labels) == ["segmentation"]


def test_absolute_paths_and_blank_lines(data):
    folder, _ = data
    text = f"image,detection,separation,segmentation\n\n{folder}/img/a.tif,{folder}/lab/a_det.tif,,\n\n"
    path = _csv(folder, text)
    assert len(load_manifest(path, K)) == 1


def test_write_manifest_round_trip(data):
    folder, _ = data
    rows = [{"image": folder / "img" / "a.tif", "detection": folder / "lab" / "a_det.tif",
             "segmentation": "lab/a_seg.tif", "separation": None},
            {"image": "img/b.tif", "separation": folder / "lab" / "b_sep.npy", "roi": "lab/roi.npy"}]
    path = write_manifest(folder / "out.csv", rows)
    lines = path.read_text().splitlines()
    assert lines[0] == "image,detection,separation,segmentation,roi"
    assert lines[1] == "img/a.tif,lab/a_det.tif,,lab/a_seg.tif,"  # absolute paths made relative
    items = load_manifest(path, K)
    assert [it.annotated_inputs() for it in items] == [["detection", "segmentation"], ["separation"]]
    with pytest.raises(OutputExistsError, match="out.csv"):
        write_manifest(path, rows[:1])
    assert path.read_text().splitlines() == lines
    write_manifest(path, rows[:1], overwrite=True)
    assert len(load_manifest(path, K)) == 1


def test_project_folder_and_single_store(tmp_path):
    img = (RNG.random((Y, X)) * 255).astype(np.uint8)
    stores = [{"image": img, "labels": {"detection": _blobs(1), "roi": _blobs(1) > 0}, "name": "p1"},
              {"image": img, "labels": {"segmentation": np.zeros((Y, X), np.uint8)}, "name": "p2",
               "metadata": {"annotated": {"segmentation": True}}}]
    folder = write_project(tmp_path / "proj", stores)
    p1, p2 = load_manifest(folder, K)
    assert p1.name == "p1" and p1.annotated_inputs() == ["detection"] and p1.roi.sum() == 9
    assert p2.annotated_inputs() == ["segmentation"]  # empty mask, but explicitly annotated
    (one,) = load_manifest(folder / "p1.ome.zarr", K)
    assert one.name == "p1"


# ----------------------------------------------------------------- errors

def _expect(err_type, path, n_classes, *fragments):
    with pytest.raises(err_type) as err:
        load_manifest(path, n_classes)
    msg = str(err.value)
    assert "\n" not in msg
    for f in fragments:
        assert str(f) in msg, (f, msg)
    return msg


def test_missing_manifest(tmp_path):
    _expect(ImageReadError, tmp_path / "none.csv", K, "none.csv", "manifest not found")


def test_empty_manifest(tmp_path):
    _expect(AnnotationError, _csv(tmp_path, ""), K, "train.csv", "empty")
    _expect(AnnotationError, _csv(tmp_path, "image,detection,separation,segmentation\n\n"), K,
            "train.csv", "no rows")


@pytest.mark.parametrize("header, missing", [
    ("img,detection,separation,segmentation", "image"),
    ("image,detection,segmentation", "separation"),
    ("image;detection;separation;segmentation", "image, detection, separation, segmentation"),
])
def test_bad_header(tmp_path, header, missing):
    path = _csv(tmp_path, header + "\nx.tif,,,\n")
    _expect(AnnotationError, path, K, "train.csv", f"lacks column(s) {missing}")


def test_unknown_column_is_refused_with_the_known_ones(data):
    """An extra column used to be ignored, although the docs said other columns are refused."""
    folder, _ = data
    path = _csv(folder, "image,detection,separation,segmentation,notes,Segmentatoin\nimg/a.tif,lab/a_det.tif,,,x,\n")
    _expect(AnnotationError, path, K, "train.csv", "unknown column(s) notes, segmentatoin",
            "the columns are " + ", ".join(["image", *registry.input_keys(), "roi", "name"]))
    # a trailing comma (an empty column name) is not a column
    assert len(load_manifest(_csv(folder, "image,detection,separation,segmentation,\nimg/a.tif,lab/a_det.tif,,,\n"),
                             K)) == 1


def test_an_image_listed_twice_is_trained_with_a_warning(data):
    folder, _ = data
    path = _csv(folder, "image,detection,separation,segmentation\n"
                        "img/a.tif,lab/a_det.tif,,\nimg/b.tif,,lab/b_sep.npy,\n./img/a.tif,,,lab/a_seg.tif\n")
    with pytest.warns(UserWarning, match=r"train.csv: image a.tif is listed 2 times \(lines 2, 4\)"):
        items = load_manifest(path, K)
    assert len(items) == 3


def test_duplicate_column(tmp_path):
    path = _csv(tmp_path, "image,detection,separation,segmentation,detection\nx.tif,,,,\n")
    _expect(AnnotationError, path, K, "train.csv", "repeats column(s) detection")


def test_row_without_image(data):
    folder, _ = data
    path = _csv(folder, "image,detection,separation,segmentation\n,lab/a_det.tif,,\n")
    _expect(AnnotationError, path, K, "train.csv", "line 2 has no image")


def test_missing_image_file(data):
    folder, _ = data
    path = _csv(folder, "image,detection,separation,segmentation\nimg/a.tif,lab/a_det.tif,,\nimg/zz.tif,,,\n")
    _expect(ImageReadError, path, K, folder / "img" / "zz.tif", "file not found", "line 3 of", "train.csv")


def test_missing_label_file(data):
    folder, _ = data
    path = _csv(folder, "image,detection,separation,segmentation\nimg/a.tif,lab/nope.tif,,\n")
    _expect(ImageReadError, path, K, folder / "lab" / "nope.tif", "file not found")


def test_corrupt_label_file(data):
    folder, _ = data
    (folder / "lab" / "bad.tif").write_bytes(b"garbage")
    path = _csv(folder, "image,detection,separation,segmentation\nimg/a.tif,lab/bad.tif,,\n")
    _expect(ImageReadError, path, K, folder / "lab" / "bad.tif", "cannot read")


def test_label_shape_mismatch(data):
    folder, _ = data
    tifffile.imwrite(folder / "lab" / "small.tif", np.zeros((Y, X - 1), np.uint8))
    path = _csv(folder, "image,detection,separation,segmentation\nimg/a.tif,,,lab/small.tif\n")
    _expect(AnnotationError, path, K, folder / "lab" / "small.tif", "masks have shape")


def test_non_integer_and_negative_labels(data):
    folder, _ = data
    np.save(folder / "lab" / "frac.npy", _blobs(1) * 0.5)
    np.save(folder / "lab" / "neg.npy", -_blobs(1).astype(np.int8))
    path = _csv(folder, "image,detection,separation,segmentation\nimg/a.tif,lab/frac.npy,,\n")
    _expect(AnnotationError, path, K, folder / "lab" / "frac.npy", "must be integers")
    path = _csv(folder, "image,detection,separation,segmentation\nimg/a.tif,lab/neg.npy,,\n")
    _expect(AnnotationError, path, K, folder / "lab" / "neg.npy", "negative")


def test_class_id_above_max(data):
    folder, _ = data
    # a_det.tif holds class 2: fine for detection with 2 classes, not as a separation scribble
    path = _csv(folder, "image,detection,separation,segmentation\nimg/a.tif,,lab/a_det.tif,\n")
    _expect(AnnotationError, path, K, folder / "lab" / "a_det.tif", "value 2 but at most 1")
    path = _csv(folder, "image,detection,separation,segmentation\nimg/a.tif,lab/a_det.tif,,\n")
    _expect(AnnotationError, path, 1, folder / "lab" / "a_det.tif", "at most 1")


def test_bad_image(data):
    folder, _ = data
    np.save(folder / "img" / "nan.npy", np.full((Y, X), np.nan, np.float32))
    path = _csv(folder, "image,detection,separation,segmentation\nimg/nan.npy,,,\n")
    _expect(AnnotationError, path, K, folder / "img" / "nan.npy", "NaN")


def test_nothing_annotated(data):
    folder, _ = data
    tifffile.imwrite(folder / "lab" / "zero.tif", np.zeros((Y, X), np.uint8))
    path = _csv(folder, "image,detection,separation,segmentation\nimg/a.tif,,,\nimg/b.tif,lab/zero.tif,,\n")
    _expect(AnnotationError, path, K, "train.csv", "no image is annotated for any task")


def test_folder_that_is_not_a_project(tmp_path):
    (tmp_path / "stuff").mkdir()
    _expect(ImageReadError, tmp_path / "stuff", K, "stuff", "neither a lazylabels project")


def test_project_with_bad_labels_names_the_store(tmp_path):
    img = np.zeros((Y, X), np.uint8)
    folder = write_project(tmp_path / "proj", [{"image": img, "labels": {"separation": _blobs(3)}, "name": "s"}])
    _expect(AnnotationError, folder, K, "s.ome.zarr/labels/separation", "value 3 but at most 1")
    empty = write_image_store(tmp_path / "e.ome.zarr", img)
    _expect(AnnotationError, empty, K, "e.ome.zarr", "no image is annotated")
