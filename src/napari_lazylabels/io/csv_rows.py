"""Reading the CSV files users write (manifests, points): a header and its non-blank rows, with
an unreadable or malformed file as one :mod:`~napari_lazylabels.errors` line naming it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from ..errors import AnnotationError, ImageReadError
from .files import regular_file

RowCheck = Callable[[int, list[str], list[str]], None]


def read_csv_rows(path: Path, what: str, empty: str,
                  check: RowCheck | None = None) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header (stripped, lower-cased) and (line number, cells) of every non-blank row of ``path``.

    ``what`` names the file in the errors ("manifest", "points file"); ``empty`` is the error of a
    file without a header; ``check(line, header, cells)`` is called on each row as it is read (so
    its error comes before those of later lines).

    Raises:
        ImageReadError: the file is missing, not a regular file (a FIFO, a device), cannot be read,
            or is not UTF-8 text.
        AnnotationError: no header, not a valid CSV file, or what ``check`` raises.
    """
    regular_file(path, f"a {what}", missing=f"{what} not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise AnnotationError(empty, source=str(path))
            header = [h.strip().lower() for h in header]
            rows = []
            for row in reader:
                if not any(c.strip() for c in row):
                    continue
                if check is not None:
                    check(reader.line_num, header, row)
                rows.append((reader.line_num, row))
    except UnicodeDecodeError:
        raise ImageReadError(f"{what} is not a UTF-8 text CSV file", source=str(path)) from None
    except csv.Error as exc:
        raise AnnotationError(f"{what} is not a valid CSV file ({exc})", source=str(path)) from None
    except OSError as exc:
        raise ImageReadError(f"cannot read {what} ({exc.strerror or exc})", source=str(path)) from None
    return header, rows
