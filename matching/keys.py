"""The blocking-key index: which records share a blocking key with which.

Every blocking rule of a match spec is an equality on one or more column expressions
(``block_on("postal_code_key", "substr(name_key, 1, 3)")``). A record's *key* for that rule is
the tuple of those expressions evaluated on its frame row; two records are a candidate pair
exactly when they share a key — the pairs the batch run's blocking generates. Keys are derived
from the spec (nothing here names a column) and evaluated by DuckDB, so ``substr``/``lower``
mean what they mean to Splink.

The index (`MatchKey`) is rebuilt per entity type by every batch run (delete + COPY on
PostgreSQL, bulk inserts elsewhere) and kept current for changed records by incremental
matching. Candidate lookup is one query for a whole batch of records, bounded per key value:
a value shared by more than `cap` records (a placeholder e-mail, a big city's postal code with
a common prefix) finds nothing — such keys say little, and following them would make one
record cost thousands of comparisons.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import duckdb
import pyarrow as pa
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from splink.internals.dialects import SplinkDialect

from matching import engine
from matching.engine import local_connection
from matching.models import MatchKey
from matching.specs import MatchSpec
from mdm.db.arrow import constant, insert_table
from mdm.db.background import Background
from mdm.db.ids import array_param, ids_in
from mdm.db.prepared import prepared_cursor

SEPARATOR = "\x1f"  # between the parts of a multi-column key
MAX_VALUE_LENGTH = 200  # longer key values are stored as '#' + md5 of the value


@dataclass(frozen=True)
class BlockingKey:
    name: str
    expressions: tuple[str, ...]  # DuckDB SQL over the frame's columns


def _expressions(rule) -> tuple[str, ...]:
    dialect = SplinkDialect.from_string("duckdb")
    parts = getattr(rule, "blocking_rules", None) or [rule]
    expressions = []
    for part in parts:
        column = getattr(part, "col_expression", None)
        if column is None:
            raise ValueError(
                f"blocking rule {rule!r} is not an equality of column expressions (block_on): "
                "the key index cannot derive its keys"
            )
        column.sql_dialect = dialect
        expressions.append(column.name)
    return tuple(expressions)


_KEYS: dict[int, tuple[BlockingKey, ...]] = {}


def _blocking_keys(spec: MatchSpec) -> tuple[BlockingKey, ...]:
    if id(spec) in _KEYS:
        return _KEYS[id(spec)]
    keys = []
    for rule in spec.blocking_rules:
        expressions = _expressions(rule)
        name = "+".join(e.replace('"', "") for e in expressions)
        keys.append(BlockingKey(name=name[:100], expressions=expressions))
    _KEYS[id(spec)] = tuple(keys)
    return _KEYS[id(spec)]


def blocking_keys(spec: MatchSpec) -> tuple[BlockingKey, ...]:
    """The spec's blocking keys, one per prediction blocking rule, in rule order."""
    return _blocking_keys(spec)


def _key_sql(spec: MatchSpec, table: str) -> str:
    selects = []
    for key in blocking_keys(spec):
        parts = [f"cast({e} as varchar)" for e in key.expressions]
        value = parts[0] if len(parts) == 1 else f"concat_ws(chr(31), {', '.join(parts)})"
        present = " and ".join(f"({e}) is not null" for e in key.expressions)
        name = key.name.replace("'", "''")
        selects.append(
            f"select unique_id as record_id, '{name}' as name, "
            f"case when length({value}) > {MAX_VALUE_LENGTH} then '#' || md5({value}) "
            f"else {value} end as value from {table} where {present}"
        )
    return "\nunion all\n".join(selects)


# ------------------------------------------------------------------- keys in Python
#
# A few records (incremental matching, the probe) are keyed in Python: a DuckDB query costs
# tens of milliseconds of overhead however small its input. Only the expression shapes below
# are translated, each to what DuckDB computes (tests/matching/test_keys.py checks them against
# DuckDB); a spec with any other expression is keyed by DuckDB.

_COLUMN = r'"?([A-Za-z_][A-Za-z0-9_]*)"?'
Part = Callable[[dict], "str | None"]


