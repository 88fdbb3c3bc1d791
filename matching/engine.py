"""Splink on DuckDB: one fresh in-memory connection per run, sized by settings.

A connection (and the Linker on it) is never shared between threads; closing it at the end of
the run drops every table Splink registered, so long-lived workers do not grow.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa
from django.conf import settings
from splink import DuckDBAPI, Linker

logging.getLogger("splink").setLevel(logging.ERROR)


def _connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    threads = settings.KEYSTONE_MATCH_DUCKDB_THREADS
    memory_limit = settings.KEYSTONE_MATCH_DUCKDB_MEMORY
    con.execute(f"SET threads = {threads}")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


@contextmanager
def linker_for(frame: pa.Table, settings_or_model) -> Iterator[Linker]:
    """A Linker deduplicating `frame` with `settings_or_model` (SettingsCreator or model dict)."""
    con = _connection()
    try:
        db = DuckDBAPI(con)
        records = db.register(frame, dataset_display_name="source_records")
        yield Linker(records, settings_or_model, log_level=logging.ERROR)
    finally:
        con.close()


_local = threading.local()


def _small_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET threads = 1")
    con.execute("SET memory_limit = '256MB'")
    return con


def local_connection() -> duckdb.DuckDBPyConnection:
    """This thread's small DuckDB connection for per-request work (blocking keys of a few
    records, compiling the scoring SQL): one thread, a small memory limit, reused across
    calls. Callers register Arrow tables as views and unregister them when done."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = _small_connection()
    return con


def scoring_connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection for scoring candidate pairs (`matching.scoring`): as
    `local_connection`, with DuckDB's optimizer off, and nothing else on it. With the
    optimizer on (or after any catalog change since the PREPARE) DuckDB binds and optimizes
    a prepared statement again at every EXECUTE, which for Splink's comparison SQL cost more
    than computing a few pairs: half the CPU of scoring one changed record, and no faster up
    to ten thousand pairs (docs/bench-log/2026-12-07-incr.md; beyond that the optimized plan
    gains: 30,000 pairs 470 against 540 ms CPU, docs/bench-log/2026-12-07-incr2.md; an
    incremental call of 1,000 records scores about 3,000). The optimizer changes how a
    result is computed, never what: the same values, bit for bit
    (`tests/matching/test_scoring_fast.py`)."""
    con = getattr(_local, "scoring", None)
    if con is None:
        con = _local.scoring = _small_connection()
        con.execute("PRAGMA disable_optimizer")
    return con


@contextmanager
def connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh connection sized for whole-frame work (batch runs), closed afterwards."""
    con = _connection()
    try:
        yield con
    finally:
        con.close()
