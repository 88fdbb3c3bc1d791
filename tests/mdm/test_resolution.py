"""link / merge / split / pin through the real services and database."""

import pytest

from mdm.errors import InvalidResolution
from mdm.models import (
    GoldenRecord,
    GoldenStatus,
    LinkMethod,
    OutboxEvent,
    SourceRecord,
    StewardOverride,
    SurvivorshipRule,
)
from mdm.selectors import resolve_golden, xrefs_as_of
from mdm.services.ingest import ingest_records
from mdm.services.pins import pin_value, unpin_value
from mdm.services.resolution import link, merge, split

pytestmark = pytest.mark.django_db


def load(system, entity, *rows):
    ingest_records(
        entity_type=entity,
        system_code=system,
        rows=list(enumerate(rows, start=2)),
        actor="test",
        create_system=True,
    )


def golden_of(system, key, entity="customer"):
    return SourceRecord.objects.get(
        entity_type=entity, source_system__code=system, source_key=key
    ).golden


@pytest.fixture
def two_acmes():
    load("crm", "customer", {"source_key": "c1", "name": "Acme", "email": "info@acme.com"})
    load("erp", "customer", {"source_key": "e1", "name": "ACME Incorporated", "tax_id": "DE1234"})
    return golden_of("crm", "c1"), golden_of("erp", "e1")


def test_merge_keeps_the_survivor_id_and_redirects_the_loser(two_acmes, steward):
    survivor, loser = two_acmes

    merge(survivor=survivor, loser=loser, actor=steward, reason="same tax office")

    loser.refresh_from_db()
    assert loser.status == GoldenStatus.MERGED
    assert loser.merged_into_id == survivor.id
    assert resolve_golden(loser.id) == (survivor, [loser.id])
    survivor.refresh_from_db()
    assert survivor.values["tax_id"] == "DE1234"
    assert survivor.values["email"] == "info@acme.com"
    assert survivor.values["name"] == "ACME Incorporated"
    assert set(survivor.members.values_list("source_key", flat=True)) == {"c1", "e1"}


def test_merge_writes_history_with_who_and_why_and_a_merge_event(two_acmes, steward):
    survivor, loser = two_acmes

    merge(survivor=survivor, loser=loser, actor=steward, reason="same tax office")

    row = GoldenRecord.history.filter(id=loser.id).first()
    assert row.history_user == steward
    assert row.actor == "user:steward"
    assert row.history_change_reason == "same tax office"
    moved = SourceRecord.objects.get(source_key="e1")
    assert moved.link_method == LinkMethod.STEWARD
    event = OutboxEvent.objects.get(event_type="golden.merged")
    assert event.payload["merged"] == [loser.id]
    assert event.payload["xrefs_before"][loser.id] == [{"system": "erp", "source_key": "e1"}]
    assert event.payload["xrefs_after"][survivor.id] == [
        {"system": "crm", "source_key": "c1"},
        {"system": "erp", "source_key": "e1"},
    ]


def test_contracts_of_a_merged_customer_point_at_the_survivor(two_acmes, steward):
    survivor, loser = two_acmes
    load("erp", "contract", {"source_key": "k1", "contract_number": "C-1", "customer_key": "e1"})
    contract = golden_of("erp", "k1", "contract")
    assert contract.customer_id == loser.id

    merge(survivor=survivor, loser=loser, actor=steward, reason="dupe")

    contract.refresh_from_db()
    assert contract.customer_id == survivor.id


def test_chained_merges_resolve_in_one_hop_to_the_last_survivor(two_acmes, steward):
    first, second = two_acmes
    load("billing", "customer", {"source_key": "b1", "name": "Acme"})
    third = golden_of("billing", "b1")

    merge(survivor=second, loser=first, actor=steward, reason="r1")
    merge(survivor=third, loser=second, actor=steward, reason="r2")

    first.refresh_from_db()
    assert first.merged_into_id == third.id
    assert resolve_golden(first.id)[0] == third


def test_merging_a_merged_record_or_itself_is_refused(two_acmes, steward):
    survivor, loser = two_acmes
    merge(survivor=survivor, loser=loser, actor=steward, reason="dupe")

    with pytest.raises(InvalidResolution):
        merge(survivor=survivor, loser=loser, actor=steward, reason="again")
    with pytest.raises(InvalidResolution):
        merge(survivor=survivor, loser=survivor, actor=steward, reason="self")


def test_merging_different_entity_types_is_refused(two_acmes, steward):
    load("crm", "product", {"source_key": "p1", "sku": "AB-1", "name": "Widget"})

    with pytest.raises(InvalidResolution):
        merge(
            survivor=two_acmes[0],
            loser=golden_of("crm", "p1", "product"),
            actor=steward,
            reason="x",
        )


def test_split_gives_a_new_id_and_both_records_recompute(two_acmes, steward):
    survivor, loser = two_acmes
    merge(survivor=survivor, loser=loser, actor=steward, reason="dupe")
    erp = SourceRecord.objects.get(source_key="e1")

    created = split(golden=survivor, records=[erp], actor=steward, reason="wrong merge")

    survivor.refresh_from_db()
    assert created.id not in (survivor.id, loser.id)
    assert created.id.startswith("CUS-")
    assert created.values["tax_id"] == "DE1234"
    assert "tax_id" not in survivor.values
    assert list(created.members.values_list("source_key", flat=True)) == ["e1"]
    assert OutboxEvent.objects.filter(event_type="golden.split", golden_id=survivor.id).exists()


