"""How long a run trains: a budget that follows the hardware, and a stopping signal from the losses.

**The automatic budget** (``TrainConfig.time_limit_s``): the run times its first :data:`PROBE_STEPS`
steps (the warm-up, when the learning rate is still rising, so nothing of the schedule is spent), then
fixes its number of steps so that it ends within the time limit, at most :data:`MAX_AUTO_STEPS`.
The cosine schedule then spans exactly those steps, so the run ends decayed as a fixed-step run does.
A GPU thus trains many more steps in the same minutes than a 2-core CPU; what was chosen is said
(:class:`AutoBudget`, printed by the CLI and kept in the model's provenance).

**The loss trend** (:func:`loss_trend`): the relative change of the smoothed training loss (every
regime's loss together, the lazy labels' own, no held-out data) over the last tenth of the run. A
run whose loss still falls by more than :data:`STILL_LEARNING` per tenth would gain from more steps;
one within it has reached the plateau of its losses. Reported at the end of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Steps timed before the automatic budget is fixed.
PROBE_STEPS = 20
#: The most steps the automatic budget gives (the plateau measured on the hard sets at 8 x 128 px is
#: below it: docs/benchmarks.md).
MAX_AUTO_STEPS = 20000
#: The fewest steps the automatic budget gives, however slow the device.
MIN_AUTO_STEPS = 100
#: A loss that falls by more than this share over the last tenth of the run is still falling.
STILL_LEARNING = 0.02


@dataclass(frozen=True)
class AutoBudget:
    """What the automatic budget chose, and from what."""

    steps: int
    seconds_per_step: float
    time_limit_s: float
    capped: bool

    def summary(self) -> str:
        why = (f"the most it gives" if self.capped else
               f"{self.time_limit_s / 60:g} min at {self.seconds_per_step:.2f} s a step")
        return f"automatic budget: {self.steps} steps ({why})"

    def to_dict(self) -> dict:
        return {"steps": self.steps, "seconds_per_step": round(self.seconds_per_step, 4),
                "time_limit_s": self.time_limit_s, "capped": self.capped}


def choose_steps(done_steps: int, elapsed_s: float, time_limit_s: float) -> AutoBudget:
    """The number of steps that ends the run within ``time_limit_s``, after ``done_steps`` took
    ``elapsed_s``, between :data:`MIN_AUTO_STEPS` and :data:`MAX_AUTO_STEPS`."""
    per_step = max(elapsed_s, 1e-9) / max(done_steps, 1)
    steps = done_steps + int(max(0.0, time_limit_s - elapsed_s) / per_step)
    capped = steps > MAX_AUTO_STEPS
    steps = max(MIN_AUTO_STEPS, min(MAX_AUTO_STEPS, steps), done_steps)
    return AutoBudget(steps, per_step, time_limit_s, capped)


@dataclass(frozen=True)
class LossTrend:
    """The smoothed loss over the last two tenths of a run, and what that says."""

    before: float
    last: float
    steps: int

    @property
    def change(self) -> float:
        """The relative change from the second-to-last tenth to the last (negative: falling)."""
        return (self.last - self.before) / max(abs(self.before), 1e-12)

    @property
    def still_learning(self) -> bool:
        return self.change < -STILL_LEARNING

    def summary(self) -> str:
        if self.still_learning:
            return (f"the training loss still fell by {-100 * self.change:.0f} % over the last tenth of the run: "
                    f"more steps may give a better model")
        return (f"the training loss changed by {100 * self.change:+.1f} % over the last tenth of the run: "
                f"it has reached its plateau")


def loss_trend(losses: Sequence[float]) -> LossTrend | None:
    """The trend of the last tenth of ``losses`` (one per step) against the tenth before it (means of
    the finite values); None for runs of fewer than 50 steps."""
    values = np.asarray(losses, dtype=np.float64)
    if values.size < 50:
        return None
    tenth = max(5, values.size // 10)
    last, before = values[-tenth:], values[-2 * tenth:-tenth]
    last, before = last[np.isfinite(last)], before[np.isfinite(before)]
    if last.size == 0 or before.size == 0:
        return None
    b, a = float(before.mean()), float(last.mean())
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    return LossTrend(b, a, int(values.size))
