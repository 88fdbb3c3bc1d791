"""Source mappings over the API: list, read, add a version (checked: 422 naming the field),
preview sample payloads (before, after, rejections), and native payloads ingested through the
system's active mapping."""

from __future__ import annotations

import pytest

from mdm.models import IngestRejection, SourceMapping, SourceRecord
from mdm.services.mappings import save_mapping_version

pytestmark = pytest.mark.django_db

STRIPE = {
    "system": "crm",
    "fields": {
        "source_key": "id",
        "name": "name",
        "kind": {"const": "organization"},
        "email": "email",
        "country": {"path": "address.country", "map": {"UK": "GB"}},
        "city": "address.city",
        "source_updated_at": {"path": "created", "datetime": "unix"},
        "deleted": "deleted",
    },
}
CUSTOMER = {
    "id": "cus_1",
    "object": "customer",
    "name": "Acme Ltd",
    "email": "Billing@Acme.co.uk",
    "address": {"city": "London", "country": "UK"},
    "created": 1700000000,
}


def test_a_steward_adds_a_version_lists_and_reads_it(steward_api):
    created = steward_api.post(
        "/api/v1/mappings",
        {"system": "crm", "entity": "customer", "spec": STRIPE, "note": "stripe shape"},
        format="json",
    )

    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["system"], body["entity"], body["version"], body["active"]) == (
        "crm",
        "customer",
        1,
        True,
    )
    assert created["Location"].endswith(f"/api/v1/mappings/{body['id']}")
    listed = steward_api.get("/api/v1/mappings?system=crm&entity=customer&active=true").json()
    assert [m["version"] for m in listed["results"]] == [1]
    assert steward_api.get(f"/api/v1/mappings/{body['id']}").json()["spec"] == STRIPE


def test_a_bad_mapping_is_422_naming_each_field_and_nothing_is_stored(steward_api):
    spec = {"fields": {"source_key": "id", "colour": "c", "name": {"path": "a..b"},
                       "date_of_birth": {"path": "dob", "date": "%Y-%q"},
                       "email": {"path": "email", "lowercase": True}}}  # fmt: skip

    response = steward_api.post(
        "/api/v1/mappings", {"system": "crm", "entity": "customer", "spec": spec}, format="json"
    )

    error = response.json()["error"]
    assert response.status_code == 422
    assert error["code"] == "invalid"
    assert sorted(error["fields"]) == [
        "spec.fields.colour",
        "spec.fields.date_of_birth.date",
        "spec.fields.email.lowercase",
        "spec.fields.name.path",
    ]
    assert "unknown target attribute" in error["fields"]["spec.fields.colour"][0]
    assert "unknown directive q" in error["fields"]["spec.fields.date_of_birth.date"][0]
    assert "unknown transform" in error["fields"]["spec.fields.email.lowercase"][0]
    assert not SourceMapping.objects.exists()


def test_preview_shows_before_after_and_the_rejection_with_path_and_reason(steward_api):
    samples = [CUSTOMER, {**CUSTOMER, "id": "cus_2", "address": ["London"]}, {"name": "no id"}]

    response = steward_api.post(
        "/api/v1/mappings/preview",
        {"entity": "customer", "spec": STRIPE, "samples": samples},
        format="json",
    )

    assert response.status_code == 200, response.json()
    first, second, third = response.json()["results"]
    assert first["payload"] == CUSTOMER
    assert first["mapped"]["country"] == "GB"
    assert first["attributes"]["email"] == "billing@acme.co.uk"
    assert first["rejection"] is None
    assert second["mapped"] is None
    assert second["rejection"] == {
        "code": "unmappable",
        "target": "city",  # the first failing target in the entity's declaration order
        "path": "address.city",
        "reason": "expected an object at address, got a list",
    }
    assert third["rejection"]["target"] == "source_key"
    assert third["rejection"]["reason"] == "required, but missing or blank"
    assert not SourceRecord.objects.exists()


