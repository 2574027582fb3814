"""Hostile or broken files are refused before they cost memory (issue 21, items 3 and 4): a model config that
asks for a huge network, JSON that is huge, deep or holds huge integers, zip members that declare gigabytes, and
paths that are no regular file (a FIFO, /dev/zero, a folder). Each refusal is one line, and comes first: the
tests trip a wire where the memory would have been spent, and every case that could hang or eat memory runs in a
child process with a time (and address space) limit."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch

from napari_lazylabels.cli import main
from napari_lazylabels.errors import ImageReadError, LazyLabelsError, ModelFileError, SettingsError
from napari_lazylabels.io import modelio
from napari_lazylabels.io.files import check_zip_members, read_bytes, regular_file
from napari_lazylabels.io.jsonfile import MAX_JSON_BYTES, MAX_JSON_DEPTH, parse_json, read_json
from napari_lazylabels.io.modelio import CONFIG_FILE, PACKAGE_CONFIG, PACKAGE_WEIGHTS, STATE_FILE, load_model

from test_cli import TRAIN, dataset, model_dir, one_line_error  # noqa: F401 (the fixtures)

posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs need POSIX")


@pytest.fixture
def model(model_dir, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    return copy


@pytest.fixture
def data(dataset):
    return dataset


def _wire(what):
    def tripped(*a, **k):
        raise AssertionError(f"{what} ran before the refusal")
    return tripped


@pytest.fixture
def no_unpickling(monkeypatch):
    """torch.load fails the test: a hostile checkpoint must be refused before it is read."""
    monkeypatch.setattr(torch, "load", _wire("torch.load"))


@pytest.fixture
def tripwire(monkeypatch, no_unpickling):
    """Building the network or reading the weights (or a state) fails the test: a hostile model must be refused
    before any of these, which is where the memory would go."""
    monkeypatch.setattr(modelio, "build_model", _wire("build_model"))
    monkeypatch.setattr(modelio, "load_file", _wire("reading the weights"))


def _edit(model, change):
    cfg = json.loads((model / CONFIG_FILE).read_text())
    change(cfg)
    (model / CONFIG_FILE).write_text(json.dumps(cfg))


def _set(section, key, value, index=None):
    def change(cfg):
        node = cfg[section] if index is None else cfg[section][index]
        node[key] = value
    return change


# ----------------------------------------------------------------- sizes in config.json

HUGE = [
    ("n_classes=1e9", _set("tasks", "n_classes", 10**9, 0), "tasks[0]: task 'detection': n_classes must be a whole "
                                                             "number <= 1024, got 1000000000"),
    ("base_channels=3000", _set("network", "base_channels", 3000), "base_channels must be a whole number >= 1 and "
                                                                    "<= 512, got 3000"),
    ("base_channels=1e5", _set("network", "base_channels", 1e5), "network.base_channels must be a whole number"),
    ("base_channels=100000", _set("network", "base_channels", 10**5), "<= 512, got 100000"),
    ("base_channels=1e9", _set("network", "base_channels", 10**9), "<= 512, got 1000000000"),
    ("in_channels=1e9", _set("network", "in_channels", 10**9), "in_channels must be a whole number >= 1 and <= 1024"),
    ("convs_per_block=1e6", _set("network", "convs_per_block", 10**6), "convs_per_block must be a whole number >= 1 "
                                                                       "and <= 8"),
    ("components=1e6", _set("tasks", "components", 10**6, 0), "components must be a whole number >= 1 and <= 64"),
    ("statistics=1e6", _set("tasks", "statistics", 10**6, 0), "statistics must be a whole number >= 0 and <= 8"),
    ("unlabelled_value=1e9", _set("tasks", "unlabelled_value", 10**9, 0), "unlabelled_value must be a whole number"),
    ("depth=1e6", _set("network", "depth", 10**6), "depth must be a whole number >= 2 and <= 8"),
    # each size within its bound, together far too many parameters (counted before anything is built)
    ("parameters", lambda cfg: cfg["network"].update(depth=8, base_channels=512, convs_per_block=8, multitask_levels=1),
     "parameters, more than the 200,000,000 a network may have"),
    ("tasks=300", lambda cfg: cfg.update(tasks=cfg["tasks"] * 100), "tasks has 300 entries, more than the 64"),
    ("min_peak_distance=1e5", lambda cfg: cfg["postprocess"]["instances"].update(min_peak_distance=10**5),
     "min_peak_distance must be a whole number >= 1 and <= 1000"),
    ("integer of 30 digits", _set("network", "depth", 10**30), "is not valid JSON (it holds an integer of 31 digits"),
]


@pytest.mark.parametrize("change, message", [h[1:] for h in HUGE], ids=[h[0] for h in HUGE])
def test_a_config_that_asks_for_too_much_is_refused_before_anything_is_built(model, change, message, tripwire,
                                                                             capsys):
    _edit(model, change)
    with pytest.raises(ModelFileError) as err:
        load_model(model)
    text = str(err.value)
    assert text.startswith(f"{model}: config.json") and message in text and "\n" not in text, text
    one_line_error(capsys, main(["info", "--model", str(model)]), message)


def test_predict_and_resume_refuse_it_too(model, data, tmp_path, tripwire, capsys):
    _edit(model, _set("tasks", "n_classes", 10**9, 0))
    out = tmp_path / "p.tif"
    code = main(["predict", "--model", str(model), "--image", str(data.parent / "synthetic_000.tif"), "--out",
                 str(out), "--quiet"])
    one_line_error(capsys, code, "n_classes must be a whole number <= 1024")
    assert not out.exists()
    _edit(model, lambda cfg: (_set("tasks", "n_classes", 2, 0)(cfg), _set("network", "base_channels", 3000)(cfg)))
    args = ["train", "--data", str(data), "--model", str(model), "--resume"] + TRAIN
    args[args.index("--steps") + 1] = "5"
    one_line_error(capsys, main(args), "base_channels must be a whole number >= 1 and <= 512")


def test_parameters_are_counted_exactly_without_building():
    from napari_lazylabels.engine.config import PRESETS, NetworkConfig
    from napari_lazylabels.engine.model import LazyUNet, count_parameters, network_size
    from napari_lazylabels.engine.tasks import MixtureHead, TaskSpec
    tasks = [TaskSpec("a", 3, "plain", mixture=MixtureHead(components=2, statistics=1)), TaskSpec("b", 2, "local"),
             TaskSpec("c", 2, "boundary")]
    for net in [*PRESETS.values(), NetworkConfig(multitask=False, in_channels=3, convs_per_block=3)]:
        built = LazyUNet(net, tasks)
        assert network_size(net, tasks) == (count_parameters(built), sum(b.numel() for b in built.buffers()))


def test_a_too_large_network_is_refused_from_python_too():
    """build_model refuses 5 billion parameters (checked in a child process with 3 GiB of address space: before
    the change it began to allocate them)."""
    code = """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        from napari_lazylabels.engine.config import NetworkConfig
        from napari_lazylabels.engine.model import build_model
        from napari_lazylabels.engine.tasks import TaskSpec
        build_model(NetworkConfig(depth=8, base_channels=512), [TaskSpec("a", 2, "plain")])
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert "SettingsError: this network and its heads have" in done.stderr, done.stderr[-2000:]
    assert "parameters, more than the 200,000,000 a network may have" in done.stderr