def _substr(value: str | None, length: int) -> str | None:
    return None if value is None else value[:length]


def _sorted_words(value: str | None) -> str | None:
    return None if value is None else " ".join(sorted(value.split(" ")))


def _python_part(expression: str) -> Part | None:
    expression = expression.strip()
    if match := re.fullmatch(_COLUMN, expression):
        column = match[1]
        return lambda row: row.get(column)
    if match := re.fullmatch(rf"substr\({_COLUMN}, 1, (\d+)\)", expression):
        column, length = match[1], int(match[2])
        return lambda row: _substr(row.get(column), length)
    pattern = rf"array_to_string\(list_sort\(string_split\({_COLUMN}, ' '\)\), ' '\)"
    if match := re.fullmatch(pattern, expression):
        column = match[1]
        return lambda row: _sorted_words(row.get(column))
    pattern = rf"if\({_COLUMN} = '([^']*)', substr\({_COLUMN}, 1, (\d+)\), NULL\)"
    if match := re.fullmatch(pattern, expression):
        test, wanted, column, length = match[1], match[2], match[3], int(match[4])
        return lambda row: _substr(row.get(column), length) if row.get(test) == wanted else None
    # The same with a default for a missing test value: ``coalesce(kind, 'organization')``.
    pattern = (
        rf"if\(coalesce\({_COLUMN}, '([^']*)'\) = '([^']*)', "
        rf"substr\({_COLUMN}, 1, (\d+)\), NULL\)"
    )
    if match := re.fullmatch(pattern, expression):
        test, default, wanted = match[1], match[2], match[3]
        column, length = match[4], int(match[5])

        def part(row: dict) -> str | None:
            value = row.get(test)
            if (default if value is None else value) != wanted:
                return None
            return _substr(row.get(column), length)

        return part
    return None


PythonKeys = tuple[tuple[str, tuple[Part, ...]], ...]
_PYTHON_KEYS: dict[int, PythonKeys | None] = {}


def _python_keys(spec: MatchSpec) -> PythonKeys | None:
    """Per blocking key (name, part functions), or None when some expression has no
    translation."""
    if id(spec) not in _PYTHON_KEYS:
        translated: list[tuple[str, tuple[Part, ...]]] = []
        for key in blocking_keys(spec):
            parts = [_python_part(e) for e in key.expressions]
            known = tuple(part for part in parts if part is not None)
            if len(known) < len(parts):
                _PYTHON_KEYS[id(spec)] = None
                break
            translated.append((key.name, known))
        else:
            _PYTHON_KEYS[id(spec)] = tuple(translated)
    return _PYTHON_KEYS[id(spec)]


def _stored_value(value: str) -> str:
    if len(value) > MAX_VALUE_LENGTH:
        return "#" + hashlib.md5(value.encode()).hexdigest()
    return value


KEY_SCHEMA = pa.schema([("record_id", pa.int64()), ("name", pa.string()), ("value", pa.string())])


def python_key_rows(spec: MatchSpec, frame: pa.Table) -> pa.Table | None:
    """`key_rows` computed in Python, or None when the spec has an expression without a
    translation. Rows in DuckDB's order: by key, then by frame row."""
    translated = _python_keys(spec)
    if translated is None:
        return None
    rows = frame.to_pylist()
    ids, names, values = [], [], []
    for name, parts in translated:
        for row in rows:
            evaluated = [value for part in parts if (value := part(row)) is not None]
            if len(evaluated) < len(parts):
                continue
            ids.append(row["unique_id"])
            names.append(name)
            values.append(_stored_value(SEPARATOR.join(evaluated)))
    return pa.table(
        [pa.array(ids, pa.int64()), pa.array(names, pa.string()), pa.array(values, pa.string())],
        schema=KEY_SCHEMA,
    )


PYTHON_KEYS_MAX_ROWS = 5000  # above this, one DuckDB query is the faster way


