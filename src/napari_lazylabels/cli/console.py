"""Terminal progress for the command line and the demo (tqdm on stderr)."""

from __future__ import annotations

import sys

from ..recipes.train import TrainingRun


def progress_bar(total: int, desc: str, quiet: bool, unit: str = "step"):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, dynamic_ncols=True, file=sys.stderr)


def run_training(run: TrainingRun, quiet: bool) -> None:
    """Drive a training run with a progress bar; Ctrl-C stops it with a checkpoint."""
    bar = progress_bar(run.config.steps, "training", quiet)
    bar.update(run.step)
    try:
        for report in run.run():
            bar.update(1)
            if report.step % 5 == 0 or report.done:
                shown = {k[:3]: f"{v:.3f}" for k, v in report.losses.items() if v == v}
                bar.set_postfix(loss=f"{report.loss:.3f}", **shown)
    except KeyboardInterrupt:
        bar.close()
        checkpoint = run.save_checkpoint()
        if checkpoint is not None:
            print(f"interrupted at step {run.step}; checkpoint in {checkpoint}; continue with --resume",
                  file=sys.stderr)
        raise
    bar.close()
