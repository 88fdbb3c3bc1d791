"""The matching frame: one row per live source record of an entity type, as an Arrow table.

``unique_id`` is the SourceRecord primary key; every other column is declared by the match spec
and read from the record's ``match_keys`` or ``attributes``. Values are strings (or null), so
Splink sees the same types whatever the source sent. One query, whatever the size.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from matching.specs import MATCH_KEYS, MatchSpec
from mdm.models import SourceRecord


def _text(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def build_frame(spec: MatchSpec, *, record_ids: Iterable[int] | None = None) -> pa.Table:
    """The live (not deleted) source records of `spec.entity_type`, optionally only `record_ids`."""
    records = SourceRecord.objects.filter(entity_type=spec.entity_type, deleted=False)
    if record_ids is not None:
        records = records.filter(pk__in=list(record_ids))
    rows = records.order_by("pk").values_list("pk", "match_keys", "attributes")
    return frame_from_rows(spec, rows)


def frame_from_rows(spec: MatchSpec, rows: Iterable[tuple[int, dict, dict]]) -> pa.Table:
    """Pure: (pk, match_keys, attributes) tuples → the Arrow table Splink reads."""
    ids: list[int] = []
    columns: dict[str, list[str | None]] = {name: [] for name in spec.columns}
    for pk, match_keys, attributes in rows:
        ids.append(pk)
        sources = {MATCH_KEYS: match_keys or {}}
        for name, (source, key) in spec.columns.items():
            found = sources[MATCH_KEYS] if source == MATCH_KEYS else (attributes or {})
            columns[name].append(_text(found.get(key)))
    arrays = {"unique_id": pa.array(ids, type=pa.int64())}
    arrays.update({name: pa.array(values, type=pa.string()) for name, values in columns.items()})
    return pa.table(arrays)
