"""A model save of a training run that failed (a full disk): one line on where the trained steps are.

The save is atomic (:mod:`~napari_lazylabels.io.atomic`): a failed one leaves
the folder it would have replaced as it was. So the run's last checkpoint is
still there (or the checkpoint it resumed from), and the model a run with
``--overwrite`` was to replace too; :func:`unsaved_error` says so, with the
step each holds, and how to go on.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import LazyLabelsError, OutputError

__all__ = ["unsaved_error"]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if isinstance(exc, LazyLabelsError) and exc.source and str(exc).startswith(f"{exc.source}: "):
        return str(exc)[len(exc.source) + 2:]
    return str(exc)


def unsaved_error(exc: BaseException, *, step: int, target: Path, kept: tuple[int, Path] | None,
                  model_dir: Path | None) -> OutputError:
    """The one-line error of a save of the model of ``step`` into ``target`` that failed with ``exc``.

    ``kept``: the step and folder of the last checkpoint on disk (None: there is none); ``model_dir``:
    the run's model folder, which still holds the previous model when the run was to replace it.
    """
    text = f"could not save the model of step {step} ({_reason(exc)})"
    if kept is not None and kept[1].exists():
        text += (f"; the last checkpoint (step {kept[0]}) is kept in {kept[1]}: make room, then continue it "
                 f"with --resume")
    else:
        text += "; no checkpoint was written before, so these steps are lost: make room and train again"
    if model_dir is not None and model_dir.exists() and (kept is None or model_dir.resolve() != kept[1].resolve()):
        text += f"; {model_dir} still holds the previous model"
    return OutputError(text, source=str(target))
