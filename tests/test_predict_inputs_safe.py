"""predict never destroys its input, and --overwrite replaces only what this tool wrote (issue 21, item 1); a
truncated TIFF is one line, and a batch goes on past it and counts it (item 2).

Each test checks the refusal and that the file it protects is byte for byte what it was."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tifffile

from napari_lazylabels.cli import main
from napari_lazylabels.errors import ImageReadError, OutputExistsError
from napari_lazylabels.io.lazy_array import LazyArray
from napari_lazylabels.io.ome_zarr import read_image_store, write_image_store
from napari_lazylabels.io.own_outputs import (check_not_input, check_replaceable_output, foreign_model_entries,
                                              is_own_tiff)

from test_cli import TRAIN, dataset, model_dir, one_line_error  # noqa: F401 (the fixtures)

QUIET = ["--device", "cpu", "--quiet"]


def _predict(model, *args) -> int:
    return main(["predict", "--model", str(model), *map(str, args), *QUIET])


@pytest.fixture
def images(dataset, tmp_path):
    """Two input images in their own folder (copies of the data set's)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(2):
        shutil.copy(dataset.parent / f"synthetic_00{n}.tif", folder / f"in{n}.tif")
    return folder


def _bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ----------------------------------------------------------------- never over an input

def test_the_output_may_not_be_the_input(model_dir, images, capsys):
    before = _bytes(images)
    image = images / "in0.tif"
    one_line_error(capsys, _predict(model_dir, "--image", image, "--out", image, "--overwrite"),
                   "is the image it is predicted from; predict never writes over its input")
    assert _bytes(images) == before


@pytest.mark.skipif(not hasattr(os, "link"), reason="links")
@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_nor_a_link_to_it(model_dir, images, tmp_path, link, capsys):
    before = _bytes(images)
    out = tmp_path / "linked.tif"
    (os.symlink if link == "symlink" else os.link)(images / "in0.tif", out)
    one_line_error(capsys, _predict(model_dir, "--image", images / "in0.tif", "--out", out, "--overwrite"),
                   "the same file through a link")
    assert _bytes(images) == before


def test_a_batch_named_over_its_inputs_writes_nothing(model_dir, images, capsys):
    before = _bytes(images)
    one_line_error(capsys, _predict(model_dir, "--image", images, "--outdir", images, "--outname", "{name}",
                                    "--overwrite"), "predict never writes over its input")
    assert _bytes(images) == before


def test_an_image_of_the_batch_is_no_other_images_output(model_dir, images, capsys):
    """a.tif's output named b.tif, b.tif being an input too."""
    shutil.copy(images / "in0.tif", images / "in0_labels.tif")
    before = _bytes(images)
    one_line_error(capsys, _predict(model_dir, "--image", images / "in0.tif", images / "in0_labels.tif",
                                    "--outdir", images, "--overwrite"), "in0_labels.tif")
    assert _bytes(images) == before


@pytest.fixture
def painted_store(dataset, tmp_path):
    """A project store with painted lazy labels (blobs, interfaces)."""
    image = tifffile.imread(dataset.parent / "synthetic_000.tif")
    det = np.zeros(image.shape[:2], np.uint8)
    det[5:15, 5:15] = 1
    sep = np.zeros(image.shape[:2], np.uint8)
    sep[20:22, :] = 1
    return write_image_store(tmp_path / "proj" / "img.ome.zarr", image, labels={"detection": det, "separation": sep})


def test_a_store_predicted_into_itself_keeps_its_painted_labels(model_dir, painted_store, capsys):
    one_line_error(capsys, _predict(model_dir, "--image", painted_store, "--out", painted_store, "--overwrite"),
                   "predict never writes over its input")
    assert sorted(read_image_store(painted_store).labels) == ["detection", "separation"]


def test_a_store_with_painted_labels_is_never_replaced(model_dir, dataset, painted_store, tmp_path, capsys):
    """Another image predicted onto it: refused, naming the painted layers; beside it is fine."""
    image = dataset.parent / "synthetic_001.tif"
    one_line_error(capsys, _predict(model_dir, "--image", image, "--out", painted_store, "--overwrite"),
                   "holds painted labels (detection, separation); predict never replaces them")
    assert sorted(read_image_store(painted_store).labels) == ["detection", "separation"]
    beside = painted_store.parent / "img_prediction.ome.zarr"
    assert _predict(model_dir, "--image", image, "--out", beside) == 0
    assert _predict(model_dir, "--image", image, "--out", beside, "--overwrite") == 0      # our own: replaced
    assert sorted(read_image_store(beside).labels) == ["instances", "semantic"]


# ----------------------------------------------------------------- --overwrite replaces only our outputs

def test_a_file_we_did_not_write_is_not_replaced(model_dir, dataset, tmp_path, capsys):
    image = dataset.parent / "synthetic_000.tif"
    csv = tmp_path / "man.tif"
    csv.write_text("image,detection\na.tif,b.tif\n")
    raw = tmp_path / "raw.tif"
    tifffile.imwrite(raw, np.random.default_rng(0).random((32, 32), np.float32))
    for victim in (csv, raw):
        before = victim.read_bytes()
        one_line_error(capsys, _predict(model_dir, "--image", image, "--out", victim, "--overwrite"),
                       "is not a label TIFF this tool wrote; --overwrite only replaces those, so it is left alone")
        assert victim.read_bytes() == before


def test_our_own_outputs_are_still_replaced(model_dir, dataset, tmp_path):
    image = dataset.parent / "synthetic_000.tif"
    for out in (tmp_path / "a.tif", tmp_path / "a.ome.zarr"):
        assert _predict(model_dir, "--image", image, "--out", out) == 0
        assert _predict(model_dir, "--image", image, "--out", out, "--overwrite") == 0
        assert _predict(model_dir, "--image", image, "--out", out, "--overwrite", "--out-of-core") == 0
    assert is_own_tiff(tmp_path / "a.tif")
    assert tifffile.TiffFile(tmp_path / "a.tif").pages.first.software == "napari-lazylabels"


def test_a_label_tiff_of_an_earlier_version_is_ours(tmp_path):
    """No Software tag of ours, but unsigned labels zlib-compressed by tifffile: what earlier versions wrote."""
    tifffile.imwrite(tmp_path / "old.tif", np.arange(16, dtype=np.uint16).reshape(4, 4), compression="zlib")
    tifffile.imwrite(tmp_path / "raw.tif", np.arange(16, dtype=np.uint16).reshape(4, 4))
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((4, 4, 3), np.uint8), compression="zlib")
    assert is_own_tiff(tmp_path / "old.tif")
    assert not is_own_tiff(tmp_path / "raw.tif") and not is_own_tiff(tmp_path / "rgb.tif")
    check_replaceable_output(tmp_path / "old.tif")
    check_replaceable_output(tmp_path / "missing.tif")
    with pytest.raises(OutputExistsError, match="not a label TIFF this tool wrote"):
        check_replaceable_output(tmp_path / "raw.tif")


