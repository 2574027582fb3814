"""Run one function off the GUI thread and hand its result back on the GUI thread.

The function runs in a plain Python thread and never touches Qt; a QTimer
owned by the widget polls for the result, so nothing is delivered to a widget
that has been deleted (its timer dies with it).
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

from qtpy.QtCore import QObject, QTimer

from ...errors import LazyLabelsError


class BackgroundCall(QObject):
    """One background call at a time; ``on_done(result)`` or ``on_error(message)`` on the GUI thread."""

    def __init__(self, parent: QObject, poll_ms: int = 50):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self._poll)
        self._thread: threading.Thread | None = None
        self._outcome: tuple[str, Any] | None = None
        self._callbacks: tuple[Callable, Callable] | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
              on_error: Callable[[str], None]) -> None:
        if self.busy:
            raise RuntimeError("a background call is already running")
        self._outcome = None
        self._callbacks = (on_done, on_error)

        def work():
            try:
                self._outcome = ("ok", fn())
            except LazyLabelsError as exc:
                self._outcome = ("error", str(exc))
            except Exception as exc:  # shown to the user as a notification, never raised in Qt
                traceback.print_exc()
                self._outcome = ("error", f"{type(exc).__name__}: {exc}")

        self._thread = threading.Thread(target=work, daemon=True, name="lazylabels-background")
        self._thread.start()
        self._timer.start()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the call ends (used when the viewer closes)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _poll(self) -> None:
        if self._thread is None or self._thread.is_alive():
            return
        self._timer.stop()
        self._thread = None
        outcome, self._outcome = self._outcome, None
        on_done, on_error = self._callbacks or (None, None)
        self._callbacks = None
        if outcome is None:
            return
        if outcome[0] == "ok":
            on_done(outcome[1])
        else:
            on_error(outcome[1])
