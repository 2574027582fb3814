"""Command-line options made from a typed settings dataclass (a regime's ``options``).

Each field becomes ``--field-name`` with the field's default and its
``metadata["help"]``; values are checked by the dataclass itself, so a bad one
is a one-line :class:`~napari_lazylabels.errors.SettingsError`.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import MISSING, fields
from typing import Any


def _base_type(hint: Any) -> type:
    """``int`` for ``int`` and ``int | None``; likewise float, bool, str."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    return hint if hint in (int, float, bool, str) else str


def _number(kind: type):
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    parse.__name__ = kind.__name__
    return parse


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, *,
                help_prefix: str = "", default_text: str | None = None) -> None:
    """Add one option per field of the dataclass ``cls``.

    ``default_text``: the options default to None and their help ends with it (e.g. "default: the
    model's"; ``{default}`` is the field's default); without it each takes the field's default.
    """
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        kind = _base_type(hints[f.name])
        default = f.default if f.default is not MISSING else None
        flag = "--" + f.name.replace("_", "-")
        text = help_prefix + f.metadata.get("help", f.name.replace("_", " "))
        if default_text is not None:
            text, default = f"{text} ({default_text.format(default=default)})", None
        elif default is not None:
            text += f" (default {default})"
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                                help=text)
        else:
            parser.add_argument(flag, dest=f.name, type=_number(kind) if kind in (int, float) else kind,
                                default=default, choices=f.metadata.get("choices"),
                                metavar=f.metadata.get("metavar", f.name.upper()), help=text)


def options_from(args: argparse.Namespace, cls: type, base=None):
    """The dataclass ``cls`` made from the parsed options (its checks apply); with ``base`` (an
    instance), options left at None keep ``base``'s values."""
    given = {f.name: getattr(args, f.name) for f in fields(cls)}
    if base is None:
        return cls(**given)
    return dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})
