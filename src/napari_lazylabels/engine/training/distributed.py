"""Training on several processes (GPUs, or nodes) with PyTorch DDP, as ``torchrun`` launches it.

``torchrun --nproc_per_node N -m napari_lazylabels.cli.main train ...`` (or
any launcher that sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``) starts N copies of the same run. The
recipe finds them with :func:`from_environment` and gives the trainer a
:class:`DistributedContext`; then

* every process trains the same network on its own device (``cuda:LOCAL_RANK``,
  or the CPU with the gloo backend), wrapped in ``DistributedDataParallel``:
  the gradients are averaged over the processes, so the weights stay
  identical on all of them after every step (the normalisation statistics are
  broadcast from process 0 after each step too);
* each process draws its own patches (its sampler is seeded by the seed and
  its rank; process 0 draws exactly those of a single-process run), so one
  step of N processes sees N batches of ``batch_size`` patches;
* the reported losses are the means over the processes (so every process
  takes the same decision about a loss that is not finite);
* only process 0 (:attr:`DistributedContext.is_writer`) writes the lock
  file, the checkpoints and the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ...errors import LazyLabelsError

_MESSAGE_BYTES = 1000   # of the error process 0 shares (a tensor, not a pickle)


@dataclass
class DistributedContext:
    """One process of a distributed run."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def device(self, requested: str = "auto") -> torch.device:
        """This process's device: its GPU (``cuda:LOCAL_RANK``) with NCCL, else the CPU."""
        if self.backend == "nccl":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        if requested not in ("auto", "cpu"):
            raise LazyLabelsError(f"device {requested!r} is not available to a distributed run with the "
                                  f"{self.backend} backend (use --device cpu, or CUDA GPUs)")
        return torch.device("cpu")

    def wrap(self, network: torch.nn.Module) -> torch.nn.Module:
        """The network as this process trains it: ``DistributedDataParallel``."""
        from torch.nn.parallel import DistributedDataParallel
        ids = [self.local_rank] if self.backend == "nccl" else None
        return DistributedDataParallel(network, device_ids=ids, find_unused_parameters=True)

    def sync_buffers(self, network: torch.nn.Module) -> None:
        """Process 0's buffers (the running statistics of the normalisation) on every process."""
        import torch.distributed as dist
        for buffer in network.buffers():
            dist.broadcast(buffer, src=0)

    def average(self, loss: float, parts: dict[str, float]) -> tuple[float, dict[str, float]]:
        """The mean over the processes of the loss, and of each task's loss where it was computed
        (a task missing from a process's batch gives NaN there)."""
        import torch.distributed as dist
        names = sorted(parts)
        values = torch.tensor([loss] + [parts[n] for n in names], dtype=torch.float64)
        finite = torch.isfinite(values)
        total = values.clone()
        total[1:] = torch.where(finite[1:], values[1:], torch.zeros_like(values[1:]))
        counts = torch.cat([torch.ones(1, dtype=torch.float64), finite[1:].to(torch.float64)])
        both = torch.stack([total, counts])
        if self.backend == "nccl":
            both = both.cuda()
        dist.all_reduce(both)
        both = both.cpu()
        means = both[0] / torch.clamp(both[1], min=1)
        means[1:] = torch.where(both[1][1:] > 0, means[1:], torch.full_like(means[1:], float("nan")))
        return float(means[0]), {n: float(v) for n, v in zip(names, means[1:])}

    def share_start(self, error: BaseException | None) -> None:
        """Process 0 says whether it could start (its model folder checked and locked); the other
        processes wait for it and raise its one-line error if it could not. Called by every process
        (process 0 with its error or None, the others with None)."""
        import torch.distributed as dist
        message = torch.zeros(_MESSAGE_BYTES + 1, dtype=torch.uint8)
        if self.is_writer and error is not None:
            text = (str(error) or type(error).__name__).encode()[:_MESSAGE_BYTES]
            message[0] = 1
            message[1:1 + len(text)] = torch.frombuffer(bytearray(text), dtype=torch.uint8)
        if self.backend == "nccl":
            message = message.cuda()
        dist.broadcast(message, src=0)
        message = message.cpu()
        if not self.is_writer and int(message[0]):
            text = bytes(message[1:].numpy()).rstrip(b"\0").decode(errors="replace")
            raise LazyLabelsError(f"process 0 could not start: {text}")

    def close(self) -> None:
        """Leave the process group together: process 0 may still be fitting the instance settings and
        saving the model when the others finish their last step, and a peer that leaves early can abort
        it (gloo: "terminate called without an active exception")."""
        import torch.distributed as dist
        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def from_environment(device: str = "auto") -> DistributedContext | None:
    """The distributed run this process belongs to, from ``torchrun``'s environment (``WORLD_SIZE`` > 1);
    None for a single process. Starts the process group (NCCL for CUDA, else gloo) unless it is."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return None
    if world <= 1:
        return None
    import torch.distributed as dist
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device in ("auto", "cuda") and torch.cuda.is_available() else "gloo"
    if device == "cuda" and backend != "nccl":
        raise LazyLabelsError("device 'cuda' was asked for but no CUDA GPU is available")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    else:
        backend = dist.get_backend()
    return DistributedContext(rank, world, local, backend)
