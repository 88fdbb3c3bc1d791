"""Reading source files (CSV, NDJSON, JSON array) into numbered rows for ingest.

A line that cannot be parsed is not dropped: it is yielded as a row the ingest service
rejects with the line number and the parser's reason. One bad record never stops the rest:

- bytes that are not UTF-8 are read as lone surrogates (Python's "surrogateescape"), so the
  row they are in is rejected by ingest ("not valid Unicode") instead of the read failing;
- a JSON record nested deeper than the parser can follow, or holding a number it refuses
  (over 4,300 digits), is rejected alone: the elements of a JSON array are parsed one by one
  (`json_array_elements`, also what the API parses array bodies with), and an element the
  parser cannot read is skipped to its end by bracket matching;
- a CSV field over the csv module's size limit rejects its row, the next row reads on.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMATS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json"}
# Undecodable bytes become lone surrogates (U+DC80-U+DCFF), which ingest rejects per row.
TEXT_ERRORS = "surrogateescape"


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
    with path.open(newline="", encoding="utf-8-sig", errors=TEXT_ERRORS) as handle:
        reader = csv.DictReader(handle)
        rows = iter(reader)
        line = reader.line_num
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as error:  # e.g. a field over the size limit; the reader reads on
                line += 1
                yield line, Unparseable(f"not valid CSV: {error}", "")
                continue
            start, line = line + 1, reader.line_num
            if (
                not any((v or "").strip() for k, v in row.items() if k is not None)
                and None not in row
            ):
                continue
            yield start, row


def _read_ndjson(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8-sig", errors=TEXT_ERRORS) as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                yield number, parse_json_line(text)


def parse_json_line(text: str) -> Any:
    """One NDJSON line: its value, or an `Unparseable` saying why not (never raises)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        return Unparseable(f"not valid JSON: {error.msg} at column {error.colno}", text)
    except (RecursionError, ValueError) as error:
        return Unparseable(_refused(error), text)


def _refused(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "not valid JSON: nested too deeply to read"
    return f"not valid JSON: {str(error).split(';')[0]}"


def _read_json_array(path: Path) -> Iterator[tuple[int, Any]]:
    text = path.read_text(encoding="utf-8-sig", errors=TEXT_ERRORS)
    try:
        yield from json_array_elements(text)
    except NotAnArray:
        yield 1, Unparseable("a .json file must hold an array of records", "")
    except json.JSONDecodeError as error:
        yield error.lineno, Unparseable(f"not valid JSON: {error.msg}", "")


class NotAnArray(ValueError):
    """The JSON text is not an array."""


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
_AFTER_ELEMENT = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_SCALAR_END = re.compile(r"[^,\]\s]*")


def json_array_elements(
    text: str, decoder: json.JSONDecoder = _DECODER, *, start: int = 0, closing: str = ""
) -> Iterator[tuple[int, Any]]:
    """(position from 1, value) for each element of the JSON array in `text` at `start`,
    parsed one at a time, so a caller can stop early (a record limit) without parsing the
    rest; after the array only whitespace and `closing` may follow. An element the parser
    refuses (nested too deeply, a number over 4,300 digits, NaN for a strict decoder) comes
    back as an `Unparseable`; text that is not a JSON array at all raises NotAnArray or
    json.JSONDecodeError."""
    position = _past(_SPACE, text, start)
    if not text.startswith("[", position):
        raise NotAnArray("not a JSON array")
    position = _past(_SPACE, text, position + 1)
    if text.startswith("]", position):
        _expect_end(text, position + 1, closing)
        return
    number = 0
    while True:
        number += 1
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError) as error:
            end = _element_end(text, position)
            value = Unparseable(_refused(error), text[position:end])
        yield number, value
        separator = _AFTER_ELEMENT.match(text, end)
        if separator is None:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, end)
        if separator.group(1) == "]":
            _expect_end(text, separator.end(), closing)
            return
        position = separator.end()


def _element_end(text: str, start: int) -> int:
    """Where the JSON value starting at `start` ends, found by matching brackets outside
    strings: for the values the parser cannot read, so it does not recurse."""
    if text[start] not in "[{":
        return _past(_SCALAR_END, text, start)
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text, start):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
        elif bracket in "]}":
            depth -= 1
            if depth == 0:
                return token.end()
    raise json.JSONDecodeError("Unterminated array or object", text, start)


def _past(pattern: re.Pattern[str], text: str, position: int) -> int:
    """Where `pattern` (one that matches the empty string too) stops matching at `position`."""
    found = pattern.match(text, position)
    return found.end() if found else position


def _expect_end(text: str, position: int, closing: str = "") -> None:
    if text[position:].strip(" \t\n\r") != closing:
        raise json.JSONDecodeError("Extra data", text, position)
