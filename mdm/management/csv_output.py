"""Where export commands write: a file when --output is given, else the command's stdout."""

import csv
from _csv import Writer
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TextIO, cast

from django.core.management.base import OutputWrapper


@contextmanager
def csv_writer(output: str | None, stdout: OutputWrapper) -> Iterator[Writer]:
    # the command's own stream, not the wrapper (which would end every row with another newline)
    raw = cast(TextIO, stdout._out)
    target = open(output, "w", newline="", encoding="utf-8") if output else nullcontext(raw)  # noqa: SIM115
    with target as handle:
        yield csv.writer(handle)
