"""The match probe through the API: ranked candidates with explanations, writing nothing."""

import pytest

from mdm.models import GoldenRecord, OutboxEvent, SourceRecord
from tests.api.conftest import load
from tests.api.contract import assert_matches_schema
from tests.matching.conftest import customer_model, febrl_sample, load_febrl  # noqa: F401

pytestmark = pytest.mark.django_db

PERSON_WITH_EMAIL = {
    "kind": "person",
    "given_name": "Janet",
    "family_name": "Roebuck",
    "email": "janet.roebuck@example.org",
    "city": "Bonn",
}


@pytest.fixture
def matched(customer_model):  # noqa: F811 - the fixture imported above
    """FEBRL sample loaded, a model trained and a batch run done (which builds the index)."""
    from matching.services import run_batch_matching

    return run_batch_matching(entity_type="customer", actor="test")


def probe(client, attributes, **extra):
    return client.post("/api/v1/match/customer", {"attributes": attributes, **extra}, format="json")


def test_probe_ranks_the_existing_customer_first_and_writes_nothing(crm_all_scopes, matched):
    record = SourceRecord.objects.filter(source_system__code="crm").order_by("pk").first()
    counts = (SourceRecord.objects.count(), GoldenRecord.objects.count())
    events = OutboxEvent.objects.count()

    response = probe(
        crm_all_scopes, {k: v for k, v in record.raw.items() if k != "source_key"}, limit=3
    )

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


def test_probe_explains_each_comparison_in_the_specs_words(crm_all_scopes, matched):
    from matching.scoring import declared_labels

    record = SourceRecord.objects.filter(source_system__code="crm").order_by("pk").first()

    response = probe(
        crm_all_scopes, {k: v for k, v in record.raw.items() if k != "source_key"}, limit=1
    )

    explanation = response.json()["candidates"][0]["explanation"]
    assert {entry["level"] for entry in explanation.values()} <= set(declared_labels().values())
    assert explanation["name_key"]["level"] == "no name on one side"  # people: given + family
    assert explanation["tax_id_key"] == {
        "level": "same tax ID",
        "gamma": 2,
        "tone": "same",
        "left": record.match_keys["tax_id_key"],
        "right": record.match_keys["tax_id_key"],
        "match_weight": explanation["tax_id_key"]["match_weight"],
    }
    assert explanation["tax_id_key"]["match_weight"] > 0


@pytest.mark.parametrize(
    "body",
    [
        '{"attributes": {"name": "A\\ud800", "tax_id": "DE1\\ud800", "email": "a\\ud800@b.de",'
        ' "phone": "+49\\ud800 30", "city": "B\\ud800", "postal_code": "1\\ud800",'
        ' "given_name": "J\\ud800", "family_name": "S\\ud800", "date_of_birth": "1\\ud800"}}',
        '{"attributes": {"name": "Ber\\u0000lin"}}',
        '{"attributes": {"name": {"nested": ["x"]}}}',
    ],
    ids=["lone surrogate", "NUL", "nested value"],
)
def test_probe_attributes_that_no_record_can_hold_are_422_not_500(crm, matched, body):
    response = crm.post("/api/v1/match/customer", body, content_type="application/json")

    assert response.status_code == 422
    assert "attributes" in response.json()["error"]["fields"]


def test_probe_explanations_leave_out_sensitive_values_without_the_scope(
    crm, crm_all_scopes, matched
):
    record = SourceRecord.objects.filter(attributes__has_key="date_of_birth").first()
    attributes = {k: v for k, v in record.raw.items() if k != "source_key"}
    askable = {k: v for k, v in attributes.items() if k not in ("date_of_birth", "tax_id")}

    withheld = probe(crm, askable, limit=1).json()["candidates"][0]["explanation"]
    full = probe(crm_all_scopes, attributes, limit=1).json()["candidates"][0]["explanation"]

    assert full["date_of_birth"]["right"] == record.attributes["date_of_birth"]
    assert withheld["date_of_birth"]["left"] is withheld["date_of_birth"]["right"] is None
    sensitive = [c for c in full if c.startswith(("date_of_birth", "tax_id", "email", "phone"))]
    assert all(withheld[c]["right"] is None for c in sensitive)
    assert withheld["given_name_key"] == full["given_name_key"]


@pytest.mark.parametrize("attribute", ["tax_id", "date_of_birth"])
def test_probing_by_an_always_sensitive_attribute_needs_the_scope(
    crm, crm_all_scopes, auditor_api, attribute
):
    """Review 2026-12: the probe kept each comparison's level without the scope, so a token
    guessing a date of birth or tax ID read "same date of birth" — an oracle for a withheld
    value. Without golden:read_sensitive, probing by one is refused, as filtering by it is."""
    guessed = {"given_name": "Jane", "family_name": "Roe", attribute: "1980-04-01"}

    refused = probe(crm, guessed)
    allowed = probe(crm_all_scopes, guessed)

    assert refused.status_code == 403
    assert attribute in refused.json()["error"]["message"]
    assert allowed.status_code == probe(auditor_api, guessed).status_code == 409  # no model yet


def test_probing_by_a_persons_email_without_the_scope_finds_no_person(
    crm, crm_all_scopes, matched, django_capture_on_commit_callbacks
):
    """Review 2026-12: "is jane.roe@example.org one of ours?" answered with her golden record
    and "same e-mail address" to a token that may not read a person's e-mail. Without the
    scope, a probe by a person's e-mail or phone finds organizations only, as the filter does."""
    with django_capture_on_commit_callbacks(execute=True):  # matched: in the index
        load("erp", [{"source_key": "jr", **PERSON_WITH_EMAIL}])
    person = SourceRecord.objects.get(source_key="jr").golden_id
    asked = {k: PERSON_WITH_EMAIL[k] for k in ("given_name", "family_name", "email")}

    withheld = [c["golden_id"] for c in probe(crm, asked).json()["candidates"]]
    full = [c["golden_id"] for c in probe(crm_all_scopes, asked).json()["candidates"]]
    by_name = probe(crm, {k: v for k, v in asked.items() if k != "email"}).json()

    assert full[0] == person
    assert person not in withheld
    assert person in [c["golden_id"] for c in by_name["candidates"]]
