"""PUT / DELETE one record, batches in JSON and NDJSON, idempotency keys, size limits."""

import json

import pytest
from django.test import override_settings

from mdm.models import IngestRejection, SourceRecord
from tests.api.conftest import ACME

pytestmark = pytest.mark.django_db

URL = "/api/v1/sources/crm/customer"


def test_put_creates_a_record_and_answers_with_its_golden_id(crm):
    response = crm.put(f"{URL}/1", ACME, format="json")

    body = response.json()
    record = SourceRecord.objects.get(source_key="1")
    assert response.status_code == 201
    assert body["outcome"] == "loaded"
    assert body["golden_id"] == record.golden_id
    assert record.golden.values["tax_id"] == "DE123456789"


def test_put_again_unchanged_then_updated(crm):
    crm.put(f"{URL}/1", ACME, format="json")

    same = crm.put(f"{URL}/1", ACME, format="json")
    changed = crm.put(f"{URL}/1", {**ACME, "name": "ACME Group"}, format="json")

    assert (same.status_code, same.json()["outcome"]) == (200, "unchanged")
    assert changed.json()["outcome"] == "updated"
    assert changed.json()["golden_id"] == same.json()["golden_id"]


def test_history_names_the_integration_as_actor(crm):
    crm.put(f"{URL}/1", ACME, format="json", HTTP_X_CORRELATION_ID="put-1")

    row = SourceRecord.history.get(source_key="1")
    assert row.actor == "integration:crm"
    assert row.correlation_id == "put-1"


def test_values_that_fail_normalization_are_flagged_not_lost(crm):
    response = crm.put(f"{URL}/1", {**ACME, "email": "not-an-email"}, format="json")

    assert response.status_code == 201
    assert response.json()["flagged"] == [
        {"attribute": "email", "reason": "not an e-mail address: 'not-an-email'"}
    ]


