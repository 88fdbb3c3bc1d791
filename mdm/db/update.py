"""Set-based writes and lookups of many rows: one UPDATE ... FROM per call on PostgreSQL, and
id lists sent as one array.

Django's `bulk_update` writes `SET col = CASE WHEN pk = 1 THEN ... WHEN pk = 2 THEN ...` per
field and batch: building those expressions costs about a millisecond of Python per row and
field, and PostgreSQL walks the CASE list for every row. Merging 1,000 golden records spent
most of its time there. Here the new values travel as rows instead — a VALUES list for a
few, COPY into a temporary table for many — and one `UPDATE ... FROM` joins them on the
primary key. Other databases (SQLite in the embedded mode) keep `bulk_update`.

Only the named fields are written, exactly as `bulk_update` would: `auto_now` fields are not
touched unless named (the caller sets them). Each instance's primary key must be set; when
two instances share one, the first wins (as with `bulk_update`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from mdm.db.copy import json_text
from mdm.db.fields import column_field, column_name

VALUES_THRESHOLD = 50  # below this, a VALUES list; from here, COPY into a temporary table
DJANGO_BATCH_SIZE = 1000

_names = itertools.count()


def update_rows(
    model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]
) -> int:
    """Write `fields` of the saved instances `objs` to their rows; returns rows updated."""
    if not objs:
        return 0
    alias = router.db_for_write(model)
    targets = [column_field(model, name) for name in fields]
    if connections[alias].vendor != "postgresql":
        return model._base_manager.using(alias).bulk_update(
            list(objs), [f.name for f in targets], batch_size=DJANGO_BATCH_SIZE
        )
    if any(obj.pk is None for obj in objs):
        raise ValueError("all objects passed to update_rows must have a primary key")
    attnames = [model._meta.pk.attname, *(f.attname for f in targets)]
    return update_values(model, fields, [tuple(getattr(obj, a) for a in attnames) for obj in objs])


def update_values(model: type[models.Model], fields: Sequence[str], rows: Sequence[tuple]) -> int:
    """`update_rows` without instances: each row is (primary key, *values of `fields`), the
    values as the model's attributes hold them (foreign keys by id). Returns rows updated."""
    if not rows:
        return 0
    alias = router.db_for_write(model)
    connection = connections[alias]
    targets = [column_field(model, name) for name in fields]
    if connection.vendor != "postgresql":
        attnames = [model._meta.pk.attname, *(f.attname for f in targets)]
        objs = [model(**dict(zip(attnames, row, strict=True))) for row in rows]
        return model._base_manager.using(alias).bulk_update(
            objs, [f.name for f in targets], batch_size=DJANGO_BATCH_SIZE
        )
    seen: set[Any] = set()
    unique = []
    for row in rows:  # the first of two rows for one key wins, as with bulk_update
        if row[0] not in seen:
            seen.add(row[0])
            unique.append(row)
    columns = [model._meta.pk, *targets]
    if len(unique) < VALUES_THRESHOLD:
        return _update_from_values(model, unique, columns, alias)
    return _update_from_copy(model, unique, columns, alias)


Columns = Sequence["models.Field[Any, Any]"]


def _assignments(
    connection: BaseDatabaseWrapper, model: type[models.Model], columns: Columns, source: str
) -> tuple[str, str]:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    sets = ", ".join(
        f"{quote(column_name(f))} = {source}.{quote(column_name(f))}" for f in columns[1:]
    )
    key = quote(column_name(columns[0]))
    join = f"{table}.{key} = {source}.{key}"
    return f"UPDATE {table} SET {sets}", join


def _update_from_values(
    model: type[models.Model], rows: Sequence[tuple[Any, ...]], columns: Columns, alias: str
) -> int:
    connection = connections[alias]
    quote = connection.ops.quote_name
    placeholders = ", ".join(f"%s::{f.db_type(connection)}" for f in columns)
    values = ", ".join(f"({placeholders})" for _ in rows)
    params = [
        f.get_db_prep_save(value, connection)
        for row in rows
        for f, value in zip(columns, row, strict=True)
    ]
    names = ", ".join(quote(column_name(f)) for f in columns)
    update, join = _assignments(connection, model, columns, "_new")
    with connection.cursor() as cursor:
        cursor.execute(f"{update} FROM (VALUES {values}) AS _new ({names}) WHERE {join}", params)
        return cursor.rowcount


def _update_from_copy(
    model: type[models.Model], rows: Sequence[tuple[Any, ...]], columns: Columns, alias: str
) -> int:
    connection = connections[alias]
    quote = connection.ops.quote_name
    name = quote(f"_keystone_update_{next(_names)}")
    definition = ", ".join(f"{quote(column_name(f))} {f.db_type(connection)}" for f in columns)
    names = ", ".join(quote(column_name(f)) for f in columns)
    converters = [_copy_value(f, connection) for f in columns]
    update, join = _assignments(connection, model, columns, name)
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {name} ({definition}) ON COMMIT DROP")
        with cursor.cursor.copy(f"COPY {name} ({names}) FROM STDIN") as copy:
            if all(c is None for c in converters):
                for row in rows:
                    copy.write_row(row)
            else:
                for row in rows:
                    copy.write_row(
                        [v if c is None else c(v) for c, v in zip(converters, row, strict=True)]
                    )
        cursor.execute(f"{update} FROM {name} WHERE {join}")
        updated = cursor.rowcount
        cursor.execute(f"DROP TABLE {name}")
    return updated


# Columns whose attribute values psycopg takes as they are.
_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,  # auto fields included
    models.FloatField,
    models.BooleanField,
    models.ForeignKey,
)


def _copy_value(
    field: models.Field[Any, Any], connection: BaseDatabaseWrapper
) -> Callable[[Any], Any] | None:
    """A function from an attribute value to this column's value as COPY takes it, or None
    when the value goes as it is."""
    if isinstance(field, models.JSONField):
        encoder = field.encoder or DjangoJSONEncoder
        return lambda value: None if value is None else json_text(value, encoder)
    if isinstance(field, _PLAIN):
        return None
    return lambda value: field.get_db_prep_save(value, connection)
