"""The ``lazylabels`` command line: train, predict, export, demo, info, autolabel, suggest.

Every user error ends in one line ``lazylabels: error: <file>: <problem>`` on
stderr, exit status 2, no traceback, and nothing written. The manifest
columns, the task weights and the options of the opt-in regimes come from the
regime registry.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import warnings
from typing import Iterator, Sequence

from .. import __version__
from ..errors import LazyLabelsError, LazyLabelsWarning
from . import autolabel, demo, export, info, predict, suggest, train
from .console import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USER_ERROR, Terminated

#: The commands, in the order ``lazylabels --help`` lists them: each module adds its parser.
COMMANDS = (train, predict, export, demo, info, autolabel, suggest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lazylabels",
        description="Segment microscopy images from lazy labels (blobs, interface scribbles, "
                    "a few exact masks).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _error(message: str) -> int:
    print(f"lazylabels: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt), so training writes its checkpoint as on
    Ctrl-C; a second SIGTERM while it does is ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum, frame):
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """The package's warnings as one line each, ``lazylabels: warning: ...``, every time."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", LazyLabelsWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, LazyLabelsWarning):
                print(f"lazylabels: warning: {message}", file=sys.stderr)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _sigterm_as_interrupt(), _warnings_as_lines():
            code = args.run(args)
        sys.stdout.flush()
        return code
    except LazyLabelsError as exc:
        return _error(str(exc))
    except Terminated:
        print("lazylabels: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("lazylabels: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        return _error("out of memory; try a smaller --tile-size or --batch-size")
    except BrokenPipeError:
        # the reader of our output went away (`lazylabels info | head`): no more output to
        # it, and none at exit either (the interpreter would flush stdout again)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return _error("the output was closed before everything was written (broken pipe)")


if __name__ == "__main__":
    sys.exit(main())