def key_rows(
    spec: MatchSpec, frame: pa.Table, *, con: duckdb.DuckDBPyConnection | None = None
) -> pa.Table:
    """Pure (no Django database): the blocking key values of every frame row, as a table of
    (record_id, name, value) — one row per key that has a value (no part is null)."""
    if con is None and frame.num_rows <= PYTHON_KEYS_MAX_ROWS:
        computed = python_key_rows(spec, frame)
        if computed is not None:
            return computed
    con = con or local_connection()
    view = "__keystone_key_frame"
    con.register(view, frame)
    try:
        return con.sql(_key_sql(spec, view)).to_arrow_table()
    finally:
        con.unregister(view)


# ------------------------------------------------------------------------------- index writes


def _insert(entity_type: str, rows: pa.Table) -> None:
    insert_table(
        MatchKey,
        pa.table(
            {
                "entity_type": constant(entity_type, rows.num_rows),
                "name": rows["name"],
                "value": rows["value"],
                "record_id": rows["record_id"],
            }
        ),
    )


# From this many keys, a rebuild on PostgreSQL drops the secondary indexes and builds them
# after the load: 10.8 M keys (1M customers) 231 s -> 93 s (docs/bench-log/2026-11-26.md).
BULK_REBUILD_MIN_KEYS = 200_000


def rebuild_index(spec: MatchSpec, frame: pa.Table, *, con=None) -> int:
    """Replace every key of `spec.entity_type` by the keys of `frame` (all live records), in
    one transaction. Returns the number of keys written."""
    rows = key_rows(spec, frame, con=con)
    with transaction.atomic(), _indexes_built_after(rows.num_rows):
        MatchKey.objects.filter(entity_type=spec.entity_type).delete()
        _insert(spec.entity_type, rows)
    return rows.num_rows


@contextmanager
def _indexes_built_after(keys: int) -> Iterator[None]:
    """For a large rebuild on PostgreSQL: drop the key table's secondary indexes, let the
    block write, then build each index once, sorted, from the finished table — 2.5x faster
    than maintaining them row by row. Inside the caller's transaction, so a failure restores
    them; the table stays locked until it commits (incremental matching of every entity type
    waits for the rebuild: about a minute and a half at 1M customers)."""
    if connection.vendor != "postgresql" or keys < BULK_REBUILD_MIN_KEYS:
        yield
        return
    table = MatchKey._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = %s AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass) "
            "ORDER BY indexname",
            [table, table],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cursor.execute(definition)


def update_index(spec: MatchSpec, frame: pa.Table, *, removed_ids: Iterable[int] = ()) -> pa.Table:
    """Re-key the records of `frame` (changed, live) and drop the keys of `removed_ids`
    (deleted). Returns the new keys of `frame`'s records."""
    rows = key_rows(spec, frame)
    write_keys(spec.entity_type, rows, stale=[*frame["unique_id"].to_pylist(), *removed_ids])
    return rows


def write_keys(entity_type: str, rows: pa.Table, *, stale: Iterable[int]) -> None:
    """Replace the stored keys of the records `stale` by `rows`, in one transaction."""
    with transaction.atomic():
        MatchKey.objects.filter(ids_in(MatchKey, "record", list(stale))).delete()
        _insert(entity_type, rows)


def write_in_background(entity_type: str, rows: pa.Table, *, stale: Iterable[int]) -> Background:
    """`write_keys` beside the caller (`mdm.db.background`): on a thread of its own on
    PostgreSQL outside a transaction, else at once. `wait()` on the result joins it."""
    return Background(
        partial(write_keys, entity_type, rows, stale=list(stale)), name="keystone-keys"
    )


def rebuild_in_background(spec: MatchSpec, frame: pa.Table) -> Background:
    """`rebuild_index` beside the caller, on a DuckDB connection of its own: a batch run
    starts it once the frame is read, so the keys are written while the model trains (EM
    keeps about one CPU busy; the rebuild is mostly PostgreSQL's work). `wait()` gives the
    number of keys written."""

    def rebuild() -> int:
        with engine.connection() as con:
            return rebuild_index(spec, frame, con=con)

    return Background(rebuild, name="keystone-key-rebuild")


# ------------------------------------------------------------------------------- lookups


def _cap() -> int:
    return settings.KEYSTONE_MATCH_KEY_CAP