def test_preview_of_a_stored_version_and_of_a_bad_spec(steward_api):
    stored = save_mapping_version(system_code="crm", entity_type="customer", spec=STRIPE, actor="t")

    ok = steward_api.post(
        "/api/v1/mappings/preview", {"mapping": stored.pk, "samples": [CUSTOMER]}, format="json"
    )
    bad = steward_api.post(
        "/api/v1/mappings/preview",
        {"entity": "customer", "spec": {"fields": {"name": "n"}}, "samples": [CUSTOMER]},
        format="json",
    )

    assert ok.json()["version"] == 1
    assert ok.json()["results"][0]["mapped"]["source_key"] == "cus_1"
    assert bad.status_code == 422
    assert list(bad.json()["error"]["fields"]) == ["spec.fields.source_key"]


def test_an_auditor_previews_and_reads_but_adds_no_version(auditor_api):
    preview = auditor_api.post(
        "/api/v1/mappings/preview",
        {"entity": "customer", "spec": STRIPE, "samples": [CUSTOMER]},
        format="json",
    )
    create = auditor_api.post(
        "/api/v1/mappings", {"system": "crm", "entity": "customer", "spec": STRIPE}, format="json"
    )

    assert preview.status_code == 200
    assert create.status_code == 403


def test_a_token_needs_the_scope_and_manages_only_its_own_system(crm, crm_all_scopes, db):
    erp_mapping = save_mapping_version(
        system_code="erp", entity_type="customer", spec={"fields": {"source_key": "id"}}, actor="t"
    )

    without_scope = crm.get("/api/v1/mappings")
    other = crm_all_scopes.post(
        "/api/v1/mappings",
        {"system": "erp", "entity": "customer", "spec": {"fields": {"source_key": "id"}}},
        format="json",
    )
    own = crm_all_scopes.post(
        "/api/v1/mappings", {"system": "crm", "entity": "customer", "spec": STRIPE}, format="json"
    )

    assert without_scope.status_code == 403
    assert other.status_code == 403
    assert own.status_code == 201
    listed = crm_all_scopes.get("/api/v1/mappings").json()["results"]
    assert [m["system"] for m in listed] == ["crm"]
    hidden = crm_all_scopes.get(f"/api/v1/mappings/{erp_mapping.pk}")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "mapping_not_found"


def test_ingest_api_maps_native_payloads_with_the_active_mapping(crm):
    save_mapping_version(system_code="crm", entity_type="customer", spec=STRIPE, actor="t")

    put = crm.put("/api/v1/sources/crm/customer/cus_1", CUSTOMER, format="json")
    batch = crm.post(
        "/api/v1/sources/crm/customer/batch",
        {"records": [{**CUSTOMER, "id": "cus_2"}, {**CUSTOMER, "id": "cus_3", "address": "x"}]},
        format="json",
    )
    wrong_key = crm.put("/api/v1/sources/crm/customer/cus_9", CUSTOMER, format="json")
    deleted = crm.delete("/api/v1/sources/crm/customer/cus_1")

    assert put.status_code == 201, put.json()
    record = SourceRecord.objects.get(source_key="cus_1")
    assert record.raw == CUSTOMER
    assert record.attributes["country"] == "GB"
    assert [r["outcome"] for r in batch.json()["results"]] == ["loaded", "rejected"]
    assert batch.json()["results"][1]["reason_code"] == "unmappable"
    assert batch.json()["results"][1]["reason"] == (
        "mapping city from address.city: expected an object at address, got a str"
    )
    rejection = IngestRejection.objects.get(source_key="cus_3")
    assert rejection.payload == {**CUSTOMER, "id": "cus_3", "address": "x"}
    assert wrong_key.status_code == 422
    assert wrong_key.json()["error"]["fields"] == {"body": ["misaddressed"]}
    assert deleted.json()["outcome"] == "deleted"
    record.refresh_from_db()
    assert record.deleted
    assert record.raw == CUSTOMER
