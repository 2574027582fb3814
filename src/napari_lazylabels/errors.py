"""Errors raised for bad input and bad settings (every layer of the package uses them).

Every error a user can cause (a missing file, a label layer of the wrong shape,
an output that already exists, a learning rate of 0...) is a
:class:`LazyLabelsError` whose message is one line naming the file, item or
setting and the problem. The CLI prints it and exits with status 2 without a
traceback; the napari widgets show it as a notification.
"""

from __future__ import annotations


class LazyLabelsError(Exception):
    """A problem with the user's input, described in one line."""

    def __init__(self, message: str, *, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class SettingsError(LazyLabelsError, ValueError):
    """A setting out of range: a config value, a CLI option, a widget field."""


class AnnotationError(LazyLabelsError, ValueError):
    """Labels that cannot be used (shape, type, values, nothing annotated)."""


class ImageReadError(LazyLabelsError):
    """An image or label file that is missing or cannot be read."""


class ModelFileError(LazyLabelsError):
    """A model directory that is missing, empty or corrupt."""


class OutputError(LazyLabelsError):
    """An output that cannot be written: its folder is read-only or full, or a write failed."""


class OutputExistsError(OutputError):
    """An output path that exists already and was not allowed to be replaced."""


class InUseError(LazyLabelsError):
    """A folder another run is writing (its lock file names the owner)."""


class TrainingDivergedError(LazyLabelsError):
    """The loss or the weights of a training run stopped being finite numbers."""


class LazyLabelsWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it as one line)."""


def warn(message: str, *, source: str | None = None) -> None:
    """Issue a :class:`LazyLabelsWarning` of one line (``source: message``, like the errors)."""
    import warnings
    warnings.warn(f"{source}: {message}" if source else message, LazyLabelsWarning, stacklevel=3)


def one_line(exc: BaseException) -> str:
    """A library's exception in one line (its type and the first line of its message): the detail of
    the user error it becomes."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
