"""What the terminal sees: exit statuses, progress bars (tqdm on stderr), a training run driven there."""

from __future__ import annotations

import sys

from ..recipes.train import TrainingRun

#: Exit statuses: a user error (one line on stderr), Ctrl-C, SIGTERM.
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + 15


def progress_bar(total: int, desc: str, quiet: bool, unit: str = "step"):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, dynamic_ncols=True, file=sys.stderr)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a cluster scheduler sends before it kills a job), handled like Ctrl-C."""


def run_training(run: TrainingRun, quiet: bool) -> None:
    """Drive a training run with a progress bar; Ctrl-C (or SIGTERM) stops it with a checkpoint."""
    bar = progress_bar(run.config.steps, "training", quiet)
    bar.update(run.step)
    try:
        for report in run.run():
            if report.total_steps != bar.total:     # the automatic budget has fixed the run's steps
                bar.total = report.total_steps
                bar.refresh()
            bar.update(1)
            if report.step % 5 == 0 or report.done:
                shown = {k[:3]: f"{v:.3f}" for k, v in report.losses.items() if v == v}
                bar.set_postfix(loss=f"{report.loss:.3f}", **shown)
    except KeyboardInterrupt as exc:
        bar.close()
        checkpoint = run.save_checkpoint()
        if checkpoint is not None:
            how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            kept = (f"; {run.model_dir} still holds the previous model" if run.model_dir is not None
                    and checkpoint != run.model_dir and run.model_dir.exists() else "")
            print(f"{how} at step {run.step}; checkpoint in {checkpoint}{kept}; continue with --resume",
                  file=sys.stderr)
        raise
    finally:
        bar.close()
