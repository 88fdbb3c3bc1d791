"""Least privilege: a token does what its scopes allow, and reads sensitive attributes
(date of birth, tax ID, a person's e-mail and phone) only with golden:read_sensitive —
in golden records, their history, the events feed, webhooks and probe explanations."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from api.models import IntegrationToken
from api.scopes import DEFAULT_SCOPES, GOLDEN_READ_SENSITIVE, SCOPES
from api.tasks import dispatch_events
from mdm.models import SourceRecord
from mdm.services.ingest import get_source_system
from tests.api.conftest import ACME, bearer, load
from tests.api.receiver import Receiver

pytestmark = pytest.mark.django_db

PERSON = {
    "kind": "person",
    "name": "Jane Roe",
    "given_name": "Jane",
    "family_name": "Roe",
    "date_of_birth": "1985-03-12",
    "tax_id": "DE987654321",
    "email": "jane.roe@example.org",
    "phone": "+49 30 1234567",
    "city": "Berlin",
    "country": "DE",
}
SENSITIVE_TEXT = ("1985-03-12", "DE987654321", "jane.roe@example.org", "+49301234567")
ORGANIZATION = {**ACME, "phone": "+49 30 7654321"}  # tax ID DE123456789, e-mail info@acme.com


def token_with(*scopes: str, system: str = "crm") -> str:
    _, token = IntegrationToken.issue(get_source_system(system, create=True), scopes=scopes)
    return token


def golden_of(key: str) -> str:
    return SourceRecord.objects.get(source_key=key).golden_id


# --- one scope per endpoint --------------------------------------------------------------
ENDPOINTS = [
    ("xref:read", "get", "/api/v1/xref/customer/crm/p1", None),
    ("xref:read", "post", "/api/v1/xref/customer/lookup", {"keys": []}),
    ("golden:read", "get", "/api/v1/golden/customer", None),
    ("golden:read", "get", "/api/v1/golden/customer/{golden}", None),
    ("golden:read", "get", "/api/v1/golden/customer/{golden}/history", None),
    ("sources:write", "put", "/api/v1/sources/crm/customer/n1", {"name": "New Co"}),
    ("sources:write", "post", "/api/v1/sources/crm/customer/batch", [{"source_key": "n2"}]),
    ("events:read", "get", "/api/v1/events", None),
    ("match:probe", "post", "/api/v1/match/customer", {"attributes": {"name": "ACME"}}),
    ("webhooks:manage", "get", "/api/v1/webhooks/subscriptions", None),
]


def call(client, method: str, path: str, body):
    path = path.format(golden=golden_of("p1"))
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


@pytest.mark.parametrize("scope, method, path, body", ENDPOINTS, ids=lambda v: str(v)[:40])
def test_a_token_without_the_scope_is_refused_and_with_it_admitted(scope, method, path, body):
    load("crm", [{**PERSON, "source_key": "p1"}])
    without = bearer(token_with(*(s for s in SCOPES if s != scope)))
    only = bearer(token_with(scope))

    refused = call(without, method, path, body)
    admitted = call(only, method, path, body)

    assert refused.status_code == 403
    assert f"lacks the '{scope}' scope" in refused.json()["error"]["message"]
    assert admitted.status_code not in (401, 403), admitted.content[:200]


def test_sources_write_still_writes_only_the_tokens_own_system():
    erp = bearer(token_with("sources:write", system="erp"))

    response = erp.put("/api/v1/sources/crm/customer/x", {"name": "X"}, format="json")

    assert response.status_code == 403


# --- create_integration --------------------------------------------------------------------
def create(*args) -> str:
    out = io.StringIO()
    call_command("create_integration", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_create_integration_grants_the_default_scopes_unless_told():
    create("billing")
    create("support", "--scopes", "default,golden:read_sensitive")
    create("success", "--scopes", "xref:read")

    scopes = dict(IntegrationToken.objects.values_list("source_system__code", "scopes"))

    assert scopes["billing"] == list(DEFAULT_SCOPES)
    assert GOLDEN_READ_SENSITIVE not in DEFAULT_SCOPES
    assert scopes["support"] == [*DEFAULT_SCOPES, GOLDEN_READ_SENSITIVE]
    assert scopes["success"] == ["xref:read"]


def test_create_integration_lists_the_scopes_and_refuses_an_unknown_one():
    listed = create("--list-scopes")

    assert [line.split()[0] for line in listed.splitlines()] == list(SCOPES)
    with pytest.raises(CommandError, match="unknown scope 'golden:write'"):
        create("billing", "--scopes", "golden:write")


# --- sensitive attributes ---------------------------------------------------------------------
@pytest.fixture
def customers():
    load("crm", [{**PERSON, "source_key": "p1"}, {**ORGANIZATION, "source_key": "o1"}])
    return golden_of("p1"), golden_of("o1")


def test_golden_records_leave_out_sensitive_attributes_without_the_scope(crm, customers):
    person, organization = customers

    person_body = crm.get(f"/api/v1/golden/customer/{person}").json()
    organization_body = crm.get(f"/api/v1/golden/customer/{organization}").json()
    listed = crm.get("/api/v1/golden/customer").json()["results"]
    history = crm.get(f"/api/v1/golden/customer/{person}/history").json()["results"]

    assert person_body["values"]["name"] == "Jane Roe"
    assert not {"date_of_birth", "tax_id", "email", "phone"} & set(person_body["values"])
    assert not {"date_of_birth", "tax_id", "email", "phone"} & set(person_body["lineage"])
    assert organization_body["values"]["email"] == "info@acme.com"  # an organization's
    assert organization_body["values"]["phone"] == "+49307654321"
    assert "tax_id" not in organization_body["values"]
    assert not any(text in json.dumps([listed, history]) for text in SENSITIVE_TEXT)
    assert "DE123456789" not in json.dumps([listed, history, organization_body])


def test_the_sensitive_scope_and_people_with_a_role_read_everything(
    crm_all_scopes, steward_api, auditor_api, customers
):
    person, _ = customers

    for client in (crm_all_scopes, steward_api, auditor_api):
        body = client.get(f"/api/v1/golden/customer/{person}").json()
        assert body["values"]["date_of_birth"] == "1985-03-12"
        assert body["values"]["tax_id"] == "DE987654321"
        assert body["lineage"]["email"]["value"] == "jane.roe@example.org"


def test_the_events_feed_leaves_out_sensitive_attributes_without_the_scope(
    crm, crm_all_scopes, customers
):
    withheld = crm.get("/api/v1/events").json()["results"]
    full = crm_all_scopes.get("/api/v1/events").json()["results"]

    assert {e["type"] for e in withheld} == {"golden.created"}
    assert not any(text in json.dumps(withheld) for text in SENSITIVE_TEXT)
    assert "DE123456789" not in json.dumps(withheld)
    assert all(text in json.dumps(full) for text in SENSITIVE_TEXT)


def test_an_update_event_names_changed_sensitive_attributes_only_with_the_scope(
    crm, crm_all_scopes, customers
):
    """Review 2026-12: `changed` of golden.updated named "email", "date_of_birth" to readers
    whose `values` left them out — that a person's e-mail changed, and when."""
    load("crm", [{**PERSON, "source_key": "p1", "email": "jane@roe.example", "city": "Bonn"}])

    def changed(client):
        feed = client.get("/api/v1/events", {"type": "golden.updated"}).json()["results"]
        return feed[-1]["payload"]["changed"]

    assert "email" not in changed(crm) and "city" in changed(crm)
    assert "email" in changed(crm_all_scopes)


