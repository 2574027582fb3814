"""A disk that fills while the model is saved (issue 21, item 5): one line that says where the trained steps are,
the last checkpoint kept (resumable), the previous model untouched, the lock released.

On a real small tmpfs where this machine lets the tests mount one (root, Linux; skipped cleanly elsewhere), and at
the write layer (safetensors' and torch.save's own errors, simulated), which always runs."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import torch

from napari_lazylabels.cli import main
from napari_lazylabels.errors import OutputError
from napari_lazylabels.io import disk_errors, modelio
from napari_lazylabels.io.disk_errors import as_os_error
from napari_lazylabels.io.modelio import CONFIG_FILE, load_model, load_training_state
from napari_lazylabels.recipes import train as recipe
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

from test_cli import TRAIN, write_dataset
from test_training_safety import last_line_error

TMPFS_BYTES = 4 << 20


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MiB tmpfs mounted for this test (root on Linux); skipped where mounting is not allowed."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root on Linux")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(where)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def _fill(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` until ``leave`` bytes are left (or as near as its blocks allow)."""
    filler = folder / f"filler-{uuid.uuid4().hex}"
    with open(filler, "wb") as fh:
        while shutil.disk_usage(folder).free > leave:
            chunk = min(1 << 20, shutil.disk_usage(folder).free - leave)
            try:
                fh.write(b"\0" * max(chunk, 1))
                fh.flush()
            except OSError:
                break
    return filler


def _run(items, model_dir, quick_config, **kw) -> TrainingRun:
    from napari_lazylabels.engine.config import preset
    return TrainingRun(TrainingPlan(items, network=preset("tiny"), config=quick_config, model_dir=model_dir, **kw))


def _train_until_the_disk_fills(run: TrainingRun, folder: Path, leave: int) -> OutputError:
    """Run ``run``; before its last step (after its checkpoint at step 3), fill the disk; return the save's error."""
    with pytest.raises(OutputError) as err:
        for report in run.run():
            if report.step == run.config.steps - 1:
                _fill(folder, leave)
    return err.value


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".lock"))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("leave", [0, 40 << 10], ids=["full", "40 KiB left"])
@pytest.mark.parametrize("checked", [True, False], ids=["room checked first", "the write itself fails"])
def test_a_full_disk_at_the_final_save_keeps_the_last_checkpoint(small_lazy_set, quick_config, tmpfs, leave,
                                                                   checked, monkeypatch):
    if not checked:      # the room check passes: the write itself hits ENOSPC (safetensors' or torch.save's error)
        monkeypatch.setattr(recipe, "check_can_write", lambda path, need=0: Path(path))
    items, _ = small_lazy_set
    model = tmpfs / "m"
    run = _run(items, model, quick_config)
    error = _train_until_the_disk_fills(run, tmpfs, leave)
    text = str(error)
    assert "\n" not in text and text.startswith(f"{model}: could not save the model of step 6 ("), text
    assert ("not enough free space" if checked else "No space left on device") in text, text
    assert f"the last checkpoint (step 3) is kept in {model}: make room, then continue it with --resume" in text
    assert load_training_state(model).step == 3                  # the checkpoint, whole
    assert load_model(model).provenance["trained_steps"] == 3
    assert _leftovers(tmpfs) == []                               # no lock file, no half-written folder


def test_an_overwrite_run_that_cannot_save_leaves_the_old_model(small_lazy_set, quick_config, tmpfs):
    items, _ = small_lazy_set
    model = tmpfs / "m"
    for _ in _run(items, model, quick_config).run():
        pass
    before = _tree(model)
    run = _run(items, model, quick_config, overwrite=True)
    text = str(_train_until_the_disk_fills(run, tmpfs, 40 << 10))
    assert f"the last checkpoint (step 3) is kept in {model}.partial" in text, text
    assert f"{model} still holds the previous model" in text, text
    assert _tree(model) == before
    assert load_training_state(Path(f"{model}.partial")).step == 3
    assert _leftovers(tmpfs) == []


def _trained_then_resumed(small_lazy_set, tmp_path, model, capsys) -> list[str]:
    """A model of 3 steps trained into ``model`` by the CLI; the arguments that resume it up to step 5."""
    items, _ = small_lazy_set
    data = write_dataset(tmp_path / "D", items[:3])
    assert main(["train", "--data", str(data), "--model", str(model)] + TRAIN) == 0
    capsys.readouterr()
    args = ["train", "--data", str(data), "--model", str(model), "--resume"] + TRAIN
    args[args.index("--steps") + 1] = "5"
    return args


def test_the_cli_says_it_in_one_line_and_resume_finishes_the_run(small_lazy_set, tmpfs, tmp_path, capsys,
                                                                 monkeypatch):
    model = tmpfs / "m"
    args = _trained_then_resumed(small_lazy_set, tmp_path, model, capsys)
    final = TrainingRun._save_final
    filler: list[Path] = []

    def fill_then_save(self):
        filler.append(_fill(tmpfs, 40 << 10))
        return final(self)

    monkeypatch.setattr(TrainingRun, "_save_final", fill_then_save)
    last_line_error(capsys, main(args), f"{model}: could not save the model of step 5",
                    f"the last checkpoint (step 3) is kept in {model}")
    assert load_training_state(model).step == 3 and _leftovers(tmpfs) == []
    monkeypatch.setattr(TrainingRun, "_save_final", final)
    filler[0].unlink()
    assert main(args) == 0
    assert load_training_state(model).step == 5


# ----------------------------------------------------------------- the write layer, simulated (always runs)

def _safetensors_full(*a, **k):
    from safetensors import SafetensorError
    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")


def _torch_save_short(*a, **k):
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")


@pytest.mark.parametrize("writer, failure", [("save_file", _safetensors_full), ("torch_save", _torch_save_short)])
def test_a_serialiser_that_fails_on_a_full_disk_is_one_line(small_lazy_set, tmp_path, capsys, monkeypatch, writer,
                                                            failure):
    model = tmp_path / "m"
    args = _trained_then_resumed(small_lazy_set, tmp_path, model, capsys)
    config = (model / CONFIG_FILE).read_bytes()
    if writer == "save_file":
        monkeypatch.setattr(modelio, "save_file", failure)
    else:
        monkeypatch.setattr(torch, "save", failure)
        monkeypatch.setattr(disk_errors, "free_bytes", lambda folder: 4096)      # what a full disk has left
    last_line_error(capsys, main(args), "could not save the model of step 5 (No space left on device)",
                    f"the last checkpoint (step 3) is kept in {model}")
    assert (model / CONFIG_FILE).read_bytes() == config and not list(tmp_path.glob(".m.*"))


def test_serialiser_errors_map_to_os_errors(tmp_path):
    from safetensors import SafetensorError
    full = as_os_error(SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"),
                       tmp_path)
    assert isinstance(full, OSError) and full.errno == errno.ENOSPC
    short = as_os_error(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"),
                        tmp_path)                                      # this disk has room: not ENOSPC
    assert short.errno == errno.EIO and "unexpected pos 576 vs 534" in short.strerror
    assert as_os_error(RuntimeError("shape mismatch"), tmp_path) is None
    assert as_os_error(SafetensorError("tensors share memory"), tmp_path) is None
