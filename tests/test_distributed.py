"""Training with PyTorch DDP as ``torchrun`` launches it: 2 CPU processes, the gloo backend, a tiny model
(tests/ddp_run.py is what each process runs).

What must match, and is checked:
* the weights (and the normalisation's running statistics) are identical on both processes after every
  step, and the model folder process 0 wrote holds them;
* the processes draw different patches (the sampler is sharded by rank), process 0 exactly those of a
  single-process run with the same seed;
* one step equals, within float tolerance, a single process that computes the gradient of each
  process's batch separately, averages them and takes the same Adam step (what DDP promises). A single
  run on the concatenated batch would not be the same: the loss is a mean over each batch's labelled
  pixels and the batch normalisation uses each process's own batch statistics;
* only process 0 writes, and a folder process 0 may not write stops every process with its error.
"""

import copy
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from napari_lazylabels.engine.training.losses import total_loss
from napari_lazylabels.engine.training.trainer import Trainer, learning_rate_at
from napari_lazylabels.io.modelio import load_model
from napari_lazylabels.recipes.train import TrainingRun

import ddp_run

pytestmark = pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")

STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    (out / "taken").mkdir()
    (out / "taken" / "notes.txt").write_text("the user's")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                         os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(Path(__file__).with_name("ddp_run.py")), str(out), str(STEPS)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_weights_identical_on_both_processes_and_in_the_model_written(ddp):
    out, (r0, r1) = ddp
    assert r0["world"] == r1["world"] == 2 and r0["initial"] == r1["initial"]
    assert len(r0["steps"]) == STEPS
    for a, b in r0["steps"]:
        assert a == b                        # both processes, after every step
    assert len({s[0] for s in r0["steps"]}) == STEPS   # and they did train
    assert r0["losses"] == r1["losses"]      # the losses reported are the means over the processes
    saved = load_model(out / "model")
    assert ddp_run.digest(saved.network) == r0["steps"][-1][0]
    assert saved.provenance["distributed"] == {"processes": 2, "backend": "gloo"}
    assert saved.provenance["trained_steps"] == STEPS


def test_only_process_0_writes_and_its_refusal_stops_all(ddp):
    out, (r0, r1) = ddp
    assert r0["writer"] and not r1["writer"]
    assert r0["refused"] and "notes.txt" not in os.listdir(out / "model")
    assert r1["refused"].startswith("process 0 could not start: ") and r0["refused"] in r1["refused"]
    assert os.listdir(out / "taken") == ["notes.txt"]


def test_the_sampler_is_sharded(ddp):
    out, _ = ddp
    b0, b1 = (torch.load(out / f"batch_{r}.pt") for r in (0, 1))
    assert not torch.equal(b0["image"], b1["image"])
    single = TrainingRun(ddp_run.plan(steps=STEPS)).trainer.sampler.sample(2)
    assert torch.equal(single["image"], b0["image"])


def test_one_step_is_the_average_of_the_two_gradients(ddp):
    out, _ = ddp
    run = TrainingRun(ddp_run.plan(steps=STEPS))
    trainer: Trainer = run.trainer
    initial = torch.load(out / "initial_0.pt")
    for k, v in trainer.network.state_dict().items():
        assert torch.equal(v, initial[k])     # the same seed builds the same network everywhere
    trainer.network.train()
    grads = []
    for rank in (1, 0):                       # process 0 last: its running statistics are the ones kept
        net = trainer.network if rank == 0 else copy.deepcopy(trainer.network)
        batch = torch.load(out / f"batch_{rank}.pt")
        loss, _ = total_loss(net(batch["image"]), batch, trainer.tasks, trainer.class_weights)
        loss.backward()
        grads.append({n: p.grad for n, p in net.named_parameters()})
    for name, p in trainer.network.named_parameters():
        g = [gr[name] for gr in grads]
        if all(x is None for x in g):
            p.grad = None
        else:
            p.grad = sum(torch.zeros_like(p) if x is None else x for x in g) / 2
    for group in trainer.optimizer.param_groups:
        group["lr"] = learning_rate_at(0, trainer.config)
    trainer.optimizer.step()
    after = torch.load(out / "step1_0.pt")
    for k, v in trainer.network.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, after[k], rtol=1e-4, atol=1e-5, msg=k)
        else:
            assert torch.equal(v, after[k]), k
    moved = max(float((after[k] - initial[k]).abs().max()) for k in after if after[k].is_floating_point())
    assert moved > 1e-4                       # the step did something the check can see
