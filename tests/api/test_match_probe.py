"""The match probe through the API: ranked candidates with explanations, writing nothing."""

import pytest

from mdm.models import GoldenRecord, OutboxEvent, SourceRecord
from tests.api.contract import assert_matches_schema
from tests.matching.conftest import customer_model, febrl_sample, load_febrl  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def matched(customer_model):  # noqa: F811 - the fixture imported above
    """FEBRL sample loaded, a model trained and a batch run done (which builds the index)."""
    from matching.services import run_batch_matching

    return run_batch_matching(entity_type="customer", actor="test")


def probe(client, attributes, **extra):
    return client.post("/api/v1/match/customer", {"attributes": attributes, **extra}, format="json")


def test_probe_ranks_the_existing_customer_first_and_writes_nothing(crm, matched):
    record = SourceRecord.objects.filter(source_system__code="crm").order_by("pk").first()
    counts = (SourceRecord.objects.count(), GoldenRecord.objects.count())
    events = OutboxEvent.objects.count()

    response = probe(crm, {k: v for k, v in record.raw.items() if k != "source_key"}, limit=3)

    candidates = response.json()["candidates"]
    assert response.status_code == 200
    assert_matches_schema(response)
    assert candidates[0]["golden_id"] == record.golden_id
    assert candidates[0]["probability"] > 0.9
    assert candidates[0]["explanation"]
    assert len(candidates) <= 3
    assert (SourceRecord.objects.count(), GoldenRecord.objects.count()) == counts
    assert OutboxEvent.objects.count() == events


def test_probe_without_a_trained_model_is_409(crm):
    response = probe(crm, {"name": "ACME"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_active_model"


def test_probe_needs_attributes(crm):
    assert crm.post("/api/v1/match/customer", {}, format="json").status_code == 422


def test_auditor_may_probe(auditor_api):
    assert probe(auditor_api, {"name": "ACME"}).status_code == 409
