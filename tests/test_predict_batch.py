"""lazylabels predict on many images, lazily read inputs, out-of-core prediction, a dask LocalCluster."""

import json

import numpy as np
import pytest
import tifffile

from napari_lazylabels.cli import main
from napari_lazylabels.engine.synthetic import make_image
from napari_lazylabels.io.lazy_array import LazyArray
from napari_lazylabels.io.inputs import expand_inputs, open_image
from napari_lazylabels.io.ome_zarr import read_image_store
from napari_lazylabels.io.project import read_project
from test_blockwise import same_partition
from test_cli import one_line_error
from test_metadata import _ngff04

DEVICE = ["--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def model(small_lazy_set, tmp_path_factory, train_tiny):
    """A tiny model trained long enough to find objects."""
    folder = tmp_path_factory.mktemp("batch") / "model"
    train_tiny(small_lazy_set[0], 40, batch_size=4, model_dir=folder)
    return folder


@pytest.fixture(scope="module")
def image():
    return make_image(5, (150, 170), density=0.35, touching=0.5).image


def _predict(model, *args) -> int:
    return main(["predict", "--model", str(model), *map(str, args), *DEVICE])


def test_a_batch_goes_on_past_a_failing_image(model, image, tmp_path, capsys, monkeypatch):
    import napari_lazylabels.io.modelio as modelio
    loads = []
    real = modelio.load_model
    monkeypatch.setattr(modelio, "load_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    raw = tmp_path / "raw"
    raw.mkdir()
    tifffile.imwrite(raw / "a.tif", image)
    np.save(raw / "b.npy", image[:100, :120])
    (raw / "c.tif").write_bytes(b"not a tiff at all")
    nan = image.copy()
    nan[3, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    (raw / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    code = _predict(model, "--image", raw, tmp_path / "nan.npy", "--outdir", out)
    captured = capsys.readouterr()
    assert code == 2 and len(loads) == 1
    assert sorted(p.name for p in out.iterdir()) == ["a_labels.tif", "b_labels.tif"]
    errors = [line for line in captured.err.splitlines() if line.startswith("lazylabels: error:")]
    assert len(errors) == 2 and "c.tif" in errors[0] and "nan.npy" in errors[1] and "NaN" in errors[1]
    summary = captured.out.strip().splitlines()
    assert summary[-1].startswith("2 of 4 images predicted") and "2 failed" in summary[-1]
    assert sum("objects ->" in line for line in summary) == 2
    labels = tifffile.imread(out / "a_labels.tif")
    single = tmp_path / "single.tif"
    assert _predict(model, "--image", raw / "a.tif", "--out", single) == 0
    np.testing.assert_array_equal(labels, tifffile.imread(single))


def test_a_batch_checks_every_output_first(model, image, tmp_path, capsys):
    for name in ("a", "b"):
        tifffile.imwrite(tmp_path / f"{name}.tif", image)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.zarr").write_text("precious")
    code = _predict(model, "--image", tmp_path / "*.tif", "--outdir", out, "--outname", "{stem}.zarr")
    one_line_error(capsys, code, "b.zarr", "exists")
    assert sorted(p.name for p in out.iterdir()) == ["b.zarr"]          # nothing predicted
    assert _predict(model, "--image", tmp_path / "*.tif", "--outdir", out, "--outname", "{stem}.zarr",
                    "--skip-existing") == 0
    assert (out / "a.zarr").is_dir() and (out / "b.zarr").read_text() == "precious"
    capsys.readouterr()
    code = _predict(model, "--image", tmp_path / "*.tif", "--outdir", out, "--outname", "{stem}.zarr", "--overwrite")
    one_line_error(capsys, code, "b.zarr", "not an OME-Zarr store")   # --overwrite replaces only its own outputs
    assert (out / "b.zarr").read_text() == "precious"


@pytest.mark.parametrize("args,needle", [
    (["--outdir", "o", "--outname", "same.tif"], "{stem}"),
    (["--outdir", "o", "--outname", "{stem}.png"], ".tif"),
    (["--outdir", "o", "--outname", "{colour}.tif"], "{stem}"),
    (["--out", "one.tif"], "--outdir"),
    (["--out", "one.tif", "--outname", "{stem}.tif"], "--outdir"),
    (["--outdir", "o", "--workers", "2", "--in-memory"], "--in-memory"),
])
def test_bad_batch_settings_give_one_line(model, image, tmp_path, capsys, args, needle):
    for name in ("a", "b"):
        tifffile.imwrite(tmp_path / f"{name}.tif", image)
    args = [str(tmp_path / a) if a in ("o", "one.tif") else a for a in args]
    code = _predict(model, "--image", tmp_path / "a.tif", tmp_path / "b.tif", *args)
    one_line_error(capsys, code, needle)
    assert not (tmp_path / "o").exists() and not (tmp_path / "one.tif").exists()


def test_same_names_in_two_folders_are_refused(model, image, tmp_path, capsys):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        tifffile.imwrite(tmp_path / folder / "a.tif", image)
    code = _predict(model, "--image", tmp_path / "x", tmp_path / "y", "--outdir", tmp_path / "o")
    one_line_error(capsys, code, "would both be written", "a_labels.tif")


def test_inputs_expand_folders_patterns_and_stores(tmp_path, image):
    (tmp_path / "d").mkdir()
    for name in ("b.tif", "a.npy", ".hidden.tif", "c.txt"):
        (tmp_path / "d" / name).write_bytes(b"")
    main_store = tmp_path / "d" / "s.ome.zarr"
    from napari_lazylabels.io.ome_zarr import write_image_store
    write_image_store(main_store, image)
    got = expand_inputs([tmp_path / "d", str(tmp_path / "d" / "*.tif"), main_store, tmp_path / "missing.tif"])
    assert [p.name for p in got] == ["a.npy", "b.tif", "s.ome.zarr", "missing.tif"]
    from napari_lazylabels.errors import ImageReadError
    with pytest.raises(ImageReadError, match="matches no image"):
        expand_inputs([str(tmp_path / "*.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="no image in this folder"):
        expand_inputs([tmp_path / "empty"])


def _inputs(tmp_path, image):
    """The same image as an OME-Zarr 0.5 store, a 0.4 store, a tiled compressed TIFF, a plain TIFF, a .npy."""
    from napari_lazylabels.io.ome_zarr import write_image_store
    paths = {"zarr05": write_image_store(tmp_path / "im.ome.zarr", image),
             "zarr04": _ngff04(tmp_path / "old.zarr", image, "yx", None),
             "tiff-tiled": tmp_path / "tiled.tif", "tiff-plain": tmp_path / "plain.tif", "npy": tmp_path / "im.npy"}
    tifffile.imwrite(paths["tiff-tiled"], image, compression="zlib", tile=(32, 32))
    tifffile.imwrite(paths["tiff-plain"], image)
    np.save(paths["npy"], image)
    return paths


@pytest.mark.parametrize("kind", ["zarr05", "zarr04", "tiff-tiled", "tiff-plain", "npy"])
def test_inputs_are_read_a_window_at_a_time(tmp_path, kind, monkeypatch):
    big = np.random.default_rng(0).random((1100, 1300), dtype=np.float32)
    path = _inputs(tmp_path, big)[kind]
    opened = open_image(path)
    reads = []
    real = LazyArray.__getitem__
    monkeypatch.setattr(LazyArray, "__getitem__", lambda self, index: reads.append(index) or real(self, index))
    assert opened.axes == "yx" and opened.data.shape == big.shape and not reads   # nothing read yet
    np.testing.assert_array_equal(np.asarray(opened.data[10:20, 5:9]), big[10:20, 5:9])
    np.testing.assert_array_equal(np.asarray(opened.data[1050:, 1200:]), big[1050:, 1200:])
    assert len(reads) == 2
    if kind != "zarr04":       # that store is one chunk
        for rows, cols in (r[-2:] for r in reads):
            assert (rows.stop - rows.start) * (cols.stop - cols.start) <= 1024 * 1024


@pytest.mark.parametrize("kind", ["zarr05", "zarr04", "tiff-tiled", "npy"])
def test_out_of_core_prediction_of_every_input_equals_the_in_memory_one(model, tmp_path, image, kind):
    path = _inputs(tmp_path, image)[kind]
    assert _predict(model, "--image", path, "--out", tmp_path / "mem.zarr", "--in-memory") == 0
    assert _predict(model, "--image", path, "--out", tmp_path / "ooc.zarr", "--out-of-core", "--block-size", "48",
                    "--halo", "24") == 0
    assert _predict(model, "--image", path, "--out", tmp_path / "ooc.tif", "--out-of-core", "--block-size", "64") == 0
    mem, ooc = read_image_store(tmp_path / "mem.zarr"), read_image_store(tmp_path / "ooc.zarr")
    np.testing.assert_array_equal(ooc.image, mem.image)
    assert mem.labels["instances"].max() > 5
    np.testing.assert_array_equal(ooc.labels["semantic"], mem.labels["semantic"])
    assert ooc.labels["instances"].dtype == mem.labels["instances"].dtype
    assert same_partition(mem.labels["instances"], ooc.labels["instances"])
    assert same_partition(mem.labels["instances"], tifffile.imread(tmp_path / "ooc.tif"))
    for task, p in mem.probabilities.items():
        np.testing.assert_allclose(ooc.probabilities[task], p, atol=1e-5)
    record = json.loads((tmp_path / "ooc.zarr" / "zarr.json").read_text())["attributes"]["lazylabels"]["arrays"]
    assert set(record) == set(json.loads((tmp_path / "mem.zarr" / "zarr.json").read_text())
                              ["attributes"]["lazylabels"]["arrays"])             # no scratch left in it
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_the_flips_are_taken_out_of_core_too(model, tmp_path, image):
    """The block-wise path read no flips (issue 22: its probabilities were about 1e-2 from the in-memory ones)."""
    np.save(tmp_path / "im.npy", image)
    for mode, out in (("--in-memory", "mem.zarr"), ("--out-of-core", "ooc.zarr"), ("--in-memory", "plain.zarr")):
        flips = ["--flips"] if out != "plain.zarr" else []
        assert _predict(model, "--image", tmp_path / "im.npy", "--out", tmp_path / out, mode, "--block-size", "64",
                        *flips) == 0
    mem, ooc, plain = (read_image_store(tmp_path / name) for name in ("mem.zarr", "ooc.zarr", "plain.zarr"))
    for task, p in mem.probabilities.items():
        np.testing.assert_allclose(ooc.probabilities[task], p, atol=1e-5)
        assert np.abs(plain.probabilities[task] - p).max() > 1e-3
    np.testing.assert_array_equal(ooc.labels["semantic"], mem.labels["semantic"])
    assert same_partition(mem.labels["instances"], ooc.labels["instances"])


def test_a_stack_out_of_core(model, tmp_path, image):
    stack = np.stack([image, image[::-1], image[:, ::-1]])
    tifffile.imwrite(tmp_path / "t.tif", stack, imagej=True, metadata={"axes": "TYX"})
    for mode in ("--in-memory", "--out-of-core"):
        tag = mode.strip("-")
        assert _predict(model, "--image", tmp_path / "t.tif", "--out", tmp_path / f"{tag}.tif", mode,
                        "--block-size", "64") == 0
        assert _predict(model, "--image", tmp_path / "t.tif", "--out", tmp_path / f"{tag}.zarr", mode,
                        "--block-size", "64") == 0
    mem, ooc = tifffile.imread(tmp_path / "in-memory.tif"), tifffile.imread(tmp_path / "out-of-core.tif")
    assert mem.shape == ooc.shape == stack.shape
    assert all(same_partition(a, b) for a, b in zip(mem, ooc))
    a, b = read_project(tmp_path / "in-memory.zarr"), read_project(tmp_path / "out-of-core.zarr")
    assert [s.name for s in a] == [s.name for s in b] and len(a) == 3
    assert [s.metadata["stack"] for s in a] == [s.metadata["stack"] for s in b]
    assert all(same_partition(x.labels["instances"], y.labels["instances"]) for x, y in zip(a, b))


def test_out_of_core_refusals_write_nothing(model, tmp_path, image, capsys):
    nan = image.copy()
    nan[100, 150] = np.inf
    np.save(tmp_path / "inf.npy", nan)
    code = _predict(model, "--image", tmp_path / "inf.npy", "--out", tmp_path / "o.zarr", "--out-of-core")
    one_line_error(capsys, code, "inf.npy", "NaN or infinite")
    np.save(tmp_path / "ok.npy", image)
    code = _predict(model, "--image", tmp_path / "ok.npy", "--out", tmp_path / "o.zarr", "--out-of-core",
                    "--rescale", "2")
    one_line_error(capsys, code, "resize")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inf.npy", "ok.npy"]


def test_a_local_cluster_of_two_worker_processes(model, tmp_path, image, capsys):
    """The block-wise passes on a dask LocalCluster (2 worker processes, 1 thread each): the same result."""
    np.save(tmp_path / "im.npy", image)
    assert _predict(model, "--image", tmp_path / "im.npy", "--out", tmp_path / "mem.zarr", "--in-memory") == 0
    assert _predict(model, "--image", tmp_path / "im.npy", tmp_path / "mem.zarr", "--outdir", tmp_path / "out",
                    "--outname", "{stem}.zarr", "--workers", "2", "--block-size", "64") == 0
    assert "2 of 2 images predicted" in capsys.readouterr().out
    mem = read_image_store(tmp_path / "mem.zarr")
    for name in ("im", "mem"):
        got = read_image_store(tmp_path / "out" / f"{name}.zarr")
        np.testing.assert_array_equal(got.labels["semantic"], mem.labels["semantic"])
        assert same_partition(mem.labels["instances"], got.labels["instances"])
        for task, p in mem.probabilities.items():
            np.testing.assert_allclose(got.probabilities[task], p, atol=1e-5)
