"""PostgreSQL connection dropped mid-chunk: the test terminates its own backend
(`pg_terminate_backend`, from a second connection) just as a chunk writes its events, after its
records and golden records. That chunk is retried on a new connection, or reported — never
half-written."""

from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection

from mdm.errors import IngestInterrupted
from mdm.models import GoldenRecord, OutboxEvent, SourceRecord
from mdm.services.ingest import CHUNK_ATTEMPTS, ingest_records
from tests.faults import FAULT_SUITE_NEEDS

pytestmark = [
    pytest.mark.postgres(reason=FAULT_SUITE_NEEDS),
    pytest.mark.django_db(transaction=True),
]

ROWS = [
    {"source_key": f"k{i:02d}", "kind": "organization", "name": f"Company {i}", "country": "DE"}
    for i in range(30)
]
EVENTS_INSERT = 'INSERT INTO "mdm_outboxevent"'


@contextmanager
def connection_dropped_at_events(*, chunk: int, times: int):
    """Terminate this connection's backend just before the event insert of chunk `chunk`
    (1-based), on its first `times` attempts. Yields the list of drops made."""
    db = connection.settings_dict
    killer = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    )
    seen, drops = [0], []

    def wrapper(execute, sql, params, many, context):
        if sql.startswith(EVENTS_INSERT):
            seen[0] += 1
            at_chunk = seen[0] - len(drops)  # an attempt that was dropped does not count
            if at_chunk == chunk and len(drops) < times:
                pid = context["connection"].connection.info.backend_pid
                killer.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
                drops.append(pid)
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(wrapper):
            yield drops
    finally:
        killer.close()


def ingest(rows):
    return ingest_records(
        entity_type="customer",
        system_code="crm",
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
        chunk_size=10,
    )


def test_a_chunk_whose_connection_drops_is_retried_whole(proved):
    with connection_dropped_at_events(chunk=2, times=1) as drops:
        summary = ingest(ROWS)

    keys = sorted(SourceRecord.objects.values_list("source_key", flat=True))
    assert len(drops) == 1
    assert summary.counts["loaded"] == 30
    assert keys == [row["source_key"] for row in ROWS]  # each once
    assert GoldenRecord.objects.count() == 30
    assert OutboxEvent.objects.count() == 30  # one golden.created each, none twice
    assert SourceRecord.history.count() == 30
    proved(
        "a PostgreSQL connection terminated while chunk 2 of 3 was writing: the chunk was "
        "retried on a new connection; 30 records, 30 golden records, 30 events and 30 history "
        "rows — nothing lost, nothing twice"
    )


def test_a_chunk_that_keeps_losing_its_connection_is_reported_and_not_half_written(proved):
    dropping = connection_dropped_at_events(chunk=2, times=99)
    with dropping as drops, pytest.raises(IngestInterrupted) as e:
        ingest(ROWS)

    keys = sorted(SourceRecord.objects.values_list("source_key", flat=True))
    assert len(drops) == CHUNK_ATTEMPTS  # every attempt
    assert "lines 11–20 not loaded" in str(e.value)
    assert keys == [row["source_key"] for row in ROWS[:10]]  # chunk 1 whole, chunk 2 nothing
    assert GoldenRecord.objects.count() == OutboxEvent.objects.count() == 10
    assert SourceRecord.history.count() == 10
    proved(
        f"chunk 2 lost its connection on all {len(drops)} attempts: reported as "
        f"'{e.value}'; chunk 1 loaded whole, chunk 2 left no record, golden record, event, "
        "or history row"
    )
