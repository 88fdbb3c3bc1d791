"""Where export commands write: a file when --output is given, else the command's stdout;
always through `mdm.spreadsheets.csv_writer` (formulas escaped)."""

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TextIO, cast

from django.core.management.base import OutputWrapper

from mdm.spreadsheets import SafeCsvWriter
from mdm.spreadsheets import csv_writer as safe_csv_writer


@contextmanager
def csv_writer(output: str | None, stdout: OutputWrapper) -> Iterator[SafeCsvWriter]:
    # the command's own stream, not the wrapper (which would end every row with another newline)
    raw = cast(TextIO, stdout._out)
    target = open(output, "w", newline="", encoding="utf-8") if output else nullcontext(raw)  # noqa: SIM115
    with target as handle:
        yield safe_csv_writer(handle)
