"""Run under ``torchrun --nproc_per_node 2`` by tests/test_distributed.py: a tiny training run through the
recipe that records, after every step, a digest of each process's weights and buffers, and each process's
first batch of patches; first it tries a model folder that process 0 may not write (the test fills it).
Arguments: the output folder, the number of steps."""

import gc
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from napari_lazylabels.engine.config import TrainConfig, preset
from napari_lazylabels.engine.synthetic import make_lazy_dataset
from napari_lazylabels.errors import LazyLabelsError
from napari_lazylabels.recipes.train import TrainingPlan, TrainingRun


def plan(model_dir=None, steps=3) -> TrainingPlan:
    items, _ = make_lazy_dataset(4, seed=3, shape=(64, 64), strong_fraction=0.5)
    return TrainingPlan(items, network=preset("tiny"), model_dir=model_dir,
                        config=TrainConfig(steps=steps, patch_size=32, batch_size=2, device="cpu", seed=5))


def digest(network: torch.nn.Module) -> str:
    h = hashlib.sha1()
    for name, t in sorted(network.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main(out: Path, steps: int) -> None:
    try:                                 # a folder process 0 may not write: every process stops with it
        next(TrainingRun(plan(out / "taken", steps)).run())
        refused = None
    except LazyLabelsError as exc:
        refused = str(exc)
    run = TrainingRun(plan(out / "model", steps))
    rank = run.distributed.rank
    real = run.trainer.sampler.sample

    def sample(n):                       # the first batch each process draws, kept
        batch = real(n)
        if not (out / f"batch_{rank}.pt").exists():
            torch.save(batch, out / f"batch_{rank}.pt")
        return batch

    run.trainer.sampler.sample = sample
    record = {"initial": digest(run.trainer.network), "steps": []}
    torch.save({k: v.clone() for k, v in run.trainer.network.state_dict().items()}, out / f"initial_{rank}.pt")

    def after_step(trainer):
        digests = [None] * run.distributed.world_size
        dist.all_gather_object(digests, digest(trainer.network))
        record["steps"].append(digests)
        if trainer.step == 1:
            torch.save({k: v.clone() for k, v in trainer.network.state_dict().items()}, out / f"step1_{rank}.pt")

    run.trainer.add_hook(1, after_step)
    losses = [report.loss for report in run.run()]
    record.update(refused=refused, rank=rank, world=run.distributed.world_size, losses=losses, writer=run.is_writer)
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    del run, real, sample, after_step        # the DDP wrapper and its reducer go before the interpreter does
    gc.collect()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