def test_unusable_record_is_422_and_kept_as_a_rejection(crm):
    response = crm.put(f"{URL}/1", {**ACME, "name": {"nested": 1}}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "rejected"
    assert "name: expected a single value" in response.json()["error"]["message"]
    rejection = IngestRejection.objects.get()
    assert (rejection.source_system, rejection.source_key) == ("crm", "1")


def test_body_that_is_not_an_object_is_422(crm):
    response = crm.put(f"{URL}/1", [1, 2], format="json")

    assert response.status_code == 422


def test_source_key_in_body_must_match_the_path(crm):
    response = crm.put(f"{URL}/1", {**ACME, "source_key": "2"}, format="json")

    assert response.status_code == 422
    assert "source_key" in response.json()["error"]["fields"]


def test_stale_update_is_ignored(crm):
    crm.put(f"{URL}/1", {**ACME, "source_updated_at": "2026-02-01T00:00:00Z"}, format="json")

    response = crm.put(
        f"{URL}/1", {**ACME, "name": "Old", "source_updated_at": "2026-01-01"}, format="json"
    )

    assert response.json()["outcome"] == "stale"


def test_unknown_source_system_is_404_for_a_steward(steward_api):
    response = steward_api.put("/api/v1/sources/nowhere/customer/1", ACME, format="json")

    assert response.status_code == 404


def test_delete_tombstones_the_record_and_retires_its_golden_record(crm):
    golden_id = crm.put(f"{URL}/1", ACME, format="json").json()["golden_id"]

    response = crm.delete(f"{URL}/1")

    record = SourceRecord.objects.get(source_key="1")
    assert response.json()["outcome"] == "deleted"
    assert record.deleted
    assert record.attributes["name"] == "ACME Inc."
    assert crm.get(f"/api/v1/golden/customer/{golden_id}").json()["status"] == "retired"


def test_delete_of_an_unknown_record_is_404(crm):
    assert crm.delete(f"{URL}/missing").status_code == 404


def test_same_idempotency_key_replays_the_stored_answer(crm):
    first = crm.put(f"{URL}/1", ACME, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = crm.put(f"{URL}/1", ACME, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"


def test_same_idempotency_key_with_a_different_body_is_409(crm):
    crm.put(f"{URL}/1", ACME, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    response = crm.put(f"{URL}/1", {**ACME, "name": "X"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_batch_json_array_answers_per_record_in_order_and_a_bad_one_fails_alone(crm):
    rows = [
        {**ACME, "source_key": "1"},
        {**ACME, "name": {"bad": 1}, "source_key": "2"},
        {**ACME, "source_key": "3", "name": "Other"},
        {"name": "no key"},
    ]

    response = crm.post(f"{URL}/batch", rows, format="json")

    body = response.json()
    assert response.status_code == 200
    assert [r["outcome"] for r in body["results"]] == ["loaded", "rejected", "loaded", "rejected"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3]
    assert body["results"][3]["reason"] == "source_key: missing"
    assert body["counts"]["loaded"] == 2
    assert IngestRejection.objects.count() == 2


def test_batch_ndjson_reports_line_numbers_and_unparseable_lines(crm):
    lines = [json.dumps({**ACME, "source_key": "1"}), "", "{oops", json.dumps({"source_key": "4"})]

    response = crm.post(f"{URL}/batch", "\n".join(lines), content_type="application/x-ndjson")

    results = response.json()["results"]
    assert [(r["line"], r["outcome"]) for r in results] == [
        (1, "loaded"),
        (3, "rejected"),
        (4, "loaded"),
    ]
    assert results[1]["reason"].startswith("not valid JSON")


@override_settings(KEYSTONE_API_MAX_BATCH=3)
def test_batch_over_the_record_limit_is_413(crm):
    rows = [{**ACME, "source_key": str(i)} for i in range(4)]

    response = crm.post(f"{URL}/batch", rows, format="json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not SourceRecord.objects.exists()


@override_settings(KEYSTONE_API_MAX_BODY_BYTES=100)
def test_body_over_the_byte_limit_is_413(crm):
    rows = [{**ACME, "source_key": str(i)} for i in range(4)]

    assert crm.post(f"{URL}/batch", rows, format="json").status_code == 413


def test_batch_body_that_is_an_object_is_422(crm):
    assert crm.post(f"{URL}/batch", {"a": 1}, format="json").status_code == 422


def test_integration_cannot_batch_into_another_system(crm, erp):
    assert erp.post(f"{URL}/batch", [ACME], format="json").status_code == 403


def test_a_nul_character_in_a_value_is_422_and_kept_as_a_rejection(crm):
    response = crm.put(f"{URL}/1", {**ACME, "name": "Acme\x00 Inc"}, format="json")

    assert response.status_code == 422
    assert "name: contains a NUL character" in response.json()["error"]["message"]
    rejection = IngestRejection.objects.get()
    assert rejection.payload["name"] == "Acme\\u0000 Inc"  # kept, NUL written out as text
    assert not SourceRecord.objects.exists()


def test_a_nul_character_fails_only_its_own_record_in_a_batch(crm):
    rows = [
        {**ACME, "source_key": "1"},
        {**ACME, "source_key": "2", "note\x00": "x"},
        {**ACME, "source_key": "3\x00"},
        {**ACME, "source_key": "4", "extra": {"deep": ["a\x00b"]}},
        {**ACME, "source_key": "5"},
    ]

    response = crm.post(f"{URL}/batch", rows, format="json")

    assert response.status_code == 200
    outcomes = [r["outcome"] for r in response.json()["results"]]
    assert outcomes == ["loaded", "rejected", "rejected", "rejected", "loaded"]
    assert set(SourceRecord.objects.values_list("source_key", flat=True)) == {"1", "5"}
    assert IngestRejection.objects.count() == 3


def test_put_that_creates_answers_201_with_location(crm):
    response = crm.put(f"{URL}/new-1", ACME, format="json")

    assert response.status_code == 201
    assert response["Location"] == f"http://testserver{URL}/new-1"


@pytest.mark.parametrize("body", [{}, {"favourite_colour": "blue"}, [ACME]])
def test_put_without_any_attribute_is_422_and_creates_nothing(crm, body):
    response = crm.put(f"{URL}/empty", body, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
    assert "body" in response.json()["error"]["fields"]
    assert not SourceRecord.objects.exists()


def test_batch_rejections_carry_a_reason_code_beside_the_reason(crm):
    rows = [{"name": "no key"}, {**ACME, "source_key": "2", "name": ["a", "list"]}]

    results = crm.post(f"{URL}/batch", {"records": rows}, format="json").json()["results"]

    assert [(r["outcome"], r["reason_code"]) for r in results] == [
        ("rejected", "missing_source_key"),
        ("rejected", "not_a_single_value"),
    ]
    assert all(r["reason"] for r in results)


def test_a_stale_update_leaves_the_golden_value_unchanged(crm):
    crm.put(f"{URL}/1", {**ACME, "source_updated_at": "2026-03-02T10:00:00Z"}, format="json")
    golden_id = SourceRecord.objects.get(source_key="1").golden_id

    stale = crm.put(
        f"{URL}/1",
        {**ACME, "name": "Old Name Ltd", "source_updated_at": "2026-03-01T10:00:00Z"},
        format="json",
    )

    golden = crm.get(f"/api/v1/golden/customer/{golden_id}").json()
    assert stale.json()["outcome"] == "stale"
    assert golden["values"]["name"] == "ACME Inc."
    assert SourceRecord.objects.get(source_key="1").raw["name"] == "ACME Inc."


def test_ndjson_is_accepted_by_the_batch_only(crm):
    body = b'{"source_key": "1", "name": "ACME"}\n'

    batch = crm.post(f"{URL}/batch", body, content_type="application/x-ndjson")
    single = crm.put(f"{URL}/1", body, content_type="application/x-ndjson")

    assert batch.status_code == 200
    assert single.status_code == 415
    assert single.json()["error"]["code"] == "unsupported_media_type"
