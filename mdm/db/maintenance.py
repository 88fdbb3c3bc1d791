"""Table maintenance after bulk rewrites: ANALYZE and VACUUM on PostgreSQL, nothing elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, models, router


def vacuum(*models_: type[models.Model]) -> None:
    """`VACUUM (ANALYZE)` these models' tables on PostgreSQL — statistics as `analyze`, and the
    visibility map set, so index-only scans need not visit the heap. VACUUM cannot run in a
    transaction: inside one this is `analyze`."""
    _maintain(
        models_, lambda connection: "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
    )


def analyze(*models_: type[models.Model]) -> None:
    """Refresh PostgreSQL's planner statistics of these models' tables after a bulk rewrite.

    Autovacuum analyzes a table only some time after it changed (and not at all where it is
    switched off): until then the planner takes a table rebuilt with millions of rows for the
    empty one it last saw and plans index lookups on it as scans. Measured on the blocking-key
    index at 1,000,000 customers: an incremental batch of 1,000 records 14.7 s before
    ANALYZE, 8.1 s after (docs/bench-log/2026-11-26.md). ANALYZE reads a sample, ~1 s for a
    table of millions of rows. Nothing to do on other databases."""
    _maintain(models_, lambda connection: "ANALYZE")


def _maintain(models_: Sequence[type[models.Model]], command: Callable[[Any], str]) -> None:
    """Run `command(connection)` over the models' tables, per PostgreSQL database."""
    by_alias: dict[str, list[str]] = {}
    for model in models_:
        by_alias.setdefault(router.db_for_write(model), []).append(model._meta.db_table)
    for alias, tables in by_alias.items():
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        names = ", ".join(connection.ops.quote_name(t) for t in tables)
        with connection.cursor() as cursor:
            cursor.execute(f"{command(connection)} {names}")
