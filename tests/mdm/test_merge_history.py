"""merge_many's history rows and events, row by row: every row it changes gets one history
row holding the row as stored, stamped with who, why and the correlation ID."""

import pytest
from django.forms.models import model_to_dict

from mdm.context import audit_context
from mdm.db.copy import insert_history, insert_history_of_rows
from mdm.models import GoldenRecord, GoldenStatus, LinkMethod, OutboxEvent, SourceRecord
from mdm.services.audit import _history_meta
from mdm.services.ingest import ingest_records
from mdm.services.resolution import merge_many

pytestmark = pytest.mark.django_db


def load(rows, system="crm", entity="customer"):
    ingest_records(
        entity_type=entity,
        system_code=system,
        rows=list(enumerate(rows, start=2)),
        actor="test",
        create_system=True,
    )


def golden_of(key, system="crm"):
    return SourceRecord.objects.get(source_system__code=system, source_key=key).golden_id


def tracked(history_row, model):
    names = [f.attname for f in model.history.model.tracked_fields]
    return {name: getattr(history_row, name) for name in names}


def test_each_moved_record_gets_one_history_row_as_stored(steward):
    load([{"source_key": "a", "name": "Acme"}])
    load([{"source_key": "b", "name": "ACME Inc", "email": "x@acme.com"}], system="erp")
    load([{"source_key": "b2", "name": "Acme GmbH"}], system="erp")
    survivor, loser, other = golden_of("a"), golden_of("b", "erp"), golden_of("b2", "erp")
    before = SourceRecord.history.count()

    with audit_context(correlation="corr-merge-1"):
        merge_many(
            merges=[(survivor, loser, 0.97), (survivor, other, 0.91)],
            actor=steward,
            reason="dupes",
            method=LinkMethod.STEWARD,
        )

    assert SourceRecord.history.count() == before + 2
    for key, probability in (("b", 0.97), ("b2", 0.91)):
        record = SourceRecord.objects.get(source_key=key)
        row = SourceRecord.history.filter(id=record.pk).order_by("-history_id").first()
        assert tracked(row, SourceRecord) == {
            name: getattr(record, name) for name in tracked(row, SourceRecord)
        }
        assert (row.golden_id, row.link_method, row.link_probability) == (
            survivor,
            LinkMethod.STEWARD,
            probability,
        )
        assert (row.history_type, row.history_user, row.actor) == ("~", steward, "user:steward")
        assert (row.history_change_reason, row.correlation_id) == ("dupes", "corr-merge-1")


def test_losers_redirects_and_survivor_get_history_rows_as_stored():
    load([{"source_key": f"c{i}", "name": f"Customer {i}"} for i in range(3)])
    a, b, c = golden_of("c0"), golden_of("c1"), golden_of("c2")
    merge_many(merges=[(b, c, None)], actor="test", reason="first")

    merge_many(merges=[(a, b, 0.99)], actor="matching", reason="second")

    for golden_id in (a, b, c):
        golden = GoldenRecord.objects.get(pk=golden_id)
        row = GoldenRecord.history.filter(id=golden_id).order_by("-history_id").first()
        assert tracked(row, GoldenRecord) == {
            name: getattr(golden, name) for name in tracked(row, GoldenRecord)
        }
        assert (row.history_change_reason, row.actor) == ("second", "matching")
    assert GoldenRecord.objects.get(pk=c).merged_into_id == a
    assert GoldenRecord.objects.get(pk=a).values["name"] in {"Customer 0", "Customer 1"}


def test_a_deleted_member_moves_but_is_no_cross_reference():
    load([{"source_key": "a", "name": "Acme"}, {"source_key": "b", "name": "Acme"}])
    survivor, loser = golden_of("a"), golden_of("b")
    load([{"source_key": "b", "name": "Acme", "deleted": "true"}])
    load([{"source_key": "b3", "name": "Acme Corp"}], system="erp")
    merge_many(merges=[(loser, golden_of("b3", "erp"), None)], actor="test", reason="setup")

    merge_many(merges=[(survivor, loser, 0.9)], actor="test", reason="dupe")

    assert SourceRecord.objects.get(source_key="b").golden_id == survivor
    event = OutboxEvent.objects.filter(event_type="golden.merged", golden_id=survivor).get()
    assert event.payload["xrefs_before"][loser] == [{"system": "erp", "source_key": "b3"}]
    assert event.payload["xrefs_after"][survivor] == [
        {"system": "crm", "source_key": "a"},
        {"system": "erp", "source_key": "b3"},
    ]
    assert event.payload["status"] == GoldenStatus.ACTIVE


def test_a_survivor_left_without_live_members_is_retired_in_its_merge_event():
    load([{"source_key": "a", "name": "Acme"}, {"source_key": "b", "name": "Acme"}])
    survivor, loser = golden_of("a"), golden_of("b")
    load([{"source_key": "a", "name": "Acme", "deleted": "true"}])
    load([{"source_key": "b", "name": "Acme", "deleted": "true"}])

    merge_many(merges=[(survivor, loser, None)], actor="test", reason="dupe")

    assert GoldenRecord.objects.get(pk=survivor).status == GoldenStatus.RETIRED
    event = OutboxEvent.objects.get(event_type="golden.merged")
    assert (event.payload["status"], event.payload["xrefs_after"]) == (
        GoldenStatus.RETIRED,
        {survivor: []},
    )


def test_history_copied_from_rows_equals_history_built_from_instances():
    load([{"source_key": f"k{i}", "name": f"Ünïcode 'n' {i}", "tax_id": "DE1"} for i in range(60)])
    records = list(SourceRecord.objects.order_by("pk"))
    meta = _history_meta("test", "compare", "~")

    insert_history(SourceRecord, records, meta=meta)
    insert_history_of_rows(SourceRecord, [r.pk for r in records], meta=meta)

    rows = SourceRecord.history.filter(history_change_reason="compare").order_by("history_id")
    built, copied = rows[: len(records)], rows[len(records) :]
    for left, right in zip(built, copied, strict=True):
        assert model_to_dict(left, exclude=["history_id"]) == model_to_dict(
            right, exclude=["history_id"]
        )
    assert [r.id for r in copied] == [r.pk for r in records]


def test_a_large_batch_moves_members_pins_and_relations_like_a_small_one(steward):
    from mdm.services.pins import pin_value

    load([{"source_key": f"c{i}", "name": f"Customer {i}"} for i in range(120)])
    load(
        [{"source_key": "k1", "contract_number": "C-1", "customer_key": "c101"}], entity="contract"
    )
    golden = {f"c{i}": golden_of(f"c{i}") for i in range(120)}
    pin_value(
        golden=GoldenRecord.objects.get(pk=golden["c99"]),
        attribute="name",
        value="Pinned",
        actor=steward,
        reason="x",
    )
    merges = [(golden[f"c{2 * i}"], golden[f"c{2 * i + 1}"], 0.9) for i in range(60)]

    merge_many(merges=merges, actor="matching", reason="big batch")

    for survivor, loser, _ in merges:
        assert GoldenRecord.objects.get(pk=loser).merged_into_id == survivor
        assert SourceRecord.objects.filter(golden_id=survivor).count() == 2
    contract = SourceRecord.objects.get(source_key="k1").golden
    assert contract.customer_id == golden["c100"]
    assert GoldenRecord.objects.get(pk=golden["c98"]).values["name"] == "Pinned"
    assert OutboxEvent.objects.filter(event_type="golden.merged").count() == 60
