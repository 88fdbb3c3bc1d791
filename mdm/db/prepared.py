"""Prepared statements on Django's PostgreSQL connection, for hot reads with a fixed text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connection
from django.db.backends.utils import CursorWrapper
from psycopg._queries import PostgresQuery
from psycopg.abc import PQGen


class _PreparingCursor(psycopg.Cursor):
    """Server-side binding; every statement prepared on its first execution."""

    def execute(
        self,
        query: Any,
        params: Any = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Any:
        prepare = True if prepare is None else prepare
        return super().execute(query, params, prepare=prepare, binary=binary)

    def _maybe_prepare_gen(
        self, pgq: PostgresQuery, *, prepare: bool | None = None, binary: bool | None = None
    ) -> PQGen[None]:
        # psycopg keeps the statement sent (what Django's query log and CaptureQueriesContext
        # read, `last_executed_query`) only when it does not execute a prepared one: without
        # this, every prepared statement was logged as None.
        self._query = pgq
        return super()._maybe_prepare_gen(pgq, prepare=prepare, binary=binary)


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A cursor on Django's PostgreSQL connection whose statements bind server-side and are
    prepared on first use, then reused by name for the life of the connection.

    Django's cursors bind client-side and never prepare, so PostgreSQL plans every statement
    on every call. For the xref lookups planning costs several times the execution (the
    statements join four tables, one with many indexes), so these hot reads are prepared.
    Only for statements with a fixed text: psycopg keeps one entry per text and connection
    (up to `prepared_max`), and forgets them all on rollback, preparing again when next used.
    Queries still go through Django's cursor wrapper (logging, execute wrappers, counts).
    """
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = _PreparingCursor(connection.connection)
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    # django-stubs types make_cursor's argument as the wrapper it returns, not the raw cursor
    with wrap(raw) as cursor:  # type: ignore[arg-type]
        yield cursor
