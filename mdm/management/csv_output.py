"""Where export commands write: a file when --output is given, else the command's stdout."""

import csv
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext


@contextmanager
def csv_writer(output: str | None, stdout) -> Iterator[csv.writer]:
    target = open(output, "w", newline="", encoding="utf-8") if output else nullcontext(stdout._out)  # noqa: SIM115
    with target as handle:
        yield csv.writer(handle)
