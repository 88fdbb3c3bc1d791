"""Fast inserts for the volume paths (ingest, matching): PostgreSQL COPY, else bulk_create.

Django 5.2's bulk_create on PostgreSQL sends JSON columns as `jsonb[]` arrays (UNNEST), which
psycopg quotes element by element with regular expressions — most of an ingest's time went
there. COPY streams the same rows instead, each value converted once by a per-column function
chosen up front. Auto-increment ids are taken from the table's sequence first, so callers get
primary keys exactly as with bulk_create. Constraints still apply (foreign keys are checked at
commit, as Django declares them deferrable).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router
from simple_history.utils import get_history_model_for_model

from mdm.db.fields import column_field, column_name
from mdm.db.ids import array_param, chunks

COPY_THRESHOLD = 50  # below this, bulk_create is as fast and simpler

Converter = Callable[[models.Model], Any]


def uses_copy(model: type[models.Model], count: int) -> bool:
    connection = connections[router.db_for_write(model)]
    return connection.vendor == "postgresql" and count >= COPY_THRESHOLD


def insert_rows(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    history_meta: dict[str, Any] | None = None,
) -> None:
    """Insert new, unsaved instances of `model`; sets their primary keys. With `history_meta`,
    also writes one history row per instance: on the COPY path copied from the rows just
    written (`insert_history_of_rows`), so each JSON value is encoded and parsed once; below
    the COPY threshold from the instances (`insert_history`)."""
    if not objs:
        return
    alias = router.db_for_write(model)
    if not uses_copy(model, len(objs)):
        model._base_manager.using(alias).bulk_create(list(objs), batch_size=1000)
        if history_meta is not None:
            insert_history(model, objs, meta=history_meta)
        return
    fields = [f for f in model._meta.concrete_fields if not f.generated]
    _assign_ids(model, [o for o in objs if o.pk is None])
    converters = [_converter(f) for f in fields]
    rows = [[c(o) for c in converters] for o in objs]
    copy_rows(model, [column_name(f) for f in fields], rows)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias
    if history_meta is not None:
        insert_history_of_rows(model, [o.pk for o in objs], meta=history_meta)


def copy_rows(model: type[models.Model], columns: Sequence[str], rows: Iterable[list]) -> None:
    """COPY plain rows (values already in database form) into `model`'s table."""
    connection = connections[router.db_for_write(model)]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _assign_ids(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    pk = model._meta.pk
    if not objs or not isinstance(pk, models.AutoField):
        return
    with connections[router.db_for_write(model)].cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, pk.column, len(objs)],
        )
        for obj, (new_id,) in zip(objs, cursor.fetchall(), strict=True):
            setattr(obj, pk.attname, new_id)


def _converter(field: models.Field) -> Converter:
    """A function from an instance to this column's COPY value."""
    attname = field.attname
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.pre_save(obj, add=True)
    if isinstance(field, models.JSONField):
        encoder = field.encoder or DjangoJSONEncoder
        return lambda obj: json_text(getattr(obj, attname), encoder)
    return lambda obj: getattr(obj, attname)


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_django_default = DjangoJSONEncoder().default


def json_text(value: Any, encoder: type[json.JSONEncoder] = DjangoJSONEncoder) -> str | None:
    """`json.dumps(value, cls=encoder)` as jsonb stores it, through orjson (a tenth of the json
    module's time). Dates, times, decimals and anything else orjson does not encode natively
    go through `encoder`, so they read back as before; json takes what orjson refuses
    (integers beyond 64 bits). NaN and infinities become null (PostgreSQL's jsonb refuses
    them); ingest turns them into text before they get here. Only whitespace differs, which
    jsonb does not keep."""
    if value is None:
        return None
    default = _django_default if encoder is DjangoJSONEncoder else encoder().default
    try:
        return orjson.dumps(value, default=default, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, cls=encoder)


def insert_history(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    meta: dict[str, Any],
) -> None:
    """Write one history row per saved instance of `model` (its tracked fields as they are
    now) plus the same `meta` columns for all (history_date, history_type, history_user_id,
    history_change_reason, actor, correlation_id)."""
    if not objs:
        return
    history_model = get_history_model_for_model(model)
    tracked = list(history_model.tracked_fields)
    if not uses_copy(history_model, len(objs)):
        history_model._base_manager.bulk_create(
            [
                history_model(**{f.attname: getattr(o, f.attname) for f in tracked}, **meta)
                for o in objs
            ],
            batch_size=1000,
        )
        return
    columns = [f.column for f in tracked] + _meta_columns(history_model, meta)
    getters = [
        (lambda obj, a=f.attname: json_text(getattr(obj, a)))
        if isinstance(f, models.JSONField)
        else (lambda obj, a=f.attname: getattr(obj, a))
        for f in tracked
    ]
    fixed = _meta_values(meta)
    copy_rows(history_model, columns, ([g(o) for g in getters] + fixed for o in objs))


def _meta_columns(history_model: type[models.Model], meta: dict[str, Any]) -> list[str]:
    return [column_name(column_field(history_model, k)) for k in meta]


def _meta_values(meta: dict[str, Any]) -> list:
    return [json_text(v) if isinstance(v, dict | list) else v for v in meta.values()]


def insert_history_of_rows(
    model: type[models.Model], pks: Sequence[Any], *, meta: dict[str, Any]
) -> int:
    """One history row per row of `model` in `pks`, in that order: its tracked fields as
    stored now, plus the same `meta` columns for all — what `insert_history` writes for the
    same instances, copied inside the database (INSERT ... SELECT). Nothing is encoded or sent
    again, and PostgreSQL copies the stored JSON instead of parsing its text a second time:
    for a golden record's history row, a quarter of the cost of COPYing it."""
    pks = list(dict.fromkeys(pks))
    if not pks:
        return 0
    alias = router.db_for_write(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    history_model = get_history_model_for_model(model)
    tracked = list(history_model.tracked_fields)
    meta_fields = [column_field(history_model, name) for name in meta]  # names or attnames
    columns = ", ".join(quote(f.column) for f in [*tracked, *meta_fields])
    table = quote(model._meta.db_table)
    selected = ", ".join(f"{table}.{quote(f.column)}" for f in tracked)
    meta_params = [
        f.get_db_prep_save(value, connection)
        for f, value in zip(meta_fields, meta.values(), strict=True)
    ]
    pk = model._meta.pk
    pk_column = f"{table}.{quote(column_name(pk))}"
    history_table = quote(history_model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            meta_sql = ", ".join(f"%s::{f.db_type(connection)}" for f in meta_fields)
            cursor.execute(
                f"INSERT INTO {history_table} ({columns}) SELECT {selected}, {meta_sql} "
                f"FROM unnest(%s::{pk.rel_db_type(connection)}[]) WITH ORDINALITY AS k(pk, n) "
                f"JOIN {table} ON {pk_column} = k.pk ORDER BY k.n",
                [*meta_params, array_param(pks)],
            )
            return cursor.rowcount
        meta_sql = ", ".join("%s" for _ in meta_fields)
        inserted = 0
        for chunk in chunks(pks):
            marks = ", ".join("%s" for _ in chunk)
            cursor.execute(
                f"INSERT INTO {history_table} ({columns}) SELECT {selected}, {meta_sql} "
                f"FROM {table} WHERE {pk_column} IN ({marks})",
                [*meta_params, *chunk],
            )
            inserted += cursor.rowcount
    return inserted