def test_split_moves_contracts_of_the_split_out_record_to_the_new_golden(two_acmes, steward):
    survivor, loser = two_acmes
    load("erp", "contract", {"source_key": "k1", "contract_number": "C-1", "customer_key": "e1"})
    merge(survivor=survivor, loser=loser, actor=steward, reason="dupe")

    created = split(
        golden=survivor,
        records=[SourceRecord.objects.get(source_key="e1")],
        actor=steward,
        reason="x",
    )

    assert golden_of("erp", "k1", "contract").customer_id == created.id


def test_split_must_leave_a_live_member_behind(two_acmes, steward):
    survivor, _ = two_acmes

    with pytest.raises(InvalidResolution):
        split(golden=survivor, records=list(survivor.members.all()), actor=steward, reason="x")


def test_linking_the_last_member_away_merges_its_old_golden_record(two_acmes, steward):
    target, old = two_acmes

    link(
        record=SourceRecord.objects.get(source_key="e1"),
        golden=target,
        actor="matching",
        reason="auto-link",
        method=LinkMethod.AUTO,
        probability=0.998,
    )

    old.refresh_from_db()
    assert old.status == GoldenStatus.MERGED and old.merged_into_id == target.id
    record = SourceRecord.objects.get(source_key="e1")
    assert (record.golden_id, record.link_method, record.link_probability) == (
        target.id,
        LinkMethod.AUTO,
        0.998,
    )


def test_linking_one_of_several_members_moves_only_that_record(two_acmes, steward):
    target, old = two_acmes
    load("erp", "customer", {"source_key": "e2", "name": "Acme"})
    merge(survivor=old, loser=golden_of("erp", "e2"), actor=steward, reason="x")

    link(record=SourceRecord.objects.get(source_key="e2"), golden=target, actor=steward, reason="y")

    old.refresh_from_db()
    assert old.status == GoldenStatus.ACTIVE
    assert set(target.members.values_list("source_key", flat=True)) == {"c1", "e2"}
    assert OutboxEvent.objects.filter(event_type="xref.changed", golden_id=target.id).exists()


def test_pin_beats_every_rule_and_unpin_restores_the_rule(two_acmes, steward):
    survivor, loser = two_acmes
    merge(survivor=survivor, loser=loser, actor=steward, reason="dupe")

    pin_value(
        golden=survivor,
        attribute="name",
        value="Acme Corporation",
        actor=steward,
        reason="legal name",
    )
    survivor.refresh_from_db()
    assert survivor.values["name"] == "Acme Corporation"
    assert survivor.lineage["name"]["rule"] == "pin"

    unpin_value(golden=survivor, attribute="name", actor=steward, reason="registry updated")
    survivor.refresh_from_db()
    assert survivor.values["name"] == "ACME Incorporated"
    assert StewardOverride.history.filter(history_type="-").count() == 1


def test_pin_with_an_invalid_value_is_refused(two_acmes, steward):
    with pytest.raises(InvalidResolution):
        pin_value(
            golden=two_acmes[0], attribute="email", value="not-an-email", actor=steward, reason="x"
        )


def test_stored_survivorship_rule_overrides_the_declared_default(two_acmes, steward):
    survivor, loser = two_acmes
    SurvivorshipRule.objects.create(
        entity_type="customer", attribute="name", strategy="source_priority", system_order=["crm"]
    )

    merge(survivor=survivor, loser=loser, actor=steward, reason="dupe")

    survivor.refresh_from_db()
    assert survivor.values["name"] == "Acme"
    assert survivor.lineage["name"]["system"] == "crm"


def test_xrefs_as_of_answers_what_the_cross_reference_looked_like_before_a_merge(
    two_acmes, steward
):
    from django.utils import timezone

    survivor, loser = two_acmes
    before_merge = timezone.now()

    merge(survivor=survivor, loser=loser, actor=steward, reason="dupe")

    assert xrefs_as_of(survivor.id, before_merge) == [{"system": "crm", "source_key": "c1"}]
    assert xrefs_as_of(survivor.id, timezone.now()) == [
        {"system": "crm", "source_key": "c1"},
        {"system": "erp", "source_key": "e1"},
    ]


def test_conflict_flag_follows_the_lineage_through_merge_and_split(two_acmes, steward):
    survivor, loser = two_acmes
    assert not survivor.has_conflicts and not loser.has_conflicts  # one member each

    merge(survivor=survivor, loser=loser, actor=steward, reason="same company")
    survivor.refresh_from_db()
    assert survivor.lineage["name"]["runner_ups"]  # "Acme" lost to "ACME Incorporated"
    assert survivor.has_conflicts
    assert survivor.history.first().has_conflicts

    erp = survivor.members.get(source_key="e1")
    split(golden=survivor, records=[erp], actor=steward, reason="two companies")
    survivor.refresh_from_db()
    assert not survivor.has_conflicts


def test_migration_flags_stored_golden_records_from_their_lineage(two_acmes, steward):
    from importlib import import_module
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    survivor, loser = two_acmes
    merge(survivor=survivor, loser=loser, actor=steward, reason="same company")
    GoldenRecord.objects.update(has_conflicts=False)
    GoldenRecord.history.update(has_conflicts=False)

    migration = import_module("mdm.migrations.0003_golden_partial_indexes_and_conflict_flag")
    # The function reads only the editor's connection (SQLite refuses a real schema editor
    # inside the test's transaction).
    migration.flag_conflicts(apps, SimpleNamespace(connection=connection))

    assert set(GoldenRecord.objects.filter(has_conflicts=True).values_list("id", flat=True)) == {
        survivor.id
    }
    assert GoldenRecord.history.filter(id=survivor.id, has_conflicts=True).exists()