def test_filtering_by_a_sensitive_attribute_needs_the_scope(crm, crm_all_scopes, customers):
    _, organization = customers

    by_tax_id = crm.get("/api/v1/golden/customer", {"tax_id": "DE987654321"})
    by_email = crm.get("/api/v1/golden/customer", {"email": "jane.roe@example.org"})
    by_org_email = crm.get("/api/v1/golden/customer", {"email": "info@acme.com"})
    allowed = crm_all_scopes.get("/api/v1/golden/customer", {"email": "jane.roe@example.org"})

    assert by_tax_id.status_code == 403
    assert by_email.json()["results"] == []  # a person's e-mail: no oracle for it
    assert [g["id"] for g in by_org_email.json()["results"]] == [organization]
    assert len(allowed.json()["results"]) == 1


@pytest.mark.parametrize("sensitive", [False, True], ids=["default scopes", "sensitive scope"])
@pytest.mark.usefixtures("private_targets")  # the receiver is on 127.0.0.1
def test_webhooks_carry_sensitive_attributes_only_for_a_subscriber_with_the_scope(
    sensitive, django_capture_on_commit_callbacks
):
    scopes = SCOPES if sensitive else DEFAULT_SCOPES
    client = bearer(token_with(*scopes))
    with Receiver() as receiver:
        client.post(
            "/api/v1/webhooks/subscriptions",
            {"url": receiver.url, "event_types": ["golden.created"]},
            format="json",
        )
        load("crm", [{**PERSON, "source_key": "p1"}])

        with django_capture_on_commit_callbacks(execute=True):
            dispatch_events.delay()

        (request,) = receiver.requests
        values = json.loads(request["body"])["payload"]["values"]
        assert values["name"] == "Jane Roe"
        assert ("tax_id" in values) is sensitive
        assert ("date_of_birth" in values) is sensitive
        assert ("email" in values) is sensitive
