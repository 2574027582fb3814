"""The typed report a training run yields after each step."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainingProgress:
    """One training step's report.

    ``losses`` holds each task's loss at this step (NaN when no patch of the
    batch was annotated for it). ``checkpoint`` is the folder a checkpoint
    was written to after this step, if any (the recipe fills it in).
    """

    step: int
    total_steps: int
    loss: float
    losses: dict[str, float]
    learning_rate: float
    patches_per_s: float
    elapsed_s: float
    eta_s: float
    device: str
    checkpoint: str | None = None
    stopped: bool = False

    @property
    def done(self) -> bool:
        return self.stopped or self.step >= self.total_steps

    @property
    def fraction(self) -> float:
        return self.step / max(self.total_steps, 1)

    def summary(self) -> str:
        parts = " ".join(f"{k}={v:.3f}" for k, v in self.losses.items() if v == v)
        return (f"step {self.step}/{self.total_steps} loss={self.loss:.3f} {parts} "
                f"lr={self.learning_rate:.2e} {self.patches_per_s:.1f} patches/s eta {self.eta_s:.0f}s")
