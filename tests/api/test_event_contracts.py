"""Versioned event contracts: every event type has a published JSON Schema with a version,
every emitted event follows it and says which version; docs/events.md is the same text."""

from pathlib import Path

import pytest
from django.core.management import call_command

from mdm.contracts import EVENT_TYPES, EVENT_VERSIONS, event_schemas, events_markdown
from mdm.models import GoldenRecord, OutboxEvent, SourceRecord
from mdm.services.resolution import link, merge, split
from tests.api.conftest import ACME, load
from tests.conftest import assert_event_follows_its_schema

pytestmark = pytest.mark.django_db


def test_every_event_type_is_emitted_versioned_and_valid(steward):
    load("crm", [{**ACME, "source_key": str(n)} for n in (1, 2, 3)])
    load("crm", [{**ACME, "source_key": "1", "email": "sales@acme.com"}])
    load("erp", [{**ACME, "source_key": "A"}])
    survivor = SourceRecord.objects.get(source_key="1").golden
    merge(
        survivor=survivor,
        loser=SourceRecord.objects.get(source_key="A").golden,
        actor=steward,
        reason="same",
    )
    merge(
        survivor=GoldenRecord.objects.get(pk=survivor.pk),
        loser=SourceRecord.objects.get(source_key="3").golden,
        actor=steward,
        reason="same",
    )
    split(
        golden=GoldenRecord.objects.get(pk=survivor.pk),
        records=[SourceRecord.objects.get(source_key="A")],
        actor=steward,
        reason="not the same",
    )
    link(
        record=SourceRecord.objects.get(source_key="3"),
        golden=SourceRecord.objects.get(source_key="2").golden,
        actor=steward,
        reason="belongs there",
    )
    load("contract", [{"source_key": "k1", "contract_number": "K-1", "customer_key": "1"}],
         entity="contract")  # fmt: skip

    events = list(OutboxEvent.objects.order_by("id"))

    assert {e.event_type for e in events} == set(EVENT_TYPES)
    for event in events:
        assert event.payload["schema_version"] == EVENT_VERSIONS[event.event_type]
        assert_event_follows_its_schema(event)


def test_an_event_that_breaks_its_schema_is_caught():
    load("crm", [{**ACME, "source_key": "1"}])
    event = OutboxEvent.objects.get()
    event.payload["values"]["country"] = "Germany"  # not ISO 3166-1 alpha-2

    with pytest.raises(AssertionError, match="country"):
        assert_event_follows_its_schema(event)


def test_an_event_stored_before_versioning_is_served_as_version_1(crm):
    OutboxEvent.objects.create(
        event_type="golden.merged",
        entity_type="customer",
        golden_id="CUS-OLD",
        payload={
            "id": "CUS-OLD",
            "entity": "customer",
            "status": "active",
            "survivor": "CUS-OLD",
            "merged": ["CUS-GONE"],
            "xrefs_before": {},
            "xrefs_after": {},
            "reason": "before versions",
        },
    )

    served = crm.get("/api/v1/events").json()["results"][0]

    assert served["payload"]["schema_version"] == 1
    assert_event_follows_its_schema(OutboxEvent.objects.get())


def test_schemas_are_published_with_their_versions_and_the_compatibility_rule(crm):
    body = crm.get("/api/v1/events/schemas").json()

    assert "additive" in body["compatibility"]
    assert [(s["type"], s["version"]) for s in body["results"]] == list(EVENT_VERSIONS.items())
    assert {s["type"]: s["schema"] for s in body["results"]} == event_schemas()
    assert crm.get("/api/v1/events/schemas/").status_code in (301, 302)


def test_docs_events_md_is_the_generated_contract(capsys):
    """docs/events.md says what the code publishes; regenerate it with
    `python manage.py event_schemas --markdown > docs/events.md`."""
    call_command("event_schemas", "--markdown")
    printed = capsys.readouterr().out
    docs = Path(__file__).resolve().parents[2] / "docs" / "events.md"

    assert printed == events_markdown()
    assert docs.read_text() == printed
