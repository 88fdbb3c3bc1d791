"""Request bodies: JSON (objects, or records for a batch) and NDJSON (one record per line).

What a hostile body cannot do here:
- make the server parse more than it will accept: the byte limit is checked on the
  Content-Length before parsing (`api.guards`), and the records of a batch — a JSON array,
  `{"records": [...]}`, or NDJSON — are parsed one at a time and refused (413) at the first
  record past KEYSTONE_API_MAX_BATCH, so the rest are never built;
- fail a batch with one record: a record the JSON parser cannot read (nested too deeply,
  a number over 4,300 digits, bytes that are not UTF-8 in an NDJSON line) becomes an
  `Unparseable` row that ingest rejects with its index and reason, the others load;
- answer 500: a JSON object nested too deeply for the parser is a 400 like any malformed body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import IO, Any, NoReturn

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings

from api.errors import PayloadTooLarge
from mdm.source_files import TEXT_ERRORS, NotAnArray, json_array_elements, parse_json_line

# `{"records": [` — the batch body's object form, whose records are parsed one at a time too.
_RECORDS_OBJECT = re.compile(r'[ \t\n\r]*\{[ \t\n\r]*"records"[ \t\n\r]*:')


class RecordRows(list):
    """(line number, parsed value) pairs of a batch body: for JSON the position from 1, for
    NDJSON the line; a record that could not be parsed is an `Unparseable`."""


def _take(rows: Iterable[tuple[int, Any]]) -> RecordRows:
    limit = settings.KEYSTONE_API_MAX_BATCH
    taken = RecordRows()
    for row in rows:
        if len(taken) == limit:
            raise PayloadTooLarge(f"At most {limit} records per batch.")
        taken.append(row)
    return taken


def _strict_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


_STRICT = json.JSONDecoder(parse_constant=_strict_constant)
_LENIENT = json.JSONDecoder()


class JSONParser(parsers.BaseParser):
    """DRF's JSON parser, except that a batch's records — a JSON array, or the array of
    `{"records": [...]}` — come back as `RecordRows` parsed element by element (see the
    module docstring), and nesting too deep for the parser is a 400.

    Not a subclass of DRF's: DRF reads a `JSONParser`'s body through Django's `request.body`,
    which refuses (a 500 here) past DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB — under the batch
    limit. The body limits are the API's own (`api.guards.refuse_large_body`, 413)."""

    media_type = "application/json"

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        try:
            text = stream.read().decode("utf-8")
        except UnicodeDecodeError as error:
            raise ParseError(f"JSON parse error - the body is not UTF-8: {error.reason}") from None
        decoder = _STRICT if api_settings.STRICT_JSON else _LENIENT
        wrapped = _RECORDS_OBJECT.match(text)
        try:
            if wrapped:
                return _take(json_array_elements(text, decoder, start=wrapped.end(), closing="}"))
            return _take(json_array_elements(text, decoder))
        except NotAnArray:
            pass
        except ValueError as error:
            if not wrapped:
                raise ParseError(f"JSON parse error - {error}") from None
        try:  # an object (a wrapper with more than "records" is the view's to refuse)
            return decoder.decode(text)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None


class NDJSONParser(parsers.BaseParser):
    """One JSON object per line, for batch ingest; a line that cannot be read (not JSON,
    not UTF-8, nested too deeply) is an `Unparseable` row rejected on its own."""

    media_type = "application/x-ndjson"

    # request.data is what parse returns: for NDJSON, the rows (not a mapping as DRF types it)
    def parse(  # type: ignore[override]
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> RecordRows:
        lines = (
            (number, raw.decode("utf-8", TEXT_ERRORS))
            for number, raw in enumerate(stream.read().splitlines(), start=1)
        )
        return _take((number, parse_json_line(text)) for number, text in lines if text.strip())
