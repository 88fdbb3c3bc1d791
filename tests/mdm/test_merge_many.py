"""merge_many: many merges in one transaction, set-based, with the rules of a single merge."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mdm.errors import InvalidResolution
from mdm.models import (
    GoldenRecord,
    GoldenStatus,
    LinkMethod,
    OutboxEvent,
    SourceRecord,
    StewardOverride,
)
from mdm.services.ingest import ingest_records
from mdm.services.pins import pin_value
from mdm.services.resolution import merge_many

pytestmark = pytest.mark.django_db


def load(entity, rows, system="crm"):
    ingest_records(
        entity_type=entity,
        system_code=system,
        rows=list(enumerate(rows, start=2)),
        actor="test",
        create_system=True,
    )


def goldens_by_key(entity="customer"):
    return dict(
        SourceRecord.objects.filter(entity_type=entity).values_list("source_key", "golden_id")
    )


def customers(count):
    load("customer", [{"source_key": f"c{i}", "name": f"Customer {i}"} for i in range(count)])
    return goldens_by_key()


def pairs_of(golden, count):
    return [(golden[f"c{2 * i}"], golden[f"c{2 * i + 1}"], 0.99) for i in range(count)]


def test_independent_merges_apply_in_one_call():
    golden = customers(6)
    merges = pairs_of(golden, 3)

    survivors = merge_many(merges=merges, actor="matching", reason="auto-link")

    assert survivors == [s for s, _, _ in merges]
    for survivor, loser, _ in merges:
        merged = GoldenRecord.objects.get(pk=loser)
        assert (merged.status, merged.merged_into_id) == (GoldenStatus.MERGED, survivor)
    moved = SourceRecord.objects.get(source_key="c1")
    assert (moved.golden_id, moved.link_method, moved.link_probability) == (
        golden["c0"],
        LinkMethod.AUTO,
        0.99,
    )


def test_a_chain_in_one_batch_ends_under_the_last_survivor():
    golden = customers(3)
    a, b, c = golden["c0"], golden["c1"], golden["c2"]

    survivors = merge_many(merges=[(a, b, 0.9), (b, c, 0.8)], actor="matching", reason="chain")

    assert survivors == [a, a]
    assert GoldenRecord.objects.get(pk=c).merged_into_id == a
    assert GoldenRecord.objects.get(pk=b).merged_into_id == a
    assert set(SourceRecord.objects.filter(golden_id=a).values_list("source_key", flat=True)) == {
        "c0",
        "c1",
        "c2",
    }
    assert SourceRecord.objects.get(source_key="c2").link_probability == 0.8


def test_earlier_redirects_to_a_loser_are_flattened():
    golden = customers(3)
    a, b, c = golden["c0"], golden["c1"], golden["c2"]
    merge_many(merges=[(b, c, None)], actor="steward", reason="first")

    merge_many(merges=[(a, b, None)], actor="steward", reason="second")

    assert GoldenRecord.objects.get(pk=c).merged_into_id == a


def test_contracts_of_a_merged_customer_point_at_the_survivor():
    golden = customers(2)
    load("contract", [{"source_key": "k1", "contract_number": "C-1", "customer_key": "c1"}])
    contract = goldens_by_key("contract")["k1"]
    assert GoldenRecord.objects.get(pk=contract).customer_id == golden["c1"]

    merge_many(merges=[(golden["c0"], golden["c1"], 0.99)], actor="matching", reason="dupe")

    assert GoldenRecord.objects.get(pk=contract).customer_id == golden["c0"]


def test_a_losers_pin_moves_unless_the_survivor_pins_the_same_field(steward):
    golden = customers(4)
    survivor, loser, plain, pinned = (
        GoldenRecord.objects.get(pk=golden[f"c{i}"]) for i in range(4)
    )
    pin_value(golden=survivor, attribute="name", value="Kept", actor=steward, reason="x")
    pin_value(golden=loser, attribute="name", value="Dropped", actor=steward, reason="x")
    pin_value(golden=pinned, attribute="name", value="Moved", actor=steward, reason="x")

    merge_many(
        merges=[(survivor.pk, loser.pk, None), (plain.pk, pinned.pk, None)],
        actor=steward,
        reason="dupes",
    )

    pins = dict(StewardOverride.objects.values_list("golden_id", "value"))
    assert pins == {survivor.pk: "Kept", plain.pk: "Moved"}
    assert GoldenRecord.objects.get(pk=plain.pk).values["name"] == "Moved"


def test_each_loser_gets_a_merge_event_and_history_with_the_reason():
    golden = customers(4)
    survivor, loser = golden["c2"], golden["c3"]

    merge_many(merges=pairs_of(golden, 2), actor="matching", reason="run #7")

    assert OutboxEvent.objects.filter(event_type="golden.merged").count() == 2
    event = OutboxEvent.objects.get(event_type="golden.merged", golden_id=survivor)
    assert (event.actor, event.payload["merged"], event.payload["reason"]) == (
        "matching",
        [loser],
        "run #7",
    )
    assert event.payload["xrefs_before"] == {
        survivor: [{"system": "crm", "source_key": "c2"}],
        loser: [{"system": "crm", "source_key": "c3"}],
    }
    assert event.payload["xrefs_after"] == {
        survivor: [{"system": "crm", "source_key": "c2"}, {"system": "crm", "source_key": "c3"}]
    }
    row = GoldenRecord.history.filter(id=loser).first()
    assert (row.status, row.actor, row.history_change_reason) == (
        GoldenStatus.MERGED,
        "matching",
        "run #7",
    )


def test_query_count_does_not_grow_per_merge():
    golden = customers(110)

    with CaptureQueriesContext(connection) as few:
        merge_many(merges=pairs_of(golden, 5), actor="matching", reason="x")
    with CaptureQueriesContext(connection) as many:
        merge_many(
            merges=[(golden[f"c{2 * i}"], golden[f"c{2 * i + 1}"], 0.9) for i in range(5, 55)],
            actor="matching",
            reason="x",
        )

    assert len(many) < 2 * len(few) + 5


@pytest.mark.parametrize(
    "shape",
    ["self", "cycle", "two survivors", "already merged", "cross entity", "unknown"],
)
def test_invalid_batches_are_refused_and_write_nothing(shape):
    golden = customers(4)
    load("product", [{"source_key": "p1", "sku": "AB-1", "name": "Widget"}])
    a, b, c, d = (golden[f"c{i}"] for i in range(4))
    if shape == "already merged":
        merge_many(merges=[(c, d, None)], actor="test", reason="setup")
    batches = {
        "self": [(a, b, None), (c, c, None)],
        "cycle": [(a, b, None), (b, c, None), (c, a, None)],
        "two survivors": [(a, b, None), (c, b, None)],
        "already merged": [(a, b, None), (a, d, None)],
        "cross entity": [(a, b, None), (c, goldens_by_key("product")["p1"], None)],
        "unknown": [(a, b, None), (c, "CUS-NOPE", None)],
    }
    history, outbox = GoldenRecord.history.count(), OutboxEvent.objects.count()

    with pytest.raises(InvalidResolution):
        merge_many(merges=batches[shape], actor="test", reason="bad")

    assert GoldenRecord.objects.get(pk=b).status == GoldenStatus.ACTIVE
    assert SourceRecord.objects.get(source_key="c1").golden_id == b
    assert (GoldenRecord.history.count(), OutboxEvent.objects.count()) == (history, outbox)
