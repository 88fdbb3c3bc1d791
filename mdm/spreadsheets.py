"""CSV written for people, who open it in a spreadsheet: every export (`export_xref`,
`export_golden`, the stewards' history CSV) writes through `csv_writer`.

A text cell that starts with =, +, -, @, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (`=HYPERLINK(…)`, `@SUM(…)`, `=cmd|…` DDE): a source record
could plant one in an operator's spreadsheet (CSV injection). Such a cell is written with a
leading apostrophe, which spreadsheets show as text and never evaluate. A cell that is a plain
number ("-12.5", "+4930123456") cannot run anything and is written as it is, as are values
that are not text.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """`value`, or the text with a leading apostrophe when a spreadsheet would run it."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


class SafeCsvWriter:
    """`csv.writer` whose rows go through `safe_cell`."""

    def __init__(self, handle) -> None:
        self._writer = csv.writer(handle)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(handle) -> SafeCsvWriter:
    return SafeCsvWriter(handle)
