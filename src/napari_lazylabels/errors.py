"""Errors the engine raises for bad input.

Every error a user can cause (a missing file, a label layer of the wrong shape,
an output that already exists...) is a :class:`LazyLabelsError` whose message is
one line naming the file or item and the problem. The CLI prints it and exits
non-zero without a traceback; the napari widgets show it as a notification.
"""

from __future__ import annotations


class LazyLabelsError(Exception):
    """A problem with the user's input, described in one line."""

    def __init__(self, message: str, *, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class AnnotationError(LazyLabelsError):
    """Lazy labels that cannot be trained on (shape, values, nothing annotated)."""


class ImageReadError(LazyLabelsError):
    """An image or label file that is missing or cannot be read."""


class ModelFileError(LazyLabelsError):
    """A model directory that is missing, empty or corrupt."""


class OutputExistsError(LazyLabelsError):
    """An output path that exists already and was not allowed to be replaced."""
