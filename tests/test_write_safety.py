"""Nothing lost, nothing hidden (issue 9, items 1-5 and 13): --overwrite replaces only model folders and never
the data, a run owns its model folder (lock file), an interrupted --overwrite keeps the old model, an
interrupted save is recovered, unwritable targets are refused before the work, and outputs follow the umask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from napari_lazylabels.cli import main
from napari_lazylabels.io.modelio import load_model, load_training_state

from test_cli import TRAIN, one_line_error, write_dataset
from test_training_safety import last_line_error


@pytest.fixture
def data(small_lazy_set, tmp_path):
    items, _ = small_lazy_set
    return write_dataset(tmp_path / "D", items[:3])


def _train(data, model, *extra):
    return main(["train", "--data", str(data), "--model", str(model)] + TRAIN + list(extra))


def _ok(capsys, code):
    """A command that worked (its output is dropped, so that the next check sees only its own)."""
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _steps(model) -> int:
    return json.loads((Path(model) / "config.json").read_text())["provenance"]["trained_steps"]


def _python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


# ----------------------------------------------------------------- 1. --overwrite replaces only a model folder

def test_overwrite_never_deletes_the_training_data(data, capsys):
    """`train --data D/manifest.csv --model D --overwrite` used to leave D with the model files only."""
    folder = data.parent
    before = _tree(folder)
    one_line_error(capsys, _train(data, folder, "--overwrite"), str(folder), "not a napari-lazylabels model folder")
    assert _tree(folder) == before


def test_overwrite_refuses_a_model_folder_holding_the_data(data, tmp_path, capsys):
    model = tmp_path / "m"
    _ok(capsys, _train(data, model))
    (model / "manifest.csv").write_text(data.read_text().replace("synthetic", str(data.parent / "synthetic")))
    before = _tree(model)
    one_line_error(capsys, _train(model / "manifest.csv", model, "--overwrite"), "this run trains on")
    assert _tree(model) == before


def test_overwrite_refuses_other_folders_and_replaces_models(data, tmp_path, capsys):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    one_line_error(capsys, _train(data, mine, "--overwrite"), "only replaces")
    assert (mine / "thesis.txt").read_text() == "precious"
    model = tmp_path / "m"
    _ok(capsys, _train(data, model))
    _ok(capsys, _train(data, model, "--overwrite", "--seed", "3"))          # a model folder is replaced
    assert json.loads((model / "config.json").read_text())["provenance"]["train_config"]["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D", "m", "notes"]   # no lock, no partial left


def test_save_model_overwrite_replaces_only_a_model(data, tmp_path):
    """napari's Save model... asks before --overwrite; even then a folder of other files is left alone."""
    from napari_lazylabels.errors import OutputExistsError
    from napari_lazylabels.io.modelio import save_model
    model = tmp_path / "m"
    assert _train(data, model) == 0
    loaded = load_model(model)
    home = tmp_path / "home"
    home.mkdir()
    (home / "photo.png").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="only replaces"):
        save_model(loaded, home, overwrite=True)
    assert (home / "photo.png").exists()
    save_model(loaded, model, overwrite=True)


def test_predict_and_demo_overwrite_only_their_own_outputs(data, tmp_path, capsys):
    model = tmp_path / "m"
    _ok(capsys, _train(data, model))
    folder = tmp_path / "mine.zarr"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    code = main(["predict", "--model", str(model), "--image", str(data.parent / "synthetic_000.tif"),
                 "--out", str(folder), "--overwrite", "--quiet"])
    one_line_error(capsys, code, "not an OME-Zarr store")
    assert (folder / "keep.txt").exists()
    code = main(["demo", "--out", str(data.parent), "--overwrite", "--steps", "1", "--quiet"])
    one_line_error(capsys, code, "not a demo output folder")
    assert (data.parent / "manifest.csv").exists()


# ----------------------------------------------------------------- 2. a run owns its model folder

