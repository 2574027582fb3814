"""Image metadata: axes and pixel sizes from the files, stacks, compressed TIFFs, OME-Zarr 0.4 and 0.5,
and the napari reader's choices (what it opens, what it declines)."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import tifffile

from napari_lazylabels.cli import main
from napari_lazylabels.engine.annotations import PixelSize
from napari_lazylabels.errors import AnnotationError, ImageReadError
from napari_lazylabels.io.imageio import load_image, read_image, read_image_file
from napari_lazylabels.io.manifest import load_manifest
from napari_lazylabels.io.modelio import load_model
from napari_lazylabels.io.ngff import store_problem
from napari_lazylabels.io.ome_zarr import read_image_store, write_image_store
from napari_lazylabels.io.project import read_project
from napari_lazylabels.plugin.reader import napari_get_reader

from test_cli import TRAIN, one_line_error, write_dataset

RNG = np.random.default_rng(5)


def _stack(n=3, shape=(40, 48)):
    return (RNG.random((n, *shape)) * 1000).astype(np.uint16)


# ----------------------------------------------------------------- axes of TIFF files

@pytest.mark.parametrize("axes, word", [("TYX", "time points"), ("ZYX", "z-planes")])
def test_imagej_stack_is_read_with_its_axes_not_as_channels(tmp_path, axes, word):
    data = _stack(3)
    tifffile.imwrite(tmp_path / "s.tif", data, imagej=True, metadata={"axes": axes})
    image = read_image_file(tmp_path / "s.tif")
    assert image.axes == axes.lower() and image.plane_shape == (3,) and np.array_equal(image.data, data)
    with pytest.raises(AnnotationError) as err:
        read_image(tmp_path / "s.tif")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "s.tif"))
    assert f"3 {word}" in msg and "ImageJ metadata" in msg and "one row per plane" in msg


def test_thirty_plane_stack_without_metadata_is_a_stack_not_128_channels(tmp_path):
    data = _stack(30, (128, 128))
    tifffile.imwrite(tmp_path / "z.tif", data)
    image = read_image_file(tmp_path / "z.tif")
    assert image.axes == "pyx" and image.plane_shape == (30,)
    with pytest.raises(AnnotationError, match=r"z.tif: image is a stack of 30 pages .*shape \(30, 128, 128\)"):
        load_image(tmp_path / "z.tif")


def test_declared_channels_and_rgb_are_channels(tmp_path):
    data = _stack(2)
    tifffile.imwrite(tmp_path / "c.tif", data, imagej=True, metadata={"axes": "CYX"})
    assert np.array_equal(read_image(tmp_path / "c.tif"), np.moveaxis(data, 0, -1))
    rgb = (RNG.random((40, 48, 3)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    assert np.array_equal(read_image(tmp_path / "rgb.tif"), rgb)
    ome = (RNG.random((2, 3, 40, 48)) * 255).astype(np.uint8)     # 2 time points of 3 channels
    tifffile.imwrite(tmp_path / "o.ome.tif", ome, metadata={"axes": "TCYX"})
    image = read_image_file(tmp_path / "o.ome.tif")
    assert image.axes == "tyxc" and np.array_equal(image.data, np.moveaxis(ome, 1, -1))


@pytest.mark.parametrize("compression", ["lzw", "zstd", "jpeg", "deflate"])
def test_compressed_tiffs_are_read(tmp_path, compression):
    data = (RNG.random((40, 48)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", data, compression=compression)
    out = read_image(tmp_path / "c.tif")
    if compression == "jpeg":       # lossy
        assert out.shape == data.shape and np.abs(out.astype(int) - data).mean() < 40
    else:
        assert np.array_equal(out, data)


def test_corrupt_tiff_header_is_one_clear_line_without_tifffile_noise(tmp_path, capfd):
    path = tmp_path / "bad.tif"
    path.write_bytes(b"II*\x00garbage" * 3)       # a TIFF signature, then an offset far past the end
    code = main(["predict", "--model", str(tmp_path), "--image", str(path), "--out", str(tmp_path / "o.tif")])
    assert code == 2
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: cannot read TIF file (not a valid TIFF") and "\n" not in msg
    assert "<tifffile" not in msg and "shape (0,)" not in msg
    captured = capfd.readouterr()
    assert "tifffile" not in captured.err and "tifffile" not in captured.out


def test_complex_npy_is_refused_without_a_numpy_warning(tmp_path, recwarn):
    np.save(tmp_path / "c.npy", (RNG.random((20, 20)) + 1j).astype(np.complex64))
    with pytest.raises(AnnotationError, match=r"c.npy: has complex values \(complex64\); save its magnitude"):
        load_image(tmp_path / "c.npy")
    assert not [w for w in recwarn if issubclass(w.category, np.exceptions.ComplexWarning)]


def test_channel_mismatch_names_the_file(tmp_path, small_lazy_set):
    items, _ = small_lazy_set
    manifest = write_dataset(tmp_path, items[:2])
    rgb = np.repeat(items[1].image[..., None], 3, axis=-1)
    tifffile.imwrite(tmp_path / f"{items[1].name}.tif", rgb, photometric="rgb")
    with pytest.raises(AnnotationError) as err:
        load_manifest(manifest)
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / f"{items[1].name}.tif")) and "3 channel(s)" in msg
    assert str(tmp_path / f"{items[0].name}.tif") in msg and "line 3" in msg


# ----------------------------------------------------------------- pixel sizes

def test_pixel_size_from_imagej_ome_and_cm_resolution(tmp_path):
    data = _stack(1)[0]
    tifffile.imwrite(tmp_path / "ij.tif", data, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"unit": "um"})
    tifffile.imwrite(tmp_path / "o.ome.tif", data, metadata={"PhysicalSizeX": 0.1, "PhysicalSizeY": 0.2,
                                                              "PhysicalSizeXUnit": "nm", "PhysicalSizeYUnit": "nm"})
    tifffile.imwrite(tmp_path / "cm.tif", data, resolution=(1e4 / 2.0, 1e4 / 2.0), resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "dpi.tif", data, resolution=(72, 72), resolutionunit="INCH")
    assert read_image_file(tmp_path / "ij.tif").pixel_size == PixelSize(0.65, 0.65)
    ome = read_image_file(tmp_path / "o.ome.tif").pixel_size
    assert ome.micrometers() == pytest.approx((0.2e-3, 0.1e-3))
    assert read_image_file(tmp_path / "cm.tif").pixel_size.micrometers() == pytest.approx((2.0, 2.0))
    assert read_image_file(tmp_path / "dpi.tif").pixel_size is None        # a screen DPI is no pixel size


def test_pixel_size_through_the_ome_zarr_and_back(tmp_path):
    image = _stack(1)[0]
    size = PixelSize(0.65, 0.5)
    path = write_image_store(tmp_path / "a.ome.zarr", image, {"detection": np.zeros(image.shape, np.uint8)},
                             pixel_size=size)
    attrs = json.loads((path / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]
    assert attrs["datasets"][0]["coordinateTransformations"] == [{"type": "scale", "scale": [0.65, 0.5]}]
    assert [a.get("unit") for a in attrs["axes"]] == ["micrometer", "micrometer"]
    label = json.loads((path / "labels" / "detection" / "zarr.json").read_text())["attributes"]["ome"]
    assert label["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] == [0.65, 0.5]
    assert read_image_store(path).pixel_size == size
    plain = write_image_store(tmp_path / "b.ome.zarr", image)
    attrs = json.loads((plain / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]
    assert "unit" not in attrs["axes"][0] and read_image_store(plain).pixel_size is None


@pytest.fixture(scope="module")
def sized_model(small_lazy_set, tmp_path_factory):
    """A tiny model trained on TIFFs of pixel size 0.5 um, with post-processing settings given at train."""
    items, _ = small_lazy_set
    folder = tmp_path_factory.mktemp("sized")
    manifest = write_dataset(folder, items[:3])
    for it in items[:3]:
        tifffile.imwrite(folder / f"{it.name}.tif", it.image, imagej=True, resolution=(2.0, 2.0),
                         metadata={"unit": "micron"})
    out = folder / "model"
    assert main(["train", "--data", str(manifest), "--model", str(out), "--min-size", "7"] + TRAIN) == 0
    return out


def test_training_pixel_size_and_postprocessing_are_stored_in_the_model(sized_model):
    model = load_model(sized_model)
    assert model.training_pixel_size == PixelSize(0.5, 0.5)
    assert model.provenance["pixel_size"] == {"y": 0.5, "x": 0.5, "unit": "micrometer"}
    assert model.postprocess.instances.min_size == 7


def test_predict_carries_the_pixel_size_and_rescales_to_the_training_one(sized_model, small_lazy_set, tmp_path,
                                                                           capsys):
    image = small_lazy_set[0][4].image
    tifffile.imwrite(tmp_path / "big.tif", image, imagej=True, resolution=(1.0, 1.0), metadata={"unit": "um"})
    out = tmp_path / "p.ome.zarr"
    assert main(["predict", "--model", str(sized_model), "--image", str(tmp_path / "big.tif"),
                 "--out", str(out), "--quiet"]) == 0
    assert "image resized by 2" in capsys.readouterr().err
    store = read_image_store(out)
    assert store.pixel_size == PixelSize(1.0, 1.0)
    assert store.labels["instances"].shape == image.shape
    assert main(["predict", "--model", str(sized_model), "--image", str(tmp_path / "big.tif"),
                 "--out", str(tmp_path / "p.tif"), "--quiet"]) == 0
    assert read_image_file(tmp_path / "p.tif").pixel_size == PixelSize(1.0, 1.0)


# ----------------------------------------------------------------- stacks at predict and train

def test_predict_segments_a_stack_plane_by_plane(sized_model, small_lazy_set, tmp_path, capsys):
    planes = np.stack([it.image for it in small_lazy_set[0][3:6]]).astype(np.float32)
    tifffile.imwrite(tmp_path / "t.tif", planes, imagej=True, metadata={"axes": "TYX"})
    for i, plane in enumerate(planes):
        np.save(tmp_path / f"plane{i}.npy", plane)
    args = ["--model", str(sized_model), "--quiet", "--rescale", "1"]
    assert main(["predict", "--image", str(tmp_path / "t.tif"), "--out", str(tmp_path / "t_labels.tif")] + args) == 0
    assert "3 time points" in capsys.readouterr().err
    result = read_image_file(tmp_path / "t_labels.tif")
    assert result.axes == "tyx" and result.data.shape == planes.shape
    for i in range(3):
        assert main(["predict", "--image", str(tmp_path / f"plane{i}.npy"),
                     "--out", str(tmp_path / f"one{i}.tif")] + args) == 0
        assert np.array_equal(result.data[i], tifffile.imread(tmp_path / f"one{i}.tif"))
    assert main(["predict", "--image", str(tmp_path / "t.tif"), "--out", str(tmp_path / "t.zarr")] + args) == 0
    stores = read_project(tmp_path / "t.zarr")
    assert [s.metadata["stack"]["plane"] for s in stores] == [[0], [1], [2]]
    assert np.array_equal(stores[1].labels["instances"], result.data[1])
    layers = napari_get_reader(str(tmp_path / "t.zarr"))(str(tmp_path / "t.zarr"))
    assert layers[0][0].shape == planes.shape          # napari puts the planes back into the stack


def test_train_refuses_a_stack_saying_how_to_pass_planes(tmp_path, small_lazy_set, capsys):
    items, _ = small_lazy_set
    manifest = write_dataset(tmp_path, items[:2])
    tifffile.imwrite(tmp_path / f"{items[0].name}.tif", np.stack([items[0].image] * 4), imagej=True,
                     metadata={"axes": "ZYX"})
    code = main(["train", "--data", str(manifest), "--model", str(tmp_path / "m")] + TRAIN)
    one_line_error(capsys, code, f"{items[0].name}.tif", "4 z-planes", "one row per plane", "line 2")
    assert not (tmp_path / "m").exists()


# ----------------------------------------------------------------- optional formats through bioio

def test_bioio_formats_are_read_through_bioio_when_installed(tmp_path, monkeypatch):
    path = tmp_path / "a.czi"
    path.write_bytes(b"fake")
    data = (RNG.random((1, 2, 3, 20, 24)) * 255).astype(np.uint8)     # T C Z Y X

    class FakeImage:
        def __init__(self, p):
            assert str(p) == str(path)
            self.dims = types.SimpleNamespace(order="TCZYX")
            self.data = data
            self.physical_pixel_sizes = types.SimpleNamespace(Z=1.0, Y=0.3, X=0.3)

    monkeypatch.setitem(sys.modules, "bioio", types.SimpleNamespace(BioImage=FakeImage))
    monkeypatch.setattr("napari_lazylabels.io.imageio.bioio_available", lambda: True)
    image = read_image_file(path)
    assert image.axes == "zyxc" and image.declared == "bioio" and image.pixel_size == PixelSize(0.3, 0.3)
    assert np.array_equal(image.data, np.moveaxis(data[0], 0, -1))
    monkeypatch.setattr("napari_lazylabels.io.imageio.bioio_available", lambda: False)
    with pytest.raises(ImageReadError, match=r"a.czi: .czi files are read through the optional bioio package"):
        read_image_file(path)


# ----------------------------------------------------------------- OME-Zarr 0.4 and the napari reader

def _ngff04(path, data, axes, scale=None, labels=None):
    """An NGFF 0.4 store (Zarr v2, attributes at the top level), as older tools write them."""
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    ax = [{"name": a, "type": {"c": "channel", "t": "time"}.get(a, "space"),
           **({"unit": "micrometer"} if a in "yx" and scale else {})} for a in axes]
    ct = [{"type": "scale", "scale": [1.0] * (len(axes) - 2) + list(scale or (1.0, 1.0))}]
    root.attrs["multiscales"] = [{"version": "0.4", "name": "old", "axes": ax,
                                  "datasets": [{"path": "0", "coordinateTransformations": ct}]}]
    root.create_array("0", data=data, chunks=data.shape)
    if labels is not None:
        group = root.create_group("labels")
        group.attrs["labels"] = list(labels)
        for key, lab in labels.items():
            sub = group.create_group(key)
            sub.attrs.update({"multiscales": [{"version": "0.4", "axes": ax[-2:], "datasets": [{"path": "0"}]}],
                              "image-label": {"version": "0.4"}})
            sub.create_array("0", data=lab, chunks=lab.shape)
    return path


def test_ome_zarr_04_is_read_and_trained_on(tmp_path, small_lazy_set):
    item = small_lazy_set[0][0]
    blobs = np.asarray(item.labels["detection"]).astype(np.uint8)
    path = _ngff04(tmp_path / "old.zarr", item.image.astype(np.float32), "yx", (0.4, 0.4), {"detection": blobs})
    store = read_image_store(path)
    assert np.array_equal(store.image, item.image.astype(np.float32)) and store.name == "old"
    assert np.array_equal(store.labels["detection"], blobs) and store.pixel_size == PixelSize(0.4, 0.4)
    loaded = load_manifest(path)
    assert loaded[0].pixel_size == PixelSize(0.4, 0.4) and loaded[0].is_annotated("detection")
    layers = napari_get_reader(str(path))(str(path))
    assert layers[0][1]["scale"] == (0.4, 0.4) and layers[0][1]["metadata"]["lazylabels"]["pixel_size"]["y"] == 0.4


def test_reader_declines_a_3d_store_and_other_versions(tmp_path):
    import zarr

    z = _ngff04(tmp_path / "z.zarr", _stack(5), "zyx")
    assert "5 z-planes" in store_problem(z)
    assert napari_get_reader(str(z)) is None
    t = tmp_path / "t.ome.zarr"
    root = zarr.open_group(str(t), mode="w", zarr_format=3, attributes={"ome": {"version": "0.5", "multiscales": [
        {"axes": [{"name": "t", "type": "time"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
         "datasets": [{"path": "0"}]}]}})
    root.create_array("0", data=_stack(2))
    assert napari_get_reader(str(t)) is None
    future = tmp_path / "f.ome.zarr"
    root = zarr.open_group(str(future), mode="w", zarr_format=3, attributes={"ome": {"version": "0.9", "multiscales": [
        {"axes": [{"name": "y"}, {"name": "x"}], "datasets": [{"path": "0"}]}]}})
    root.create_array("0", data=_stack(1)[0])
    assert "NGFF version 0.9" in store_problem(future) and napari_get_reader(str(future)) is None
    ok = write_image_store(tmp_path / "ok.ome.zarr", _stack(1)[0])
    assert store_problem(ok) is None and napari_get_reader(str(ok)) is not None


def test_reader_opens_a_two_channel_store_with_2d_labels(tmp_path):
    image = np.moveaxis(_stack(2, (64, 64)), 0, -1)            # YXC, 2 channels
    blobs = np.zeros((64, 64), np.uint8)
    blobs[10:14, 10:14] = 1
    path = write_image_store(tmp_path / "two.ome.zarr", image, {"detection": blobs}, pixel_size=PixelSize(0.5, 0.5))
    layers = napari_get_reader(str(path))(str(path))
    data, kwargs, kind = layers[0]
    assert kind == "image" and data.shape == (2, 64, 64) and not kwargs["rgb"]
    assert kwargs["metadata"]["lazylabels"]["channel_axis"] == 0 and kwargs["scale"] == (1.0, 0.5, 0.5)
    assert np.array_equal(data, np.moveaxis(image, -1, 0))
    labels = [(d, k) for d, k, t in layers if t == "labels"]
    assert labels and all(d.shape == (64, 64) for d, _ in labels)
    assert all(k["scale"] == (0.5, 0.5) for _, k in labels)
    assert np.array_equal(next(d for d, k in labels if k["name"].startswith("blobs · ")), blobs)