def test_a_huge_whole_number_setting_is_one_line(data, capsys, tmp_path):
    """math.isfinite overflowed on a 400-digit --seed (a traceback)."""
    from napari_lazylabels.engine.config import TrainConfig
    with pytest.raises(SettingsError, match="steps must be a whole number >= 1, got a number of about 401 digits"):
        TrainConfig(steps=-10**400)
    code = main(["train", "--data", str(data), "--model", str(tmp_path / "m"), "--seed", "1" + "0" * 400])
    one_line_error(capsys, code, "seed must be a whole number >= 0 and <= 4294967295, got a number of about 401")


# ----------------------------------------------------------------- JSON

@pytest.mark.parametrize("text, message", [
    ("[" * 100000 + "]" * 100000, f"more than {MAX_JSON_DEPTH} levels deep"),     # Python's parser: RecursionError
    ('{"a": ' * 100 + "1" + "}" * 100, f"more than {MAX_JSON_DEPTH} levels deep"),  # parsed, then measured
    ("[" + "9" * 5000 + "]", "an integer of 5000 digits"),                      # Python refuses beyond 4300 digits
    ("[" + "9" * 40 + "]", "an integer of 40 digits"),                           # would overflow a float
])
def test_json_beyond_the_limits_is_one_line(model, text, message, tripwire, capsys):
    with pytest.raises(ValueError, match=message):
        parse_json(text)
    (model / CONFIG_FILE).write_text(text)
    one_line_error(capsys, main(["info", "--model", str(model)]), "config.json is not valid JSON", message)