def test_a_second_run_into_the_same_model_is_refused(data, tmp_path):
    """Two `lazylabels train` into the same new --model both used to succeed, the second replacing the first."""
    model = tmp_path / "m"
    code = f"import sys; from napari_lazylabels.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["train", "--data", str(data), "--model", str(model), "--preset", "tiny", "--device", "cpu",
            "--patch-size", "32", "--batch-size", "2", "--quiet"]
    first = subprocess.Popen([sys.executable, "-c", code, *args, "--steps", "100000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / ".m.lock"
        deadline = time.monotonic() + 60
        while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run([sys.executable, "-c", code, *args, "--steps", "2"], capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        err = second.stderr.strip().splitlines()[-1]
        assert err.startswith("lazylabels: error:") and "in use by another training run" in err, err
        assert f"pid {first.pid}" in err
    finally:
        first.terminate()
        first.communicate(timeout=120)
    assert first.returncode == 143                     # SIGTERM: checkpoint written, then exit
    assert not lock.exists() and load_model(model).provenance["trained_steps"] > 2


def test_lock_file_owner_stale_and_foreign(tmp_path, recwarn):
    from napari_lazylabels.errors import InUseError, LazyLabelsWarning
    from napari_lazylabels.io.locks import FolderLock, lock_path
    target = tmp_path / "m"
    with FolderLock(target) as held:
        owner = json.loads(lock_path(target).read_text())
        assert owner["pid"] == os.getpid() and owner["token"] == held.token
        with pytest.raises(InUseError, match=f"pid {os.getpid()}"):
            FolderLock(target).acquire()
    assert not lock_path(target).exists()
    # a lock left by a process that has ended is taken over, with a warning
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    lock_path(target).write_text(json.dumps({**owner, "pid": int(dead), "token": "old"}))
    with pytest.warns(LazyLabelsWarning, match=f"took over the lock .*pid {dead}"):
        FolderLock(target).acquire().release()
    # another host's lock is never taken over: the error says which file to delete
    lock_path(target).write_text(json.dumps({**owner, "host": "0badc0de", "hostname": "node7", "token": "x"}))
    with pytest.raises(InUseError, match="node7.*delete .*\\.m\\.lock"):
        FolderLock(target).acquire()
    # a lock an earlier run of this process never released (no longer held) is taken over
    lock_path(target).write_text(json.dumps({**owner, "token": "forgotten"}))
    with pytest.warns(LazyLabelsWarning, match="took over"):
        FolderLock(target).acquire().release()


def test_a_stale_lock_is_taken_over_by_train(data, tmp_path, capsys):
    from napari_lazylabels.io.atomic import HOST_ID
    (tmp_path / ".m.lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": HOST_ID, "hostname": "here",
                                                  "started": "yesterday", "token": "t"}))
    assert _train(data, tmp_path / "m") == 0
    err = capsys.readouterr().err
    assert "lazylabels: warning:" in err and "took over the lock" in err
    assert not (tmp_path / ".m.lock").exists()


def test_the_run_checks_the_folder_again_once_it_holds_the_lock(small_lazy_set, tiny_network, quick_config,
                                                                tmp_path):
    """The CLI checks before reading the data; a run that finished meanwhile must not be replaced."""
    from napari_lazylabels.errors import OutputExistsError
    from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun
    items, _ = small_lazy_set
    first = TrainingRun(TrainingPlan(items, network=tiny_network, config=quick_config, model_dir=tmp_path / "m"))
    second = TrainingRun(TrainingPlan(items, network=tiny_network, config=quick_config, model_dir=tmp_path / "m"))
    list(first.run())
    with pytest.raises(OutputExistsError, match="exists"):
        list(second.run())
    assert load_training_state(tmp_path / "m").step == quick_config.steps


# ----------------------------------------------------------------- 3. an interrupted --overwrite keeps the model

def _interrupt_at(monkeypatch, step: int):
    from napari_lazylabels.engine.training.trainer import Trainer
    real = Trainer._train_step

    def train_step(self):
        if self.step == step:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(Trainer, "_train_step", train_step)


def test_ctrl_c_during_overwrite_keeps_the_old_model(data, tmp_path, capsys, monkeypatch):
    model = tmp_path / "m"
    _ok(capsys, _train(data, model))
    before = _tree(model)
    _interrupt_at(monkeypatch, 2)
    assert _train(data, model, "--overwrite", "--steps", "6") == 130
    err = capsys.readouterr().err
    assert "still holds the previous model" in err and "m.partial" in err
    assert _tree(model) == before                                          # the good model, untouched
    assert load_training_state(tmp_path / "m.partial").step == 2           # the interrupted run, for --resume
    monkeypatch.undo()
    assert _train(data, model, "--resume", "--steps", "6") == 0
    assert "continuing the interrupted run" in capsys.readouterr().err
    assert _steps(model) == 6 and len(load_training_state(model).history["total"]) == 6
    assert not (tmp_path / "m.partial").exists()


def test_an_interrupted_run_for_a_model_is_not_silently_replaced(data, tmp_path, capsys, monkeypatch):
    model = tmp_path / "m"
    _ok(capsys, _train(data, model))
    _interrupt_at(monkeypatch, 1)
    assert _train(data, model, "--overwrite") == 130
    capsys.readouterr()
    monkeypatch.undo()
    import shutil
    shutil.rmtree(model)
    one_line_error(capsys, _train(data, model), "m.partial", "--resume")
    assert _train(data, model, "--overwrite", "--seed", "5") == 0 and not (tmp_path / "m.partial").exists()
    assert json.loads((model / "config.json").read_text())["provenance"]["train_config"]["seed"] == 5


# ----------------------------------------------------------------- 4. an interrupted save is recovered

KILL_AT_LAST_RENAME = """
    import os, sys
    from pathlib import Path
    from napari_lazylabels.io import atomic
    target = Path(sys.argv[1])
    real = os.rename

    def rename(src, dst):
        if Path(dst) == target:
            os._exit(9)                     # killed between moving the old folder aside and the new one in
        return real(src, dst)

    atomic.os.rename = rename
"""


def test_a_kill_between_the_renames_of_a_save_is_recovered(data, tmp_path, capsys):
    model = tmp_path / "m"
    _ok(capsys, _train(data, model))
    code = KILL_AT_LAST_RENAME + f"""
    from napari_lazylabels.io.modelio import load_model, save_model
    from napari_lazylabels.io.modelio import load_training_state
    save_model(load_model(target), target, overwrite=True, training_state=load_training_state(target))
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(model)], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert not model.exists() and any(p.name.startswith(".m.") for p in tmp_path.iterdir())
    args = ["train", "--data", str(data), "--model", str(model), "--resume"] + TRAIN
    args[args.index("--steps") + 1] = "5"
    assert main(args) == 0                                  # used to be "model directory not found"
    assert "put back" in capsys.readouterr().err
    assert _steps(model) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D", "m"]        # no leftovers


def test_recovery_of_each_leftover_state(tmp_path, monkeypatch):
    from napari_lazylabels.io import atomic
    from napari_lazylabels.io.atomic import atomic_write_dir, recover

    def write(text):
        return lambda tmp: (tmp / "f.txt").write_text(text)

    target = tmp_path / "out"
    atomic_write_dir(target, write("one"))
    dead = int(_python("import os; print(os.getpid())").stdout)
    owner = f"{dead}-{atomic.HOST_ID}"
    # killed after the old folder was moved aside, before the complete new one was moved in
    os.rename(target, tmp_path / f".out.old-{owner}-aaaa")
    (tmp_path / f".out.new-{owner}-aaaa").mkdir()
    (tmp_path / f".out.new-{owner}-aaaa" / "f.txt").write_text("two")
    with pytest.warns(UserWarning, match="put back the version of the interrupted save"):
        recover(target)
    assert (target / "f.txt").read_text() == "two" and sorted(os.listdir(tmp_path)) == ["out"]
    # killed while the new folder was still being written: the old one is put back
    os.rename(target, tmp_path / f".out.old-{owner}-bbbb")
    (tmp_path / f".out.tmp-{owner}-cccc").mkdir()
    with pytest.warns(UserWarning, match="before the interrupted save"):
        recover(target)
    assert (target / "f.txt").read_text() == "two" and sorted(os.listdir(tmp_path)) == ["out"]
    # leftovers beside an intact folder are removed; those of live writers are left alone
    (tmp_path / f".out.tmp-{owner}-dddd").mkdir()
    live = tmp_path / f".out.tmp-{os.getppid()}-{atomic.HOST_ID}-eeee"
    live.mkdir()
    recover(target)
    assert sorted(os.listdir(tmp_path)) == [live.name, "out"]


KILL_IN_PREDICT = """
    import os, sys
    from napari_lazylabels.io import ome_zarr
    ome_zarr._write_probabilities = lambda *args, **kwargs: os._exit(9)
    from napari_lazylabels.cli import main
    main(sys.argv[1:])
"""


def test_a_killed_predict_leaves_nothing_for_long(data, tmp_path):
    model = tmp_path / "m"
    assert _train(data, model) == 0
    out = tmp_path / "p.zarr"
    args = ["predict", "--model", str(model), "--image", str(data.parent / "synthetic_000.tif"), "--out",
            str(out), "--quiet"]
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILL_IN_PREDICT), *args], capture_output=True,
                          text=True)
    assert proc.returncode == 9
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".p.zarr.tmp-")]
    assert main(args) == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".p.zarr")]


# ----------------------------------------------------------------- 5. unwritable targets, before the work

def _no_data_read(monkeypatch):
    import napari_lazylabels.io.manifest as manifest

    def fail(*a, **k):
        raise AssertionError("the data was read before the output was checked")

    monkeypatch.setattr(manifest, "load_manifest", fail)


def test_an_unwritable_model_folder_is_refused_before_training(data, tmp_path, capsys, monkeypatch):
    _no_data_read(monkeypatch)
    one_line_error(capsys, _train(data, data / "model"), "cannot be written", "not a folder")
    one_line_error(capsys, _train(data, "/proc/lazylabels-model"), "cannot be written")
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, _train(data, ".", "--overwrite"), "current folder")
    one_line_error(capsys, _train(data, "..", "--overwrite"), "current folder")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_refused_before_training(data, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        one_line_error(capsys, _train(data, ro / "m"), "not writable")
    finally:
        ro.chmod(0o755)


def test_a_full_disk_is_refused_before_the_work(data, tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple
    model = tmp_path / "m"
    _ok(capsys, _train(data, model))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    one_line_error(capsys, _train(data, tmp_path / "m2"), "not enough free space")
    assert not (tmp_path / "m2").exists()
    code = main(["predict", "--model", str(model), "--image", str(data.parent / "synthetic_000.tif"),
                 "--out", str(tmp_path / "p.zarr"), "--quiet"])
    one_line_error(capsys, code, "not enough free space")
    assert not (tmp_path / "p.zarr").exists()


def test_a_write_that_fails_midway_is_one_line(data, tmp_path, capsys, monkeypatch):
    """A disk that fills during training: the checkpoint's OSError becomes one line (exit 2)."""
    import errno

    from napari_lazylabels.recipes import train as recipe

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recipe, "save_model", full)
    last_line_error(capsys, _train(data, tmp_path / "m"), "could not save the model of step 3 (No space left on device)",
                    "no checkpoint was written before")


