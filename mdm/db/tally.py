"""Counters kept in a row: add to a keyed row's counts in one statement, whoever got there first.

`INSERT ... ON CONFLICT (key) DO UPDATE SET n = n + EXCLUDED.n` (PostgreSQL and SQLite both
speak it): no read before the write, so concurrent writers of one row never lose an addition
and hold its lock only for the statement. Timestamps given as `latest` keep the later value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import connections, models, router

from mdm.db.fields import column_field, column_name


def add_to_row(
    model: type[models.Model],
    *,
    key: Mapping[str, Any],
    counts: Mapping[str, int],
    latest: Mapping[str, Any] | None = None,
) -> None:
    """Add `counts` to the row of `model` whose unique `key` fields have these values (created
    with them when there is none); each field in `latest` keeps the greater value."""
    latest = latest or {}
    alias = router.db_for_write(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    values = {**key, **counts, **latest}
    fields = {name: column_field(model, name) for name in values}
    columns = {name: quote(column_name(field)) for name, field in fields.items()}
    table = quote(model._meta.db_table)
    assignments = [f"{columns[n]} = {table}.{columns[n]} + EXCLUDED.{columns[n]}" for n in counts]
    assignments += [
        f"{columns[n]} = {greatest}({table}.{columns[n]}, EXCLUDED.{columns[n]})" for n in latest
    ]
    sql = (
        f"INSERT INTO {table} ({', '.join(columns.values())}) "
        f"VALUES ({', '.join(['%s'] * len(values))}) "
        f"ON CONFLICT ({', '.join(columns[n] for n in key)}) "
        f"DO UPDATE SET {', '.join(assignments)}"
    )
    params = [fields[name].get_db_prep_save(value, connection) for name, value in values.items()]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
