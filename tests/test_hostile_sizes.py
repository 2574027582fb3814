"""Images that declare more pixels than memory holds are refused before anything is read (issue 21, item 3): a
tiny TIFF declaring 100000 x 100000 px (to train, as image or label; to predict), an OME-Zarr store of another
tool with 10^6 x 10^6 px in one chunk (in memory and out of core) or in small chunks (in memory), a ``.npy``
declaring more than it holds; and a FIFO in a folder of images never hangs a batch (item 4).

The commands run in a child process under an address-space limit of 3 GiB, and with a time limit: what the
files declare is 18 GiB to 1 TiB, so a check that comes too late fails the test instead of the machine; the
in-process tests set the memory available and trip a wire where the pixels would be read."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_lazylabels.errors import ImageReadError
from napari_lazylabels.io import memory
from napari_lazylabels.io.imageio import read_image_file

from test_cli import dataset, model_dir  # noqa: F401 (the fixtures)
from test_hostile_files import run_in_child

HUGE = 100_000


def declaring_tiff(path, shape=(HUGE, HUGE), dtype=np.uint16, compression="zlib"):
    """A TIFF of a few hundred bytes whose tags declare ``shape``: a 16 x 16 image (one strip) with its
    ImageWidth, ImageLength and RowsPerStrip rewritten."""
    tifffile.imwrite(path, np.zeros((16, 16), dtype), compression=compression, rowsperstrip=16, metadata=None)
    with tifffile.TiffFile(path) as tif:
        offsets = {code: tif.pages.first.tags[code].valueoffset for code in (256, 257, 278)}
    with open(path, "r+b") as fh:
        for code, value in ((256, shape[1]), (257, shape[0]), (278, shape[0])):
            fh.seek(offsets[code])
            fh.write(struct.pack("<I", value))
    return path


def foreign_store(path, shape, chunks):
    """An OME-Zarr (NGFF 0.5) image store as another tool writes it: metadata only, no chunk written."""
    import zarr
    attrs = {"ome": {"version": "0.5", "multiscales": [{
        "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0]}]}]}]}}
    root = zarr.open_group(str(path), mode="w", zarr_format=3, attributes=attrs)
    root.create_array("0", shape=shape, chunks=chunks, dtype=np.uint8, dimension_names=["y", "x"])
    return path


@pytest.fixture(scope="module")
def hostile(model_dir, dataset, tmp_path_factory):
    """What each command says about a file declaring too many pixels (case -> code, err)."""
    d = tmp_path_factory.mktemp("sizes")
    big = str(declaring_tiff(d / "big.tif"))
    declaring_tiff(d / "plain.tif", compression=None)
    lzw = str(declaring_tiff(d / "lzw.tif", compression="lzw"))        # no bound on what LZW expands to
    foreign_store(d / "one_chunk.ome.zarr", (10**6, 10**6), (10**6, 10**6))
    foreign_store(d / "chunked.ome.zarr", (10**6, 10**6), (1024, 1024))
    with open(d / "declaring.npy", "wb") as fh:               # a header declaring 10^5 x 10^5, 16 bytes of data
        np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": (HUGE, HUGE)})
        fh.write(bytes(16))
    good = dataset.parent / "synthetic_000.tif"
    (d / "image_big.csv").write_text(f"image,detection,separation,segmentation\n{big},,,\n")
    (d / "image_lzw.csv").write_text(f"image,detection,separation,segmentation\n{lzw},,,\n")
    (d / "label_big.csv").write_text(f"image,detection,separation,segmentation\n{good},{big},,\n")
    folder = d / "folder"
    folder.mkdir()
    os.mkfifo(folder / "fifo.tif")
    (folder / "good.tif").write_bytes(good.read_bytes())
    train = ["--steps", "3", "--preset", "tiny", "--patch-size", "32", "--batch-size", "2", "--device", "cpu",
             "--quiet"]
    predict = ["predict", "--model", str(model_dir), "--device", "cpu", "--quiet", "--image"]
    cases = {
        "train on a huge image": ["train", "--data", str(d / "image_big.csv"), "--model", str(d / "m1")] + train,
        "train on a huge label": ["train", "--data", str(d / "label_big.csv"), "--model", str(d / "m2")] + train,
        "train on a huge LZW image": ["train", "--data", str(d / "image_lzw.csv"), "--model", str(d / "m3")] + train,
        "predict --in-memory a huge TIFF": predict + [big, "--out", str(d / "o1.tif"), "--in-memory"],
        "predict --in-memory a huge LZW TIFF": predict + [lzw, "--out", str(d / "o8.tif"), "--in-memory"],
        "predict a huge TIFF": predict + [big, "--out", str(d / "o2.tif")],
        "predict an uncompressed TIFF declaring more than it holds": predict + [str(d / "plain.tif"), "--out",
                                                                                str(d / "o3.tif"), "--in-memory"],
        "predict --in-memory one chunk of 10^12 px": predict + [str(d / "one_chunk.ome.zarr"), "--out",
                                                                str(d / "o4.tif"), "--in-memory"],
        "predict --out-of-core one chunk of 10^12 px": predict + [str(d / "one_chunk.ome.zarr"), "--out",
                                                                  str(d / "o5.tif"), "--out-of-core"],
        "predict --in-memory 10^12 px in small chunks": predict + [str(d / "chunked.ome.zarr"), "--out",
                                                                   str(d / "o6.tif"), "--in-memory"],
        "predict a .npy declaring more than it holds": predict + [str(d / "declaring.npy"), "--out",
                                                                  str(d / "o7.tif"), "--in-memory"],
        "a FIFO in a folder of images": predict + [str(folder), "--outdir", str(d / "out")],
    }
    return run_in_child(cases)


REFUSED = [
    ("train on a huge image", "its 13 bytes of zlib data cannot hold the 20,000,000,000 bytes of pixels"),
    ("train on a huge label", "its 13 bytes of zlib data cannot hold the 20,000,000,000 bytes of pixels"),
    ("predict --in-memory a huge TIFF", "its 13 bytes of zlib data cannot hold the 20,000,000,000 bytes"),
    ("predict a huge TIFF", "its 13 bytes of zlib data cannot hold the 20,000,000,000 bytes of pixels"),
    ("train on a huge LZW image", "reading the image (100000 x 100000 uint16) needs 18.6 GiB of memory"),
    ("predict --in-memory a huge LZW TIFF", "it is stored in pieces of 100000 x 100000 px, each read whole) "
                                            "needs 18.6 GiB"),
    ("predict an uncompressed TIFF declaring more than it holds", "truncated file"),
    ("predict --in-memory one chunk of 10^12 px", "stored in pieces of 1000000 x 1000000 px, each read whole) "
                                                  "needs 931.3 GiB of memory"),
    ("predict --out-of-core one chunk of 10^12 px", "rechunk it (e.g. chunks of 1024 x 1024 px)"),
    ("predict --in-memory 10^12 px in small chunks", "predicting it in memory (1000000 x 1000000 px) needs"),
    ("predict a .npy declaring more than it holds", "mmap length is greater than file size"),
]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX")
@pytest.mark.parametrize("case, message", REFUSED, ids=[c for c, _ in REFUSED])
def test_a_file_declaring_too_many_pixels_is_refused_before_it_is_read(hostile, case, message):
    assert case in hostile, f"{case}: did not finish within the time and memory limits"
    result = hostile[case]
    err = result["err"].strip()
    assert result["code"] == 2 and "Traceback" not in err, err
    line = next((ln for ln in err.splitlines() if ln.startswith("lazylabels: error:")), err)
    assert message in line, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX")
def test_the_in_memory_refusal_says_to_predict_out_of_core(hostile):
    err = hostile["predict --in-memory 10^12 px in small chunks"]["err"]
    assert "predict it block by block: --out-of-core" in err, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX")
def test_a_fifo_in_a_folder_of_images_is_passed_over(hostile):
    case = "a FIFO in a folder of images"
    assert case in hostile, "the batch hangs on the FIFO"
    assert hostile[case]["code"] == 0, hostile[case]["err"]


def test_the_check_comes_before_the_read(tmp_path, monkeypatch):
    """With 1 MiB available, a real 2048 x 2048 float32 TIFF (16 MiB) is refused and never decoded."""
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, np.zeros((2048, 2048), np.float32))
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 20)
    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", lambda *a, **k: pytest.fail("decoded before the check"))
    with pytest.raises(ImageReadError, match=r"2048 x 2048 float32\) needs 0.0 GiB of memory, 0.0 GiB are"):
        read_image_file(path)


def test_available_memory_heeds_the_address_space_limit():
    """Under ``ulimit -v`` the limit, less what the process maps, is what is available."""
    code = ("import resource; from napari_lazylabels.io.memory import available_memory; "
            "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); print(available_memory())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 0 <= int(done.stdout) < 3 << 30


def test_auto_mode_predicts_block_by_block_what_would_not_fit_in_memory(model_dir, dataset, tmp_path, monkeypatch,
                                                                         capsys):
    """Without --in-memory, an image whose in-memory prediction needs more than is available goes block by
    block, and says so; with --in-memory it is refused in one line."""
    from napari_lazylabels.cli import main
    from napari_lazylabels.recipes import predict
    monkeypatch.setattr(predict, "available_memory", lambda: 1 << 10)
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 40)     # the file's pieces fit
    image, out = dataset.parent / "synthetic_000.tif", tmp_path / "a.tif"
    args = ["predict", "--model", str(model_dir), "--image", str(image), "--device", "cpu", "--quiet", "--out"]
    assert main(args + [str(out)]) == 0
    assert "predicted block by block (in memory it would need more than the 0.0 GiB available)" in \
        capsys.readouterr().err
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 10)
    assert main(args + [str(tmp_path / "b.tif"), "--in-memory"]) == 2
    assert "predict it block by block: --out-of-core" in capsys.readouterr().err
    assert not (tmp_path / "b.tif").exists()
