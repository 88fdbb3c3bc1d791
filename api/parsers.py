"""NDJSON request bodies: one JSON object per line, for batch ingest."""

from __future__ import annotations

import json
from typing import IO, Any

from rest_framework.parsers import BaseParser

from mdm.source_files import Unparseable


class NdjsonRows(list):
    """(line number, parsed value) pairs; a line that is not JSON is an `Unparseable`."""


class NDJSONParser(BaseParser):
    media_type = "application/x-ndjson"

    # request.data is what parse returns: for NDJSON, the rows (not a mapping as DRF types it)
    def parse(  # type: ignore[override]
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> NdjsonRows:
        rows = NdjsonRows()
        for number, raw in enumerate(stream.read().splitlines(), start=1):
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                rows.append((number, json.loads(text)))
            except json.JSONDecodeError as error:
                rows.append((number, Unparseable(f"not valid JSON: {error.msg}", text)))
        return rows
