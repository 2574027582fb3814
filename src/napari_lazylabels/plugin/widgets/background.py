"""Run one function off the GUI thread and hand its result back on the GUI thread.

A :class:`~napari_lazylabels.plugin.background.CallJob` does the work in a
background thread (the same mechanism training uses); a QTimer owned by the
widget drains it, so nothing is delivered to a widget that has been deleted
(its timer dies with it).
"""

from __future__ import annotations

from typing import Any, Callable

from qtpy.QtCore import QObject, QTimer

from ..background import CallJob, Done, Failed


class BackgroundCall(QObject):
    """One background call at a time; ``on_done(result)`` or ``on_error(message)`` on the GUI thread."""

    def __init__(self, parent: QObject, poll_ms: int = 50):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self._poll)
        self._job: CallJob | None = None
        self._callbacks: tuple[Callable, Callable] | None = None

    @property
    def busy(self) -> bool:
        return self._job is not None

    def start(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
              on_error: Callable[[str], None]) -> None:
        if self.busy:
            raise RuntimeError("a background call is already running")
        self._callbacks = (on_done, on_error)
        self._job = CallJob(fn)
        self._job.start()
        self._timer.start()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the call ends (used when the viewer closes)."""
        if self._job is not None:
            self._job.join(timeout)

    def _poll(self) -> None:
        job = self._job
        if job is None or job.is_alive():
            return
        self._timer.stop()
        self._job = None
        on_done, on_error = self._callbacks or (None, None)
        self._callbacks = None
        for msg in job.drain():
            if isinstance(msg, Done):
                on_done(msg.result)
            elif isinstance(msg, Failed):
                on_error(msg.message)
