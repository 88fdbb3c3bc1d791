"""Bulk inserts with history (COPY on PostgreSQL, bulk_create elsewhere): the history row of
each inserted row holds exactly the row's values, and JSON is written as Django writes it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder

from mdm.db.copy import COPY_THRESHOLD, json_text
from mdm.models import GoldenRecord, SourceRecord, SourceSystem
from mdm.services.audit import bulk_create_tracked, bulk_update_tracked

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "value",
    [
        {"name": "Grüße GmbH", "n": 3, "ok": True, "none": None, "list": [1, "a", None]},
        {"when": dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)},
        {"day": dt.date(2020, 2, 29), "at": dt.time(8, 30), "price": Decimal("1.10")},
        {"id": uuid.UUID(int=7), 1: "integer key"},
        {"huge": 2**70},
        ["a", {"b": [1.5, -2]}],
    ],
)
def test_json_text_writes_what_djangos_encoder_writes(value):
    assert json.loads(json_text(value)) == json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def test_json_text_of_none_is_sql_null():
    assert json_text(None) is None


def test_each_history_row_holds_its_rows_values():
    system = SourceSystem.objects.create(code="crm")
    goldens = [
        GoldenRecord(
            id=f"CUS-BULK{i:06d}",
            entity_type="customer",
            display_name=f"Firma {i}",
            values={"name": f"Firma {i}", "founded": f"2000-01-{1 + i % 28:02d}"},
            lineage={"name": {"rule": "longest", "value": f"Firma {i}", "runner_ups": []}},
        )
        for i in range(COPY_THRESHOLD + 10)  # past the threshold: the COPY path on PostgreSQL
    ]
    bulk_create_tracked(GoldenRecord, goldens, actor="tester", reason="bulk test")
    records = [
        SourceRecord(
            entity_type="customer",
            source_system=system,
            source_key=f"K{i}",
            raw={"name": f"Firma {i}", "note": "ümlaut"},
            attributes={"name": f"Firma {i}"},
            payload_hash=f"{i:064d}",
            golden_id=g.id,
        )
        for i, g in enumerate(goldens)
    ]
    bulk_create_tracked(SourceRecord, records, actor="tester", reason="bulk test")

    assert all(r.pk is not None for r in records)
    stored = {r.pk: r for r in SourceRecord.objects.all()}
    history = {h.id: h for h in SourceRecord.history.all()}
    assert set(history) == set(stored) == {r.pk for r in records}
    for pk, row in stored.items():
        h = history[pk]
        for field in (
            "raw",
            "attributes",
            "payload_hash",
            "received_at",
            "updated_at",
            "golden_id",
        ):
            assert getattr(h, field) == getattr(row, field), field
        assert (h.history_type, h.actor, h.history_change_reason) == ("+", "tester", "bulk test")

    golden_history = {h.id: h for h in GoldenRecord.history.all()}
    for golden in GoldenRecord.objects.all():
        h = golden_history[golden.id]
        assert (h.values, h.lineage, h.display_name) == (
            golden.values,
            golden.lineage,
            golden.display_name,
        )
        assert h.created_at == golden.created_at


def test_history_rows_follow_the_order_the_rows_were_given():
    # Golden ids are random text, so their sorted order is not the order of creation; the
    # history copied inside the database must still list the rows as they were written.
    names = [f"CUS-ORD{i:03d}" for i in range(COPY_THRESHOLD + 5)]
    given = names[::-1][: len(names) // 2] + names[: len(names) - len(names) // 2]
    goldens = [GoldenRecord(id=gid, entity_type="customer", values={"name": gid}) for gid in given]
    bulk_create_tracked(GoldenRecord, goldens, actor="tester", reason="order test")
    written = list(GoldenRecord.history.order_by("history_id").values_list("id", "values"))
    assert written == [(gid, {"name": gid}) for gid in given]


def test_updates_copy_history_from_the_updated_rows():
    system = SourceSystem.objects.create(code="crm")
    records = [
        SourceRecord(
            entity_type="customer",
            source_system=system,
            source_key=f"U{i}",
            attributes={"name": f"Old {i}"},
            payload_hash=f"{i:064d}",
        )
        for i in range(COPY_THRESHOLD + 5)
    ]
    bulk_create_tracked(SourceRecord, records, actor="tester", reason="create")
    for record in records:
        record.attributes = {"name": f"New {record.source_key}"}
    bulk_update_tracked(SourceRecord, records, ["attributes"], actor="steward", reason="fix")
    changes = SourceRecord.history.filter(history_type="~").order_by("history_id")
    assert [(h.id, h.attributes, h.actor, h.history_change_reason) for h in changes] == [
        (r.pk, {"name": f"New {r.source_key}"}, "steward", "fix") for r in records
    ]


def test_golden_ids_are_prefixed_crockford_base32_and_do_not_repeat():
    import re

    from mdm.models import new_golden_id

    ids = [new_golden_id("customer") for _ in range(5000)]
    assert all(re.fullmatch(r"CUS-[0-9A-HJKMNP-TV-Z]{10}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert {c for i in ids for c in i[4:]} == set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


@pytest.mark.postgres(reason="column compression is a PostgreSQL feature; SQLite has none")
def test_json_columns_are_compressed_with_lz4_on_postgresql():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attrelid::regclass::text, attname, attcompression FROM pg_attribute "
            "WHERE attrelid IN ('mdm_goldenrecord'::regclass, 'mdm_sourcerecord'::regclass) "
            "AND atttypid = 'jsonb'::regtype"
        )
        methods = {(table, column): method for table, column, method in cursor.fetchall()}
    assert methods[("mdm_goldenrecord", "lineage")] == "l"
    assert set(methods.values()) == {"l"}

    big = {f"field{i}": {"rule": "longest", "value": "x" * 40, "runner_ups": []} for i in range(60)}
    GoldenRecord.objects.create(id="CUS-LZ4", entity_type="customer", lineage=big)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(lineage) FROM mdm_goldenrecord")
        assert cursor.fetchone()[0] == "lz4"
    assert GoldenRecord.objects.get(id="CUS-LZ4").lineage == big
