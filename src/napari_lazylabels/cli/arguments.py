"""The argument types and option groups the commands share (one line for a bad value, by argparse)."""

from __future__ import annotations

import argparse

from .options import add_options


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")


def pixel_size_option(text: str):
    from ..engine.annotations import PixelSize
    try:
        value = float(text)
        return PixelSize(value, value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a pixel size in micrometres (a number > 0)") from None


def postprocess_options(parser: argparse.ArgumentParser, default_text: str) -> None:
    from ..engine.postprocess.settings import InstanceParams
    group = parser.add_argument_group("post-processing (instances from the probabilities; sizes in pixels "
                                      "of the network's input)")
    add_options(group, InstanceParams, default_text=default_text)
