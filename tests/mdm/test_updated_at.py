"""`updated_at` of a golden record moves with every change of it — values, status, membership,
relations — in every write path, bulk UPDATE (a VALUES list and COPY) included. Integrations
sync by `updated_since`; a change that does not move it is a change they never see."""

from datetime import datetime

import pytest
from django.utils import timezone

from mdm.models import GoldenRecord, GoldenStatus, OutboxEvent, SourceRecord
from mdm.services.ingest import ingest_records
from mdm.services.pins import pin_value, unpin_value
from mdm.services.resolution import link, merge, merge_many, split
from mdm.services.rules import update_rule

pytestmark = pytest.mark.django_db

COPY_PATH = 60  # over mdm.db.update.VALUES_THRESHOLD: the UPDATE takes its rows by COPY


def load(system: str, *rows: dict, entity: str = "customer") -> None:
    ingest_records(
        entity_type=entity,
        system_code=system,
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
    )


def golden_id_of(system: str, key: str, entity: str = "customer") -> str:
    return SourceRecord.objects.get(
        entity_type=entity, source_system__code=system, source_key=key
    ).golden_id


def updated_at(golden_id: str) -> datetime:
    return GoldenRecord.objects.get(pk=golden_id).updated_at


@pytest.fixture
def mark() -> datetime:
    """A moment after the arrange step; every changed record must be updated after it."""
    return timezone.now()


def test_ingest_value_change_moves_updated_at():
    load("crm", {"source_key": "1", "name": "Acme", "email": "a@acme.com"})
    golden_id = golden_id_of("crm", "1")
    mark = timezone.now()

    load("crm", {"source_key": "1", "name": "Acme", "email": "sales@acme.com"})

    assert updated_at(golden_id) > mark


def test_ingest_value_change_of_many_records_moves_updated_at_on_the_copy_path():
    load("crm", *({"source_key": str(n), "name": f"Firm {n}"} for n in range(COPY_PATH)))
    mark = timezone.now()

    load("crm", *({"source_key": str(n), "name": f"Firm {n} Ltd"} for n in range(COPY_PATH)))

    stale = GoldenRecord.objects.filter(entity_type="customer", updated_at__lte=mark)
    assert stale.count() == 0
    assert GoldenRecord.objects.filter(entity_type="customer").count() == COPY_PATH


def test_unchanged_ingest_leaves_updated_at_alone():
    load("crm", {"source_key": "1", "name": "Acme"})
    golden_id = golden_id_of("crm", "1")
    before = updated_at(golden_id)

    load("crm", {"source_key": "1", "name": "Acme"})

    assert updated_at(golden_id) == before


def test_tombstone_of_the_last_member_retires_and_moves_updated_at():
    load("crm", {"source_key": "1", "name": "Acme"})
    golden_id = golden_id_of("crm", "1")
    mark = timezone.now()

    load("crm", {"source_key": "1", "name": "Acme", "deleted": True})

    golden = GoldenRecord.objects.get(pk=golden_id)
    assert golden.status == GoldenStatus.RETIRED
    assert golden.updated_at > mark


def test_tombstone_that_leaves_the_values_alone_still_moves_updated_at(steward):
    load("crm", {"source_key": "1", "name": "Acme"})
    load("erp", {"source_key": "9", "name": "Acme"})
    survivor = GoldenRecord.objects.get(pk=golden_id_of("crm", "1"))
    merge(
        survivor=survivor,
        loser=GoldenRecord.objects.get(pk=golden_id_of("erp", "9")),
        actor=steward,
        reason="same",
    )
    values = GoldenRecord.objects.get(pk=survivor.pk).values
    mark = timezone.now()

    load("erp", {"source_key": "9", "name": "Acme", "deleted": True})

    golden = GoldenRecord.objects.get(pk=survivor.pk)
    assert golden.values == values
    assert golden.updated_at > mark
    assert OutboxEvent.objects.filter(
        event_type="golden.updated", golden_id=survivor.pk, created_at__gt=mark
    ).exists()


def test_merge_moves_survivor_and_loser_even_when_the_values_are_the_same(steward):
    load("crm", {"source_key": "1", "name": "Acme"})
    load("erp", {"source_key": "9", "name": "Acme"})
    survivor_id, loser_id = golden_id_of("crm", "1"), golden_id_of("erp", "9")
    mark = timezone.now()

    merge(
        survivor=GoldenRecord.objects.get(pk=survivor_id),
        loser=GoldenRecord.objects.get(pk=loser_id),
        actor=steward,
        reason="same",
    )

    assert updated_at(survivor_id) > mark
    assert updated_at(loser_id) > mark


