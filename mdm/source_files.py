"""Reading source files (CSV, NDJSON, JSON array) into numbered rows for ingest.

A line that cannot be parsed is not dropped: it is yielded as a row the ingest service
rejects with the line number and the parser's reason.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMATS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json"}


class UnsupportedFile(ValueError):
    pass


class Unparseable:
    """Stands in for a line the parser could not read; ingest turns it into a rejection."""

    def __init__(self, reason: str, text: str) -> None:
        self.reason = reason
        self.text = text


def file_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise UnsupportedFile(
            f"{path.name}: unsupported file type {path.suffix!r} "
            "(use .csv, .ndjson, .jsonl or .json)"
        ) from None


def count_records(path: Path) -> int:
    """A cheap upper bound for progress bars: data lines in the file."""
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(lines - 1, 0) if file_format(path) == "csv" else lines


def read_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, row) for every record in the file, in file order."""
    kind = file_format(path)
    if kind == "csv":
        yield from _read_csv(path)
    elif kind == "ndjson":
        yield from _read_ndjson(path)
    else:
        yield from _read_json_array(path)


def _read_csv(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        line = reader.line_num
        for row in reader:
            start, line = line + 1, reader.line_num
            if (
                not any((v or "").strip() for k, v in row.items() if k is not None)
                and None not in row
            ):
                continue
            yield start, row


def _read_ndjson(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as error:
                yield (
                    number,
                    Unparseable(f"not valid JSON: {error.msg} at column {error.colno}", text),
                )


def _read_json_array(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8-sig") as handle:
        try:
            document = json.load(handle)
        except json.JSONDecodeError as error:
            yield error.lineno, Unparseable(f"not valid JSON: {error.msg}", "")
            return
    if not isinstance(document, list):
        yield 1, Unparseable("a .json file must hold an array of records", "")
        return
    yield from enumerate(document, start=1)
