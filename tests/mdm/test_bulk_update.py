"""update_rows: many rows in one UPDATE ... FROM on PostgreSQL, bulk_update elsewhere — the
same rows end up with the same values either way."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mdm.db.copy import json_text
from mdm.db.ids import ANY_THRESHOLD, ids_in
from mdm.db.update import VALUES_THRESHOLD, update_rows
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord, new_golden_id
from tests.factories import SourceSystemFactory

pytestmark = pytest.mark.django_db

WHEN = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)


def goldens(count):
    created = [
        GoldenRecord(id=new_golden_id("customer"), entity_type="customer", values={"n": i})
        for i in range(count)
    ]
    GoldenRecord.objects.bulk_create(created)
    return created


def records(count, golden):
    system = SourceSystemFactory(code="crm")
    created = [
        SourceRecord(
            entity_type="customer",
            source_system=system,
            source_key=f"k{i}",
            payload_hash="x",
            golden=golden,
            attributes={"name": f"Name {i}"},
        )
        for i in range(count)
    ]
    SourceRecord.objects.bulk_create(created)
    return created


@pytest.mark.parametrize("count", [3, VALUES_THRESHOLD + 7])
def test_named_fields_of_every_row_are_written(count):
    rows = goldens(count + 1)
    survivor, others = rows[0], rows[1:]
    for n, golden in enumerate(others):
        golden.status = GoldenStatus.MERGED
        golden.merged_into = survivor
        golden.values = {"name": f"Ünïcode 'quoted' {n}", "nested": [1, None, {"a": True}]}
        golden.display_name = "not written"

    updated = update_rows(GoldenRecord, others, ["status", "merged_into", "values"])

    assert updated == count
    stored = GoldenRecord.objects.in_bulk([g.id for g in others])
    for n, golden in enumerate(others):
        row = stored[golden.id]
        assert (row.status, row.merged_into_id, row.display_name) == (
            GoldenStatus.MERGED,
            survivor.id,
            "",
        )
        assert row.values == {"name": f"Ünïcode 'quoted' {n}", "nested": [1, None, {"a": True}]}
    assert GoldenRecord.objects.get(pk=survivor.pk).status == GoldenStatus.ACTIVE


@pytest.mark.parametrize("count", [2, VALUES_THRESHOLD + 1])
def test_nulls_floats_and_datetimes_round_trip(count):
    golden, target = goldens(2)
    moving = records(count, golden)
    for n, record in enumerate(moving):
        record.golden = target if n % 2 else None
        record.link_probability = None if n % 2 else 0.25 + n
        record.linked_at = WHEN + dt.timedelta(seconds=n)
        record.link_method = "auto"

    update_rows(SourceRecord, moving, ["golden", "link_probability", "linked_at", "link_method"])

    stored = SourceRecord.objects.in_bulk([r.pk for r in moving])
    for n, record in enumerate(moving):
        row = stored[record.pk]
        assert row.golden_id == (target.id if n % 2 else None)
        assert row.link_probability == (None if n % 2 else 0.25 + n)
        assert row.linked_at == WHEN + dt.timedelta(seconds=n)
        assert row.link_method == "auto"


def test_auto_now_fields_are_left_alone_unless_named():
    (golden,) = goldens(1)
    before = GoldenRecord.objects.get(pk=golden.pk).updated_at
    golden.display_name = "Renamed"

    update_rows(GoldenRecord, [golden], ["display_name"])

    stored = GoldenRecord.objects.get(pk=golden.pk)
    assert (stored.display_name, stored.updated_at) == ("Renamed", before)


@pytest.mark.postgres(reason="the set-based path is PostgreSQL's")
def test_one_update_statement_however_many_rows():
    rows = goldens(3 * VALUES_THRESHOLD)
    for golden in rows:
        golden.display_name = "x"

    with CaptureQueriesContext(connection) as queries:
        update_rows(GoldenRecord, rows, ["display_name"])

    updates = [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1


def test_nothing_to_update_writes_nothing():
    with CaptureQueriesContext(connection) as queries:
        assert update_rows(GoldenRecord, [], ["display_name"]) == 0
    assert queries.captured_queries == []


@pytest.mark.parametrize("count", [3, ANY_THRESHOLD + 5])
def test_ids_in_selects_the_same_rows_as_an_in_lookup(count):
    rows = goldens(count + 2)
    (golden,) = goldens(1)
    members = records(count + 2, golden)
    wanted_goldens = [g.id for g in rows[:count]]
    wanted_records = [r.pk for r in members[:count]]

    assert set(
        GoldenRecord.objects.filter(ids_in(GoldenRecord, "id", wanted_goldens)).values_list(
            "id", flat=True
        )
    ) == set(wanted_goldens)
    assert set(
        SourceRecord.objects.filter(
            ids_in(SourceRecord, "id", wanted_records) | ids_in(SourceRecord, "golden", ["none"])
        ).values_list("pk", flat=True)
    ) == set(wanted_records)


def test_json_text_reads_back_as_djangos_encoder_writes():
    value = {
        "when": dt.datetime(2026, 11, 26, 3, 0, 1, 123456, tzinfo=dt.UTC),
        "day": dt.date(2026, 11, 26),
        "price": Decimal("12.50"),
        "name": 'Ünïcode "quoted" \\ slash',
        "big": 123456789012345678901234567890,
        "ratio": 0.1 + 0.2,
        "nested": [{"a": None, "b": True}, (1, 2)],
        7: "int key",
    }

    assert json.loads(json_text(value)) == json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    small = {k: v for k, v in value.items() if k != "big"}
    assert json.loads(json_text(small)) == json.loads(json.dumps(small, cls=DjangoJSONEncoder))