def test_merge_many_on_the_copy_path_moves_every_survivor_and_loser():
    load("crm", *({"source_key": str(n), "name": f"Firm {n}"} for n in range(COPY_PATH)))
    load("erp", *({"source_key": str(n), "name": f"Firm {n}"} for n in range(COPY_PATH)))
    merges = [
        (golden_id_of("crm", str(n)), golden_id_of("erp", str(n)), 0.99) for n in range(COPY_PATH)
    ]
    mark = timezone.now()

    merge_many(merges=merges, actor="test", reason="batch")

    assert not GoldenRecord.objects.filter(updated_at__lte=mark).exists()
    assert GoldenRecord.objects.filter(status=GoldenStatus.MERGED).count() == COPY_PATH


def test_link_moves_both_golden_records(steward):
    load("crm", {"source_key": "1", "name": "Acme"}, {"source_key": "2", "name": "Acme"})
    load("erp", {"source_key": "9", "name": "Acme"})
    crm_id, erp_id = golden_id_of("crm", "1"), golden_id_of("erp", "9")
    merge(
        survivor=GoldenRecord.objects.get(pk=crm_id),
        loser=GoldenRecord.objects.get(pk=golden_id_of("crm", "2")),
        actor=steward,
        reason="same",
    )
    mark = timezone.now()

    link(
        record=SourceRecord.objects.get(source_key="2"),
        golden=GoldenRecord.objects.get(pk=erp_id),
        actor=steward,
        reason="belongs there",
    )

    assert updated_at(crm_id) > mark
    assert updated_at(erp_id) > mark


def test_split_moves_the_original(steward):
    load("crm", {"source_key": "1", "name": "Acme"})
    load("erp", {"source_key": "9", "name": "Acme"})
    survivor = GoldenRecord.objects.get(pk=golden_id_of("crm", "1"))
    merge(
        survivor=survivor,
        loser=GoldenRecord.objects.get(pk=golden_id_of("erp", "9")),
        actor=steward,
        reason="same",
    )
    mark = timezone.now()

    created = split(
        golden=survivor,
        records=[SourceRecord.objects.get(source_key="9")],
        actor=steward,
        reason="not the same",
    )

    assert updated_at(survivor.pk) > mark
    assert created.updated_at > mark


def test_pin_and_unpin_move_updated_at(steward):
    load("crm", {"source_key": "1", "name": "Acme"})
    golden = GoldenRecord.objects.get(pk=golden_id_of("crm", "1"))
    mark = timezone.now()

    pin_value(golden=golden, attribute="name", value="ACME AG", actor=steward, reason="verified")
    pinned = updated_at(golden.pk)
    unpin_value(golden=golden, attribute="name", actor=steward, reason="not needed")

    assert pinned > mark
    assert updated_at(golden.pk) > pinned


def test_rule_change_moves_the_records_it_changes(steward):
    load("crm", {"source_key": "1", "name": "Acme"})
    load("erp", {"source_key": "9", "name": "Acme Incorporated"})
    survivor = GoldenRecord.objects.get(pk=golden_id_of("crm", "1"))
    merge(
        survivor=survivor,
        loser=GoldenRecord.objects.get(pk=golden_id_of("erp", "9")),
        actor=steward,
        reason="same",
    )
    mark = timezone.now()

    update_rule(
        entity_type="customer",
        attribute="name",
        strategy="source_priority",
        system_order=["crm", "erp"],
        actor=steward,
        reason="crm names are curated",
    )

    assert GoldenRecord.objects.get(pk=survivor.pk).values["name"] == "Acme"
    assert updated_at(survivor.pk) > mark


def test_relation_re_pointed_by_a_merge_moves_the_referrer(steward):
    load("crm", {"source_key": "c1", "name": "Acme"}, {"source_key": "c2", "name": "Acme"})
    load(
        "crm",
        {"source_key": "k1", "contract_number": "K-1", "customer_key": "c2"},
        entity="contract",
    )
    contract_id = golden_id_of("crm", "k1", entity="contract")
    survivor_id, loser_id = golden_id_of("crm", "c1"), golden_id_of("crm", "c2")
    assert GoldenRecord.objects.get(pk=contract_id).customer_id == loser_id
    mark = timezone.now()

    merge(
        survivor=GoldenRecord.objects.get(pk=survivor_id),
        loser=GoldenRecord.objects.get(pk=loser_id),
        actor=steward,
        reason="same",
    )

    contract = GoldenRecord.objects.get(pk=contract_id)
    assert contract.customer_id == survivor_id
    assert contract.updated_at > mark