def _records_by_key(
    entity_type: str, wanted: set[tuple[str, str]], limit: int, exclude: set[int]
) -> dict[tuple[str, str], list[int]]:
    """Up to `limit` stored records per wanted key, not counting the records in `exclude`."""
    found: dict[tuple[str, str], list[int]] = defaultdict(list)
    if not wanted:
        return found
    rows = _stored_keys(entity_type, wanted, limit)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    crowded: set[tuple[str, str]] = set()  # at the limit with excluded records among them
    for name, value, record_id in rows:
        key = (name, value)
        counts[key] += 1
        if record_id in exclude:
            crowded.add(key)
        else:
            found[key].append(record_id)
    crowded = {key for key in crowded if counts[key] >= limit}
    if crowded:  # rare (a value shared by ~`cap` records): ask again, leaving them out
        for key in crowded:
            found.pop(key, None)
        for name, value, record_id in _stored_keys(entity_type, crowded, limit, exclude):
            found[(name, value)].append(record_id)
    return found


def _stored_keys(
    entity_type: str,
    wanted: set[tuple[str, str]],
    limit: int,
    exclude: AbstractSet[int] = frozenset(),
) -> list[tuple[str, str, int]]:
    """(name, value, record id) of up to `limit` stored records per wanted key (records in
    `exclude` left out) — one query. On PostgreSQL the keys travel as two binary arrays of a
    prepared statement: quoting each element of a text array cost as much client CPU as the
    rest of the lookup (11,000 keys of a batch of 1,000 customers: 35 -> 8 ms)."""
    names, values = zip(*sorted(wanted), strict=True)
    if connection.vendor == "postgresql":
        sql = f"""
            select q.name, q.value, k.record_id
            from unnest(%b::text[], %b::text[]) as q(name, value)
            cross join lateral (
                select record_id from {MatchKey._meta.db_table} k
                where k.entity_type = %s and k.name = q.name and k.value = q.value
                  and k.record_id <> all(%s::bigint[])
                limit %s
            ) k
        """
        with prepared_cursor() as cursor:
            cursor.execute(
                sql, [list(names), list(values), entity_type, array_param(sorted(exclude)), limit]
            )
            return cursor.fetchall()
    by_name: dict[str, list[str]] = defaultdict(list)
    for name, value in wanted:
        by_name[name].append(value)
    condition = Q()
    for name, name_values in by_name.items():
        condition |= Q(name=name, value__in=name_values)
    rows = MatchKey.objects.filter(condition, entity_type=entity_type).exclude(
        record_id__in=list(exclude)
    )
    per_key: dict[tuple[str, str], int] = defaultdict(int)
    kept = []
    for name, value, record_id in rows.values_list("name", "value", "record_id"):
        per_key[(name, value)] += 1
        if per_key[(name, value)] <= limit:
            kept.append((name, value, record_id))
    return kept


def candidates(entity_type: str, keys: pa.Table, *, cap: int | None = None) -> dict[int, set[int]]:
    """For each record in `keys` (rows of `key_rows`), the other records sharing at least
    one of its key values — one query for all of them. A key value shared by more than `cap`
    records is skipped.

    The records of `keys` find each other here, from `keys` itself, and are left out of the
    query: the answer does not depend on whether their keys are stored yet (incremental
    matching writes them while it looks for candidates) or still stored as they were."""
    cap = cap or _cap()
    by_record: dict[int, list[tuple[str, str]]] = defaultdict(list)
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for record_id, name, value in zip(
        keys["record_id"].to_pylist(),
        keys["name"].to_pylist(),
        keys["value"].to_pylist(),
        strict=True,
    ):
        by_record[record_id].append((name, value))
        by_key[(name, value)].append(record_id)
    stored = _records_by_key(entity_type, set(by_key), cap + 1, set(by_record))
    result: dict[int, set[int]] = {}
    for record_id, record_keys in by_record.items():
        others: set[int] = set()
        for key in record_keys:
            members = stored.get(key, [])
            if len(members) + len(by_key[key]) <= cap:
                others.update(members)
                others.update(by_key[key])
        others.discard(record_id)
        result[record_id] = others
    return result
