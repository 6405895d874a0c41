"""CSV exports that are safe to open in a spreadsheet, streamed so thousands of rows cost constant memory."""

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

# A spreadsheet runs a cell starting with one of these as a formula; a grantee or a comment is user input.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """`value` as text a spreadsheet shows as written: formulas are quoted with a leading apostrophe,
    datetimes are ISO 8601, booleans yes/no, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


class _Echo:
    """A file whose write returns what it was given, so csv.writer hands back each row as text."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The CSV text of `header` and `rows`, a line at a time, every cell through `csv_cell`."""
    writer = csv.writer(_Echo())
    yield writer.writerow([csv_cell(cell) for cell in header])
    for row in rows:
        yield writer.writerow([csv_cell(cell) for cell in row])
