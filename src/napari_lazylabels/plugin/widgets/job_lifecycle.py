"""What keeps a background training run safe when its widget or window goes: the run is stopped and its
thread joined when the viewer's window closes (:class:`CloseWatcher`) or when Qt destroys the widget
(:class:`JobHolder`), so no thread outlives the viewer and the last checkpoint is kept."""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject

from ..training_worker import TrainingJob


class CloseWatcher(QObject):
    """Calls ``callback`` when the watched window gets a Close event."""

    def __init__(self, window, callback):
        super().__init__(window)
        self._callback = callback
        window.installEventFilter(self)

    def eventFilter(self, obj, event):  # noqa: N802 (Qt name)
        if event.type() == QEvent.Type.Close:
            self._callback()
        return False


class JobHolder:
    """The running job, reachable without the widget (for clean-up when the widget is destroyed).

    Called by the widget's ``destroyed`` signal. Qt calls it after the widget's
    Python side may be gone, so the holder is kept alive here, not by the widget.
    """

    alive: set = set()

    def __init__(self):
        self.job: TrainingJob | None = None
        JobHolder.alive.add(self)

    def __call__(self, *_args) -> None:
        abandon(self)
        JobHolder.alive.discard(self)


def abandon(holder: JobHolder) -> None:
    """Stop the job of a destroyed widget and wait for its thread (no Qt is touched)."""
    job, holder.job = holder.job, None
    if job is not None:
        job.spec.preview_image = None
        job.stop()
        job.join(60.0)