def test_json_of_ordinary_depth_and_numbers_is_read():
    assert parse_json('{"a": [[1, -9223372036854775807, 2.5e300]]}') == {"a": [[1, -9223372036854775807, 2.5e300]]}
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None


def test_a_config_larger_than_the_limit_is_not_read(model, tripwire, monkeypatch, capsys):
    cfg = json.loads((model / CONFIG_FILE).read_text())
    cfg["provenance"]["padding"] = "x" * MAX_JSON_BYTES
    (model / CONFIG_FILE).write_text(json.dumps(cfg))
    monkeypatch.setattr(json, "loads", lambda *a, **k: pytest.fail("parsed before the size check"))
    one_line_error(capsys, main(["info", "--model", str(model)]), "config.json is larger than the 4.0 MiB")


def test_read_bytes_never_reads_beyond_its_limit(tmp_path):
    f = tmp_path / "a.json"
    f.write_bytes(b"x" * 100)
    with pytest.raises(ImageReadError, match="larger than the 50 bytes"):
        read_bytes(f, 50)
    assert read_bytes(f, 100) == b"x" * 100
    with pytest.raises(ImageReadError, match="lost"):
        read_json(tmp_path / "none.json", missing="lost")


# ----------------------------------------------------------------- zip members

def _declare_size(archive, member: str, size: int) -> None:
    """Make ``member`` of the zip file ``archive`` declare ``size`` bytes uncompressed in the zip's directory
    (what zipfile trusts), without the bytes: a small zip that claims gigabytes."""
    data = bytearray(archive.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46: at + 46 + name_len]).decode() == member:
            struct.pack_into("<I", data, at + 24, size)
            archive.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise KeyError(member)


def _package(path, model_dir, change=None) -> None:
    """A bioimage.io package as `lazylabels export` writes it, as far as predict reads it back."""
    from safetensors.torch import load_file
    cfg = json.loads((model_dir / CONFIG_FILE).read_text())
    if change is not None:
        change(cfg)
    weights = io.BytesIO()
    torch.save(load_file(str(model_dir / modelio.WEIGHTS_FILE)), weights)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rdf.yaml", "format_version: 0.5.3\n")
        zf.writestr(PACKAGE_CONFIG, json.dumps({**cfg, "weights": PACKAGE_WEIGHTS}))
        zf.writestr(PACKAGE_WEIGHTS, weights.getvalue())


def test_a_package_reads_back(model_dir, tmp_path):
    _package(tmp_path / "p.zip", model_dir)
    assert load_model(tmp_path / "p.zip").task_names == load_model(model_dir).task_names


@pytest.mark.parametrize("member, message", [
    (PACKAGE_CONFIG, f"the package's {PACKAGE_CONFIG} declares 2.0 GiB uncompressed, more than the 4.0 MiB"),
    (PACKAGE_WEIGHTS, f"the package's {PACKAGE_WEIGHTS} declares 2.0 GiB uncompressed, more than the 16.0 MiB"),
])
def test_a_zip_member_that_declares_2_gib_is_refused_unread(model_dir, tmp_path, member, message, tripwire, capsys):
    package = tmp_path / "p.zip"
    _package(package, model_dir)
    _declare_size(package, member, 2**31)
    assert package.stat().st_size < 100_000
    one_line_error(capsys, main(["info", "--model", str(package)]), str(package), message)


