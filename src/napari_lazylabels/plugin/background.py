"""Work off the GUI thread: one mechanism for every background task of the widgets (no Qt here).

A :class:`BackgroundJob` runs its :meth:`~BackgroundJob.work` in a daemon
thread; whatever it posts goes into a queue that the GUI drains on a timer
(:meth:`~BackgroundJob.drain`), so nothing is ever delivered to a widget from
another thread, and a widget that is gone simply stops draining. Stop is
cooperative (:meth:`~BackgroundJob.stop_requested`). Training
(:class:`~.training_worker.TrainingJob`) posts many messages; a single call
(:class:`CallJob`: GrabCut, prediction, export) posts one :class:`Done` or
:class:`Failed`.
"""

from __future__ import annotations

import queue
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import LazyLabelsError


class BackgroundJob:
    """A task in a background thread that posts messages for the GUI to drain."""

    thread_name = "lazylabels-background"

    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.work, args=(self._queue.put,), daemon=True,
                                        name=self.thread_name)

    def work(self, post: Callable[[Any], None]) -> None:
        """The job; runs in the background thread and hands results to ``post``."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def stop(self) -> None:
        """Ask the job to end at its next chance."""
        self._stop.set()

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def drain(self) -> list:
        """Every message posted since the last drain (call on the GUI thread)."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out


@dataclass
class Done:
    result: Any


@dataclass
class Failed:
    message: str


class CallJob(BackgroundJob):
    """One function call in the background: posts :class:`Done` with its result, or :class:`Failed`
    with a one-line message (a :class:`~napari_lazylabels.errors.LazyLabelsError` as it is, anything
    else with its type; the traceback goes to stderr)."""

    def __init__(self, fn: Callable[[], Any]):
        super().__init__()
        self._fn = fn

    def work(self, post) -> None:
        try:
            post(Done(self._fn()))
        except LazyLabelsError as exc:
            post(Failed(str(exc)))
        except Exception as exc:  # shown to the user as a notification, never raised in Qt
            traceback.print_exc()
            post(Failed(f"{type(exc).__name__}: {exc}"))
