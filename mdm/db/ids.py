"""Many ids in one statement: array parameters on PostgreSQL, bounded lists elsewhere.

One rule per vendor, used by every app:
- PostgreSQL takes a whole id list as one array parameter (`ids_in`, `array_param`);
- SQLite has a bound on parameters per statement: id lists go in `chunks` of
  `SQLITE_CHUNK`, and a filter over more than `SQLITE_ID_LIST_LIMIT` ids is applied in Python
  (`narrowed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.db import connections, models, router
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from mdm.db.fields import column_field, column_name

ANY_THRESHOLD = 50  # from this many values on, one array parameter (PostgreSQL)
SQLITE_CHUNK = 500  # ids per statement where there is no array parameter
SQLITE_ID_LIST_LIMIT = 5000  # more ids than this are filtered in Python on SQLite


def array_param(values: Sequence[Any]) -> list[Any] | str:
    """A PostgreSQL array parameter for `values`: integers as one array literal (psycopg's
    client-side quoting takes ~10 µs per element), anything else as a list."""
    if values and all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    return values if isinstance(values, list) else list(values)


def ids_in(model: type[models.Model], field: str, values: Iterable) -> Q:
    """`Q(<field>__in=values)` for many ids. On PostgreSQL, from ANY_THRESHOLD values on,
    `<column> = ANY(<one array parameter>)` instead of one placeholder per value: building,
    sending and parsing thousands of placeholders was a tenth of a merge batch's time, and the
    planner keeps using the column's index inside an OR. The values are ids of one kind (all
    text or all integers)."""
    values = list(values)
    connection = connections[router.db_for_read(model)]
    if connection.vendor != "postgresql" or len(values) < ANY_THRESHOLD:
        return Q(**{f"{field}__in": values})
    quote = connection.ops.quote_name
    column = f"{quote(model._meta.db_table)}.{quote(column_name(column_field(model, field)))}"
    array = "text[]" if isinstance(values[0], str) else "bigint[]"
    return Q(
        RawSQL(f"{column} = ANY(%s::{array})", [array_param(values)], output_field=BooleanField())
    )


def narrowed(queryset: QuerySet, field: str, ids: Iterable) -> tuple[QuerySet, set | None]:
    """`queryset` narrowed to rows whose `field` is in `ids` — in SQL, or (SQLite, beyond
    `SQLITE_ID_LIST_LIMIT` ids) by returning the set the caller keeps rows of."""
    ids = list(ids)
    connection = connections[router.db_for_read(queryset.model)]
    if connection.vendor != "postgresql" and len(ids) > SQLITE_ID_LIST_LIMIT:
        return queryset, set(ids)
    return queryset.filter(ids_in(queryset.model, field, ids)), None


def chunks(ids: Sequence[Any], size: int = SQLITE_CHUNK) -> Iterator[Sequence[Any]]:
    """`ids` in slices of at most `size` (statements without an array parameter)."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