def test_a_hostile_config_inside_a_package_is_refused(model_dir, tmp_path, tripwire, capsys):
    package = tmp_path / "p.zip"
    _package(package, model_dir, _set("network", "base_channels", 3000))
    one_line_error(capsys, main(["info", "--model", str(package)]), "base_channels must be a whole number >= 1 and "
                                                                     "<= 512", "(in the package)")


def test_a_training_state_that_declares_gigabytes_is_refused_unread(model, data, no_unpickling, capsys):
    _declare_size(model / STATE_FILE, next(n for n in zipfile.ZipFile(model / STATE_FILE).namelist()
                                           if n.endswith("data.pkl")), 2**31)
    args = ["train", "--data", str(data), "--model", str(model), "--resume"] + TRAIN
    args[args.index("--steps") + 1] = "5"
    one_line_error(capsys, main(args), "training_state.pt declares 2.0 GiB uncompressed")


def test_check_zip_members_adds_the_declared_sizes(tmp_path):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a", b"x" * 600)
        zf.writestr("b", b"x" * 600)
    with zipfile.ZipFile(path) as zf:
        assert check_zip_members(zf, 1200, "a.zip") == 1200
        assert check_zip_members(zf, 600, "a.zip", names=["b"]) == 600
        with pytest.raises(LazyLabelsError, match="declares 1.2 KiB"):
            check_zip_members(zf, 1000, "a.zip")


# ----------------------------------------------------------------- only regular files

@posix_only
def test_regular_file_says_what_else_a_path_is(tmp_path):
    fifo = tmp_path / "a.tif"
    os.mkfifo(fifo)
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    (tmp_path / "dir.tif").mkdir()
    cases = [(fifo, "is a FIFO (named pipe), not an image file (only regular files are read)"),
             (tmp_path / "zero.csv", "is a character device, not an image file"),
             (tmp_path / "dir.tif", "is a folder, not an image file"),
             (tmp_path / "none.tif", "file not found")]
    for path, message in cases:
        with pytest.raises(ImageReadError, match=message.replace("(", r"\(").replace(")", r"\)")):
            regular_file(path, "an image file")
    (tmp_path / "ok.tif").write_bytes(b"1")
    assert regular_file(tmp_path / "ok.tif").st_size == 1


#: One child process runs every command that would hang (a FIFO) or grow without end (/dev/zero) before the
#: change; each prints its exit status and what it wrote on stderr as one JSON line.
_CHILD = textwrap.dedent("""
    import contextlib, io, json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))   # a regression fails, it does not eat the machine
    from napari_lazylabels.cli import main
    for case, args in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
        print(json.dumps({"case": case, "code": code, "err": err.getvalue()}), flush=True)
""")


def run_in_child(cases: dict) -> dict:
    """Each command of ``cases`` (name -> arguments) in one child process (:data:`_CHILD`) with a time limit:
    name -> {"code", "err"} of those that finished."""
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(list(cases.items()))], capture_output=True,
                              text=True, timeout=300)
        out = done.stdout
    except subprocess.TimeoutExpired as exc:                  # a hang: the cases that finished still count
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    return {r["case"]: r for r in map(json.loads, filter(None, out.splitlines()))}