# ----------------------------------------------------------------- 13. the umask

@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask, folder, file", [(0o022, 0o755, 0o644), (0o002, 0o775, 0o664)])
def test_outputs_follow_the_umask(data, tmp_path, umask, folder, file):
    from napari_lazylabels.engine.synthetic import make_lazy_dataset
    from napari_lazylabels.io.manifest import write_manifest
    from napari_lazylabels.io.project import annotations_to_store, write_project
    previous = os.umask(umask)
    try:
        model = tmp_path / "m"
        assert _train(data, model) == 0
        image = str(data.parent / "synthetic_000.tif")
        for out in ("p.tif", "p.zarr"):
            assert main(["predict", "--model", str(model), "--image", image, "--out", str(tmp_path / out),
                         "--quiet"]) == 0
        write_manifest(tmp_path / "manifest.csv", [{"image": image}])
        items, _ = make_lazy_dataset(1, seed=0, shape=(32, 32))
        write_project(tmp_path / "project", [annotations_to_store(items[0])])
    finally:
        os.umask(previous)
    written = [model, tmp_path / "p.tif", tmp_path / "p.zarr", tmp_path / "manifest.csv", tmp_path / "project"]
    for top in written:
        for p in [top, *top.rglob("*")]:
            want = folder if p.is_dir() else file
            assert p.stat().st_mode & 0o777 == want, f"{p}: {oct(p.stat().st_mode & 0o777)}"
