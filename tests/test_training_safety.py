"""Training that does not waste a run or hide a failure (issue 9, items 6, 7 and 14): a diverging run stops and
keeps its last finite checkpoint, SIGTERM is Ctrl-C, checkpoints are also time-based, and --resume says what
it ignores or cannot continue."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from napari_lazylabels.cli import main
from napari_lazylabels.io.modelio import STATE_FILE, load_model, load_training_state
from napari_lazylabels.recipes import train as recipe
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun

from test_cli import TRAIN, write_dataset


def last_line_error(capsys, code, *needles):
    """An error found once the work has started: what was printed before it, then one error line."""
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err, err
    last = err.splitlines()[-1]
    assert last.startswith("lazylabels: error:"), err
    for n in needles:
        assert n in last, last
    return last


@pytest.fixture
def data(small_lazy_set, tmp_path):
    items, _ = small_lazy_set
    return write_dataset(tmp_path / "D", items[:3])


def _run(small_lazy_set, tiny_network, config, model_dir, **kw):
    items, _ = small_lazy_set
    return TrainingRun(TrainingPlan(items, network=tiny_network, config=config, model_dir=model_dir, **kw))


# ----------------------------------------------------------------- 6. a run that diverges

def test_a_huge_learning_rate_stops_with_one_line_and_no_model(data, tmp_path, capsys):
    """`--lr 1e30` used to save a model of NaN weights with exit 0."""
    out = tmp_path / "m"
    code = main(["train", "--data", str(data), "--model", str(out), "--lr", "1e30"] + TRAIN[:1] + ["6"] + TRAIN[2:])
    last_line_error(capsys, code, "training stopped", "lower learning rate")
    assert not out.exists()


def test_a_non_finite_loss_keeps_the_last_finite_checkpoint(small_lazy_set, tiny_network, quick_config, tmp_path,
                                                            monkeypatch):
    from napari_lazylabels.errors import TrainingDivergedError
    run = _run(small_lazy_set, tiny_network, quick_config, tmp_path / "m")      # checkpoints every 3 steps
    real = run.trainer._train_step

    def step():
        loss, parts = real()
        return (float("nan"), parts) if run.trainer.step == 4 else (loss, parts)

    monkeypatch.setattr(run.trainer, "_train_step", step)
    with pytest.raises(TrainingDivergedError, match="the loss is nan at step 5.*kept in"):
        list(run.run())
    assert load_training_state(tmp_path / "m").step == 3
    assert load_model(tmp_path / "m").provenance["trained_steps"] == 3
    assert not (tmp_path / ".m.lock").exists()


def test_non_finite_weights_are_never_written(small_lazy_set, tiny_network, quick_config, tmp_path, monkeypatch):
    from napari_lazylabels.errors import TrainingDivergedError
    run = _run(small_lazy_set, tiny_network, dataclasses.replace(quick_config, checkpoint_every=100),
               tmp_path / "m")
    real = run.trainer._train_step

    def step():
        out = real()
        if run.trainer.step == 5:                   # the last step: its loss was still finite
            with torch.no_grad():
                next(run.trainer.network.parameters()).fill_(float("inf"))
        return out

    monkeypatch.setattr(run.trainer, "_train_step", step)
    with pytest.raises(TrainingDivergedError, match="weights hold NaN or infinite values.*nothing was written"):
        list(run.run())
    assert not (tmp_path / "m").exists()


# ----------------------------------------------------------------- 7. SIGTERM and time-based checkpoints

def test_sigterm_writes_a_checkpoint_like_ctrl_c(data, tmp_path):
    """A cluster scheduler's SIGTERM used to end training without a checkpoint."""
    model = tmp_path / "m"
    code = "import sys; from napari_lazylabels.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["train", "--data", str(data), "--model", str(model), "--preset", "tiny", "--device", "cpu",
            "--patch-size", "32", "--batch-size", "2", "--steps", "100000"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    steps = 0
    while steps < 1 and time.monotonic() < deadline and proc.poll() is None:
        line = proc.stderr.readline()           # tqdm's bar: "training: ... | 3/100000 [...", one per \r
        found = re.search(r"\| *(\d+)/100000", line)
        steps = int(found.group(1)) if found else 0
    assert steps >= 1, "training never reported a step"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM) at step" in err and "continue with --resume" in err
    assert load_training_state(model).step >= 1


def test_checkpoints_are_also_written_by_time(small_lazy_set, tiny_network, quick_config, tmp_path, monkeypatch):
    saves = []
    real = recipe.save_model
    monkeypatch.setattr(recipe, "save_model", lambda model, path, **kw: (
        saves.append(model.provenance["trained_steps"]), real(model, path, **kw))[1])
    cfg = dataclasses.replace(quick_config, checkpoint_every=1000, checkpoint_seconds=1e-9)
    reports = list(_run(small_lazy_set, tiny_network, cfg, tmp_path / "m").run())
    assert saves == [1, 2, 3, 4, 5, 6] and all(r.checkpoint for r in reports)
    saves.clear()
    cfg = dataclasses.replace(quick_config, checkpoint_every=1000, checkpoint_seconds=3600)
    list(_run(small_lazy_set, tiny_network, cfg, tmp_path / "m2").run())
    assert saves == [6]
    assert json.loads((tmp_path / "m2" / "config.json").read_text())["provenance"]["train_config"][
        "checkpoint_seconds"] == 3600


# ----------------------------------------------------------------- 14. what --resume ignores

def test_resume_says_it_ignores_preset(data, tmp_path, capsys):
    model = tmp_path / "m"
    assert main(["train", "--data", str(data), "--model", str(model)] + TRAIN) == 0
    args = ["train", "--data", str(data), "--model", str(model), "--resume"] + TRAIN[:1] + ["5"] + TRAIN[2:]
    assert main(args) == 0
    assert "warning" not in capsys.readouterr().err                 # the checkpoint's own preset: nothing to say
    args[args.index("--steps") + 1] = "7"
    assert main(args + ["--preset", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "lazylabels: warning: --preset cpu is ignored with --resume" in err
    assert load_model(model).network_config.depth == 3                # still the tiny network


def test_resume_without_training_state_says_it_restarts(data, tmp_path, capsys):
    model = tmp_path / "m"
    assert main(["train", "--data", str(data), "--model", str(model)] + TRAIN) == 0
    (model / STATE_FILE).unlink()
    assert main(["train", "--data", str(data), "--model", str(model), "--resume"] + TRAIN) == 0
    err = capsys.readouterr().err
    assert "lazylabels: warning:" in err and "from step 0" in err