@pytest.fixture(scope="module")
def not_regular(model_dir, dataset, tmp_path_factory):
    """What each command says about a FIFO, /dev/zero or a folder where a file is expected (case -> code, err)."""
    if not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"):
        pytest.skip("FIFOs and /dev/zero need POSIX")
    d = tmp_path_factory.mktemp("hostile")
    os.mkfifo(d / "fifo.tif")
    os.mkfifo(d / "manifest.csv")
    (d / "zero.csv").symlink_to("/dev/zero")
    (d / "with_fifo.csv").write_text("image,detection,separation,segmentation\nfifo.tif,,,\n")
    for name, wrong in (("m_fifo", CONFIG_FILE), ("m_zero", modelio.WEIGHTS_FILE), ("m_dir", STATE_FILE)):
        shutil.copytree(model_dir, d / name)
        (d / name / wrong).unlink()
        if name == "m_fifo":
            os.mkfifo(d / name / wrong)
        elif name == "m_zero":
            (d / name / wrong).symlink_to("/dev/zero")
        else:
            (d / name / wrong).mkdir()
    image = str(d / "fifo.tif")
    train = ["--steps", "3", "--preset", "tiny", "--device", "cpu", "--quiet"]
    cases = {
        "--data /dev/zero": ["train", "--data", "/dev/zero", "--model", str(d / "a")] + train,
        "manifest linked to /dev/zero": ["train", "--data", str(d / "zero.csv"), "--model", str(d / "b")] + train,
        "FIFO as manifest.csv": ["train", "--data", str(d / "manifest.csv"), "--model", str(d / "c")] + train,
        "FIFO *.tif in a manifest": ["train", "--data", str(d / "with_fifo.csv"), "--model", str(d / "e")] + train,
        "FIFO *.tif to --image": ["predict", "--model", str(model_dir), "--image", image, "--out", str(d / "o.tif"),
                                  "--quiet"],
        "FIFO *.tif to --image, a batch": ["predict", "--model", str(model_dir), "--image", image,
                                           str(d / "zero.csv"), "--outdir", str(d / "out"), "--quiet"],
        "FIFO *.tif to --in-memory": ["predict", "--model", str(model_dir), "--image", image, "--out",
                                      str(d / "o2.tif"), "--in-memory", "--quiet"],
        "/dev/zero to --image": ["predict", "--model", str(model_dir), "--image", "/dev/zero", "--out",
                                 str(d / "o3.tif"), "--quiet"],
        "FIFO as config.json": ["info", "--model", str(d / "m_fifo")],
        "weights linked to /dev/zero": ["info", "--model", str(d / "m_zero")],
        "folder as training_state.pt": ["train", "--data", str(dataset), "--model", str(d / "m_dir"), "--resume",
                                        "--steps", "5", "--patch-size", "32", "--batch-size", "2", "--device", "cpu",
                                        "--quiet"],
    }
    return run_in_child(cases)


NOT_REGULAR = [
    ("--data /dev/zero", "/dev/zero: is a character device, not a manifest"),
    ("manifest linked to /dev/zero", "zero.csv: is a character device, not a manifest"),
    ("FIFO as manifest.csv", "manifest.csv: is a FIFO (named pipe), not a manifest"),
    ("FIFO *.tif in a manifest", "fifo.tif: is a FIFO (named pipe), not an image file"),
    ("FIFO *.tif to --image", "fifo.tif: is a FIFO (named pipe), not an image file"),
    ("FIFO *.tif to --image, a batch", "fifo.tif: is a FIFO (named pipe), not an image file"),
    ("FIFO *.tif to --in-memory", "fifo.tif: is a FIFO (named pipe), not an image file"),
    ("/dev/zero to --image", "/dev/zero: is a character device, not an image file"),
    ("FIFO as config.json", "config.json is a FIFO (named pipe), not a model config"),
    ("weights linked to /dev/zero", "model.safetensors is a character device, not a weights file"),
    ("folder as training_state.pt", "training_state.pt is a folder, not a training state"),
]


@pytest.mark.parametrize("case, message", NOT_REGULAR, ids=[c for c, _ in NOT_REGULAR])
def test_no_regular_file_is_one_line_and_never_hangs(not_regular, case, message):
    assert case in not_regular, f"{case}: did not finish within the time limit (it hangs or ran out of memory)"
    result = not_regular[case]
    err = result["err"].strip()
    assert result["code"] == 2 and "Traceback" not in err, err
    line = next((ln for ln in err.splitlines() if ln.startswith("lazylabels: error:")), err)
    assert message in line, err
