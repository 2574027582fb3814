"""The CLI contract: train, predict, and a one-line error for every bad input."""

import csv
import json

import numpy as np
import pytest
import tifffile

from napari_lazylabels.cli import main

TRAIN = ["--steps", "3", "--patch-size", "32", "--batch-size", "2", "--preset", "tiny", "--device", "cpu",
         "--quiet"]


def write_dataset(folder, items, strong=True):
    """TIFF files and a manifest for synthetic items; returns the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for it in items:
        row = {"image": f"{it.name}.tif"}
        tifffile.imwrite(folder / row["image"], it.image)
        for task in ("detection", "separation", "segmentation"):
            lab = it.labels.get(task)
            if lab is None or (task == "segmentation" and not strong):
                row[task] = ""
            else:
                row[task] = f"{it.name}_{task}.tif"
                tifffile.imwrite(folder / row[task], np.asarray(lab).astype(np.uint8))
        rows.append(row)
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "detection", "separation", "segmentation"])
        w.writeheader()
        w.writerows(rows)
    return manifest


@pytest.fixture(scope="module")
def dataset(small_lazy_set, tmp_path_factory):
    items, _ = small_lazy_set
    return write_dataset(tmp_path_factory.mktemp("data"), items[:3])


@pytest.fixture(scope="module")
def model_dir(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "model"
    assert main(["train", "--data", str(dataset), "--model", str(out)] + TRAIN) == 0
    return out


def one_line_error(capsys, code, *needles):
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("lazylabels: error:") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_train_writes_a_model(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["provenance"]["trained_steps"] == 3
    assert (model_dir / "model.safetensors").is_file()


def test_resume_continues_to_more_steps(dataset, model_dir, tmp_path):
    import shutil
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    args = ["train", "--data", str(dataset), "--model", str(copy), "--resume"] + TRAIN
    args[args.index("--steps") + 1] = "5"
    assert main(args) == 0
    assert json.loads((copy / "config.json").read_text())["provenance"]["trained_steps"] == 5


def test_predict_tif_and_zarr(dataset, model_dir, tmp_path, capsys):
    image = dataset.parent / "synthetic_000.tif"
    out_tif = tmp_path / "pred.tif"
    assert main(["predict", "--model", str(model_dir), "--image", str(image), "--out", str(out_tif),
                 "--quiet", "--device", "cpu"]) == 0
    labels = tifffile.imread(out_tif)
    assert labels.dtype in (np.uint16, np.uint32) and labels.shape == tifffile.imread(image).shape
    out_zarr = tmp_path / "pred.zarr"
    assert main(["predict", "--model", str(model_dir), "--image", str(image), "--out", str(out_zarr),
                 "--quiet"]) == 0
    from napari_lazylabels.io.ome_zarr import read_image_store
    store = read_image_store(out_zarr)
    assert {"instances", "semantic"} <= set(store.labels)
    assert set(store.probabilities) == {"detection", "separation", "segmentation"}
    np.testing.assert_array_equal(store.image, tifffile.imread(image))
    np.testing.assert_array_equal(store.labels["instances"], labels)


def test_existing_output_is_refused(dataset, model_dir, tmp_path, capsys):
    image = dataset.parent / "synthetic_000.tif"
    out = tmp_path / "exists.tif"
    out.write_bytes(b"precious")
    code = main(["predict", "--model", str(model_dir), "--image", str(image), "--out", str(out), "--quiet"])
    one_line_error(capsys, code, str(out), "exists")
    assert out.read_bytes() == b"precious"
    code = main(["train", "--data", str(dataset), "--model", str(model_dir)] + TRAIN)
    one_line_error(capsys, code, str(model_dir), "exists")


def test_bad_output_suffix(dataset, model_dir, tmp_path, capsys):
    code = main(["predict", "--model", str(model_dir), "--image", str(dataset.parent / "synthetic_000.tif"),
                 "--out", str(tmp_path / "x.jpg")])
    one_line_error(capsys, code, ".tif")


@pytest.mark.parametrize("damage", ["empty", "corrupt"])
def test_bad_model_dir(dataset, tmp_path, capsys, damage):
    bad = tmp_path / "badmodel"
    bad.mkdir()
    if damage == "corrupt":
        (bad / "config.json").write_text("{")
    out = tmp_path / "o.tif"
    code = main(["predict", "--model", str(bad), "--image", str(dataset.parent / "synthetic_000.tif"),
                 "--out", str(out)])
    one_line_error(capsys, code, str(bad))
    assert not out.exists()


def _manifest(tmp_path, image, detection="", separation="", segmentation=""):
    m = tmp_path / "m.csv"
    m.write_text(f"image,detection,separation,segmentation\n{image},{detection},{separation},{segmentation}\n")
    return m


def _bad_case(tmp_path, case):
    """Write one kind of bad input; return (manifest, text the error must name)."""
    rng = np.random.default_rng(0)
    img = rng.random((32, 32)).astype(np.float32)
    blobs = np.zeros((32, 32), np.uint8)
    blobs[10:14, 10:14] = 1
    tifffile.imwrite(tmp_path / "img.tif", img)
    tifffile.imwrite(tmp_path / "blobs.tif", blobs)
    if case == "missing_file":
        return _manifest(tmp_path, "nothere.tif", "blobs.tif"), "nothere.tif"
    if case == "unreadable_image":
        (tmp_path / "broken.tif").write_bytes(b"this is not a tiff")
        return _manifest(tmp_path, "broken.tif", "blobs.tif"), "broken.tif"
    if case == "shape_mismatch":
        tifffile.imwrite(tmp_path / "small.tif", blobs[:20])
        return _manifest(tmp_path, "img.tif", "small.tif"), "small.tif"
    if case == "non_integer":
        tifffile.imwrite(tmp_path / "float.tif", blobs.astype(np.float32) * 0.5)
        return _manifest(tmp_path, "img.tif", "float.tif"), "float.tif"
    if case == "negative":
        tifffile.imwrite(tmp_path / "neg.tif", blobs.astype(np.int16) * -1)
        return _manifest(tmp_path, "img.tif", "neg.tif"), "neg.tif"
    if case == "class_too_high":
        tifffile.imwrite(tmp_path / "inst.tif", blobs * 7)
        return _manifest(tmp_path, "img.tif", "", "", "inst.tif"), "inst.tif"
    if case == "no_annotation":
        tifffile.imwrite(tmp_path / "zeros.tif", np.zeros_like(blobs))
        return _manifest(tmp_path, "img.tif", "zeros.tif"), "m.csv"
    if case == "tiny_image":
        tifffile.imwrite(tmp_path / "tiny.tif", img[:5, :5])
        tifffile.imwrite(tmp_path / "tinyblobs.tif", blobs[:5, :5])
        return _manifest(tmp_path, "tiny.tif", "tinyblobs.tif"), "tiny.tif"
    if case == "nan_pixels":
        bad = img.copy()
        bad[3, 3] = np.nan
        tifffile.imwrite(tmp_path / "nan.tif", bad)
        return _manifest(tmp_path, "nan.tif", "blobs.tif"), "nan.tif"
    if case == "inf_pixels":
        bad = img.copy()
        bad[3, 3] = np.inf
        tifffile.imwrite(tmp_path / "inf.tif", bad)
        return _manifest(tmp_path, "inf.tif", "blobs.tif"), "inf.tif"
    if case == "missing_manifest":
        return tmp_path / "none.csv", "none.csv"
    if case == "empty_manifest":
        (tmp_path / "empty.csv").write_text("")
        return tmp_path / "empty.csv", "empty.csv"
    raise AssertionError(case)


BAD_TRAINING_INPUTS = ["missing_file", "unreadable_image", "shape_mismatch", "non_integer", "negative",
                       "class_too_high", "no_annotation", "tiny_image", "nan_pixels", "inf_pixels",
                       "missing_manifest", "empty_manifest"]


@pytest.mark.parametrize("case", BAD_TRAINING_INPUTS)
def test_bad_training_input_gives_one_line_and_writes_nothing(tmp_path, capsys, case):
    manifest, needle = _bad_case(tmp_path, case)
    out = tmp_path / "model"
    code = main(["train", "--data", str(manifest), "--model", str(out)] + TRAIN)
    one_line_error(capsys, code, needle)
    assert not out.exists()


@pytest.mark.parametrize("case", ["missing_file", "unreadable_image", "tiny_image", "nan_pixels"])
def test_bad_image_for_predict(model_dir, tmp_path, capsys, case):
    _bad_case(tmp_path, case)
    name = {"missing_file": "nothere.tif", "unreadable_image": "broken.tif", "tiny_image": "tiny.tif",
            "nan_pixels": "nan.tif"}[case]
    out = tmp_path / "p.zarr"
    code = main(["predict", "--model", str(model_dir), "--image", str(tmp_path / name), "--out", str(out)])
    one_line_error(capsys, code, name)
    assert not out.exists()


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for opt in ["--data", "--model", "--steps", "--patch-size", "--batch-size", "--device", "--seed"]:
        assert opt in text
    assert "image,detection,separation,segmentation" in text


BAD_SETTINGS = [
    (["--patch-size", "8"], "patch size must be a whole number >= 16"),
    (["--lr", "0"], "learning rate must be a finite number > 0"),
    (["--lr", "-1"], "learning rate"),
    (["--lr", "nan"], "learning rate"),
    (["--lr", "inf"], "learning rate"),
    (["--task-weights", "detection=-1"], "weight must be a finite number >= 0"),
    (["--task-weights", "detection=nan"], "weight must be a finite number >= 0"),
    (["--task-weights", "separation=inf"], "weight must be a finite number >= 0"),
    (["--task-weights", "banana=1"], "unknown task(s) in --task-weights: banana"),
    (["--task-weights", "approximation=1"], "names approximation, trained only with --recursive"),
    (["--seed", "-1"], "seed must be a whole number >= 0"),
    (["--seed", str(2**32)], "seed must be a whole number >= 0 and <= 4294967295"),
    (["--recursive", "--lambda-train", "-1"], "lambda_train must be a number >= 0"),
    (["--recursive", "--lambda-final", "nan"], "lambda_final must be a number >= 0"),
    (["--recursive", "--rounds", "-2"], "rounds must be a whole number >= 0"),
]


@pytest.mark.parametrize("extra, needle", BAD_SETTINGS, ids=[" ".join(e) for e, _ in BAD_SETTINGS])
def test_bad_settings_give_one_line_and_write_nothing(dataset, tmp_path, capsys, extra, needle):
    out = tmp_path / "model"
    code = main(["train", "--data", str(dataset), "--model", str(out)] + TRAIN + extra)
    one_line_error(capsys, code, needle)
    assert not out.exists()


def test_a_closed_pipe_ends_in_one_line(model_dir):
    """`lazylabels info | head`: the reader goes away before the output is written; no traceback, exit 2."""
    import subprocess
    import sys
    code = (f"import sys; from napari_lazylabels.cli import main; sys.exit(main(['info', '--model', "
            f"{str(model_dir)!r}]))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()          # the reader is gone before the command prints (its imports take a second)
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lazylabels: error:") and "pipe" in lines[0], err