def test_check_not_input_sees_folders_around_and_inside(tmp_path):
    store = tmp_path / "p" / "a.ome.zarr"
    store.mkdir(parents=True)
    with pytest.raises(OutputExistsError, match="holds the image"):
        check_not_input(tmp_path / "p", [store])
    with pytest.raises(OutputExistsError, match="lies inside the image"):
        check_not_input(store / "x.tif", [store])
    check_not_input(tmp_path / "p" / "b.ome.zarr", [store])


def test_a_model_folder_with_the_users_files_is_refused_not_emptied(dataset, model_dir, tmp_path, capsys):
    model = tmp_path / "m"
    shutil.copytree(model_dir, model)
    (model / "notes.txt").write_text("my notes")
    assert foreign_model_entries(model) == ["notes.txt"]
    code = main(["train", "--data", str(dataset), "--model", str(model), "--overwrite"] + TRAIN)
    one_line_error(capsys, code, "holds notes.txt, which this tool did not write", "left alone")
    assert (model / "notes.txt").read_text() == "my notes"
    (model / "notes.txt").unlink()
    assert foreign_model_entries(model) == []
    assert main(["train", "--data", str(dataset), "--model", str(model), "--overwrite"] + TRAIN) == 0


def test_a_regimes_artifacts_are_ours(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "approximations").mkdir()
    (tmp_path / "approximations" / "round_00.npz").write_bytes(b"")
    (tmp_path / "approximations" / "recursive.json").write_text("{}")
    assert foreign_model_entries(tmp_path) == []
    (tmp_path / "approximations" / "mine.csv").write_text("")
    (tmp_path / "data").mkdir()
    assert foreign_model_entries(tmp_path) == ["approximations/mine.csv", "data"]


# ----------------------------------------------------------------- a truncated TIFF

def _truncate(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("mode", ["--in-memory", "--out-of-core"])
def test_a_truncated_tiff_is_one_line(model_dir, images, tmp_path, mode, capsys):
    _truncate(images / "in1.tif")
    one_line_error(capsys, _predict(model_dir, "--image", images / "in1.tif", "--out", tmp_path / "o.tif", mode),
                   "in1.tif", "truncated file")
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("mode", ["--in-memory", "--out-of-core"])
def test_a_batch_goes_on_past_a_truncated_tiff_and_counts_it(model_dir, dataset, tmp_path, mode, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(3):
        shutil.copy(dataset.parent / f"synthetic_00{n}.tif", folder / f"in{n}.tif")
    _truncate(folder / "in1.tif")
    out = tmp_path / "out"
    code = _predict(model_dir, "--image", folder, "--outdir", out, mode)
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["in0_labels.tif", "in2_labels.tif"]
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("2 of 3 images predicted") and "1 failed: in1.tif: " in last and "truncated file" in last


def test_a_file_truncated_after_it_was_opened_is_one_line(tmp_path):
    """The lazy read itself ("mmap length is greater than file size") becomes the tool's error."""
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint16))
    lazy = LazyArray(str(path), "tiff-memmap", (64, 64), np.uint16, (64, 64), 0)
    _truncate(path)
    with pytest.raises(ImageReadError, match="cannot read the pixels .*mmap length is greater than file size"):
        lazy[0:8, 0:8]
