"""Reading images/labels, writing label TIFFs, and the atomic write helpers."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import tifffile

from napari_lazylabels.io.atomic import atomic_write_dir, atomic_write_file, check_writable
from napari_lazylabels.errors import AnnotationError, ImageReadError, OutputExistsError
from napari_lazylabels.io.imageio import load_image, load_labels, read_image
from napari_lazylabels.io.label_tiff import write_labels_tiff

RNG = np.random.default_rng(0)


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


# ----------------------------------------------------------------- atomic

def test_atomic_file_refuses_existing_before_any_work(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    called = []
    with pytest.raises(OutputExistsError, match="exists; pass --overwrite to replace it") as err:
        atomic_write_file(target, lambda tmp: called.append(tmp))
    assert err.value.source == str(target)
    assert called == [] and target.read_text() == "old"
    with pytest.raises(OutputExistsError):
        check_writable(target, overwrite=False)
    assert check_writable(target, overwrite=True) == target


def test_atomic_file_overwrite_and_failure_leave_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    atomic_write_file(target, lambda tmp: tmp.write_text("new"), overwrite=True)
    assert target.read_text() == "new"

    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        atomic_write_file(target, boom, overwrite=True)
    assert target.read_text() == "new"
    assert _siblings(target) == ["out.txt"]
    with pytest.raises(RuntimeError):
        atomic_write_file(tmp_path / "fresh.txt", boom)
    assert _siblings(target) == ["out.txt"]


def test_atomic_file_temp_keeps_suffix_and_creates_parents(tmp_path):
    seen = []
    target = tmp_path / "a" / "b" / "img.png"
    atomic_write_file(target, lambda tmp: (seen.append(tmp.suffix),
                                           cv2.imwrite(str(tmp), np.zeros((9, 9), np.uint8))))
    assert seen == [".png"] and target.is_file()


def test_atomic_dir_overwrite_and_crash(tmp_path):
    target = tmp_path / "store"
    atomic_write_dir(target, lambda d: (d / "x").write_text("1"))
    assert (target / "x").read_text() == "1"
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        atomic_write_dir(target, lambda d: (d / "x").write_text("2"))
    assert (target / "x").read_text() == "1"

    def boom(d):
        (d / "x").write_text("half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        atomic_write_dir(target, boom, overwrite=True)
    assert (target / "x").read_text() == "1"
    assert _siblings(target) == ["store"]

    atomic_write_dir(target, lambda d: (d / "y").write_text("2"), overwrite=True)
    assert sorted(os.listdir(target)) == ["y"]
    assert _siblings(target) == ["store"]


# ----------------------------------------------------------------- reading

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_and_npy_round_trip(tmp_path, dtype):
    img = (RNG.random((20, 24)) * 200).astype(dtype)
    tifffile.imwrite(tmp_path / "a.tif", img)
    np.save(tmp_path / "a.npy", img)
    for name in ("a.tif", "a.npy"):
        out = read_image(tmp_path / name)
        assert out.dtype == img.dtype and np.array_equal(out, img)


def test_leading_channels_moved_last_and_singletons_dropped(tmp_path):
    cyx = (RNG.random((3, 16, 20)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", cyx, photometric="minisblack")
    assert np.array_equal(read_image(tmp_path / "c.tif"), np.moveaxis(cyx, 0, -1))
    np.save(tmp_path / "s.npy", cyx[:1, None])  # (1, 1, 16, 20)
    assert read_image(tmp_path / "s.npy").shape == (16, 20)
    yxc = np.moveaxis(cyx, 0, -1)
    np.save(tmp_path / "yxc.npy", yxc)
    assert np.array_equal(read_image(tmp_path / "yxc.npy"), yxc)


def test_png_colour_is_rgb_and_grey_unchanged(tmp_path):
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 200  # red
    cv2.imwrite(str(tmp_path / "c.png"), rgb[..., ::-1])  # cv2 writes BGR
    out = read_image(tmp_path / "c.png")
    assert out.shape == (10, 12, 3) and np.array_equal(out, rgb)
    grey = np.arange(120, dtype=np.uint16).reshape(10, 12) * 500
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    out = read_image(tmp_path / "g.png")
    assert out.dtype == np.uint16 and np.array_equal(out, grey)


@pytest.mark.parametrize("name, content, match", [
    ("missing.tif", None, "file not found"),
    ("a.bmpx", b"x", "unknown image format"),
    ("bad.tif", b"not a tiff at all", "cannot read TIF file"),
    ("bad.png", b"\x89PNG garbage", "cannot read PNG file"),
    ("empty.png", b"", "cannot read PNG file"),
    ("bad.npy", b"garbage", "cannot read NPY file"),
])
def test_read_errors_are_one_line_naming_the_file(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=match) as err:
        read_image(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path)) and err.value.source == str(path)


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError, match="o.npy"):
        read_image(tmp_path / "o.npy")


def test_load_image_checks(tmp_path):
    np.save(tmp_path / "small.npy", np.zeros((5, 30), np.float32))
    with pytest.raises(AnnotationError, match="small.npy.*at least 8x8"):
        load_image(tmp_path / "small.npy")
    bad = np.zeros((10, 10), np.float32)
    bad[3, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(AnnotationError, match="nan.npy.*NaN"):
        load_image(tmp_path / "nan.npy")
    np.save(tmp_path / "ok.npy", np.ones((10, 12, 3), np.float32))
    assert load_image(tmp_path / "ok.npy").shape == (10, 12, 3)


def test_load_labels_checks(tmp_path):
    lab = np.zeros((10, 12), np.uint8)
    lab[2:4, 2:4] = 2
    tifffile.imwrite(tmp_path / "l.tif", lab)
    out = load_labels(tmp_path / "l.tif", (10, 12), max_label=2)
    assert out.dtype == np.int32 and np.array_equal(out, lab)
    with pytest.raises(AnnotationError, match="l.tif.*shape"):
        load_labels(tmp_path / "l.tif", (10, 13), max_label=2)
    with pytest.raises(AnnotationError, match="l.tif.*value 2 but at most 1"):
        load_labels(tmp_path / "l.tif", (10, 12), max_label=1, what="separation labels")
    np.save(tmp_path / "neg.npy", -lab.astype(np.int16))
    with pytest.raises(AnnotationError, match="neg.npy.*negative"):
        load_labels(tmp_path / "neg.npy", (10, 12), max_label=2)
    np.save(tmp_path / "frac.npy", lab * 0.75)
    with pytest.raises(AnnotationError, match="frac.npy.*integers"):
        load_labels(tmp_path / "frac.npy", (10, 12), max_label=2)


# ----------------------------------------------------------------- writing

def test_write_labels_tiff_dtypes_and_compression(tmp_path):
    lab = np.zeros((16, 16), np.int64)
    lab[1, 1] = 7
    p = write_labels_tiff(tmp_path / "l.tif", lab)
    with tifffile.TiffFile(p) as tf:
        assert tf.pages[0].compression == 8  # ADOBE_DEFLATE (zlib)
        out = tf.asarray()
    assert out.dtype == np.uint16 and np.array_equal(out, lab)
    lab[2, 2] = 70000
    write_labels_tiff(tmp_path / "big.tif", lab)
    out = tifffile.imread(tmp_path / "big.tif")
    assert out.dtype == np.uint32 and np.array_equal(out, lab)
    write_labels_tiff(tmp_path / "b.tif", lab > 0)
    assert np.array_equal(tifffile.imread(tmp_path / "b.tif"), (lab > 0).astype(np.uint16))


def test_write_labels_tiff_refuses_overwrite_and_bad_values(tmp_path):
    p = tmp_path / "l.tif"
    write_labels_tiff(p, np.ones((8, 8), np.uint8))
    before = p.read_bytes()
    with pytest.raises(OutputExistsError, match="l.tif.*pass --overwrite"):
        write_labels_tiff(p, np.zeros((8, 8), np.uint8))
    assert p.read_bytes() == before
    write_labels_tiff(p, np.full((8, 8), 3, np.uint8), overwrite=True)
    assert np.all(tifffile.imread(p) == 3)
    with pytest.raises(AnnotationError, match="negative"):
        write_labels_tiff(tmp_path / "n.tif", -np.ones((8, 8), np.int32))
    with pytest.raises(AnnotationError, match="2D"):
        write_labels_tiff(tmp_path / "n.tif", np.ones((2, 8, 8), np.int32))
    assert not (tmp_path / "n.tif").exists()
    assert _siblings(p) == ["l.tif"]
