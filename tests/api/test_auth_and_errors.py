"""Tokens, roles, throttling and the one error shape — through the real stack."""

import io
import json

import pytest
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from api.models import IntegrationToken, hash_token
from mdm.models import SourceSystem
from tests.api.conftest import ACME, bearer

pytestmark = pytest.mark.django_db

XREF = "/api/v1/xref/customer/crm/1"


def test_create_integration_prints_a_token_that_is_stored_only_hashed():
    out = io.StringIO()
    call_command("create_integration", "billing", stdout=out, stderr=io.StringIO())
    token = out.getvalue().strip()

    row = IntegrationToken.objects.get()
    assert SourceSystem.objects.filter(code="billing").exists()
    assert row.token_hash == hash_token(token)
    assert token not in (row.token_hash, row.prefix)
    assert token.startswith(row.prefix)


def test_create_integration_again_rotates_the_token():
    first, second = io.StringIO(), io.StringIO()
    call_command("create_integration", "billing", stdout=first, stderr=io.StringIO())
    call_command("create_integration", "billing", stdout=second, stderr=io.StringIO())

    old = bearer(first.getvalue().strip()).get("/api/v1/events")
    new = bearer(second.getvalue().strip()).get("/api/v1/events")

    assert old.status_code == 401
    assert new.status_code == 200
    assert IntegrationToken.objects.filter(revoked=False).count() == 1


def test_no_credentials_is_401_with_www_authenticate_and_the_error_shape():
    response = APIClient().get(XREF, HTTP_X_CORRELATION_ID="corr-123")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {
        "error": {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
            "fields": {},
            "correlation_id": "corr-123",
        }
    }
    assert response["X-Correlation-ID"] == "corr-123"


def test_unknown_token_is_401():
    response = bearer("not-a-token").get(XREF)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_revoked_token_is_401(crm_token):
    IntegrationToken.objects.update(revoked=True)

    assert bearer(crm_token).get(XREF).status_code == 401


@override_settings(KEYSTONE_API_TOKEN_CACHE_SECONDS=0)
def test_token_revoked_after_use_is_refused_when_not_cached(crm_token):
    assert bearer(crm_token).get(XREF).status_code == 404
    IntegrationToken.objects.update(revoked=True)

    assert bearer(crm_token).get(XREF).status_code == 401


def test_integration_cannot_write_another_systems_records(crm, erp):
    response = crm.put("/api/v1/sources/erp/customer/9", ACME, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "crm" in response.json()["error"]["message"]


def test_integration_reads_what_other_systems_wrote(crm, erp):
    erp.put("/api/v1/sources/erp/customer/9", ACME, format="json")

    assert crm.get("/api/v1/xref/customer/erp/9").status_code == 200


def test_auditor_reads_but_cannot_write(auditor_api, crm):
    crm.put("/api/v1/sources/crm/customer/1", ACME, format="json")

    assert auditor_api.get(XREF).status_code == 200
    assert auditor_api.put("/api/v1/sources/crm/customer/2", ACME, format="json").status_code == 403


def test_signed_in_user_without_a_role_is_403(no_role_api):
    assert no_role_api.get(XREF).status_code == 403


def test_steward_writes_any_system(steward_api, crm):
    response = steward_api.put("/api/v1/sources/crm/customer/7", ACME, format="json")

    assert response.status_code == 201


@override_settings(KEYSTONE_API_THROTTLE_RATE="3/min")
def test_a_token_over_its_rate_gets_429_with_retry_after(crm):
    statuses = [crm.get("/api/v1/events").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    last = crm.get("/api/v1/events")
    assert last.json()["error"]["code"] == "throttled"
    assert int(last["Retry-After"]) >= 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/xref/spaceship/crm/1",
        "/api/v1/golden/spaceship",
        "/api/v1/golden/spaceship/CUS-1",
        "/api/v1/sources/crm/spaceship/1",
    ],
)
def test_unknown_entity_is_404_unknown_entity(crm, path):
    response = crm.get(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_entity"
    assert "spaceship" in response.json()["error"]["message"]


def test_unknown_record_and_unknown_endpoint_have_their_own_404_codes(crm):
    codes = [
        crm.get(path).json()["error"]["code"]
        for path in (
            "/api/v1/xref/customer/crm/nope",
            "/api/v1/golden/customer/CUS-NOPE",
            "/api/v1/webhooks/subscriptions/999",
            "/api/v1/nowhere",
        )
    ]

    assert codes == [
        "source_record_not_found",
        "golden_record_not_found",
        "subscription_not_found",
        "not_found",
    ]


def test_malformed_json_is_400(crm):
    response = crm.put(
        "/api/v1/sources/crm/customer/1", "{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_health_and_readiness_need_no_token():
    assert APIClient().get("/healthz").json() == {"status": "ok"}
    ready = APIClient().get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_readiness_is_503_when_the_broker_is_unreachable():
    response = APIClient().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error")


def test_schema_and_offline_swagger_ui_are_served(crm):
    schema = crm.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = APIClient().get("/api/docs/")

    assert schema.status_code == 200
    assert "/api/v1/xref/{entity}/lookup" in schema.json()["paths"]
    assert docs.status_code == 200
    assert b"drf_spectacular_sidecar" in docs.content


def test_a_client_without_accept_header_gets_json(crm):
    crm.put("/api/v1/sources/crm/customer/1", ACME, format="json")

    response = crm.get(XREF)

    assert response["Content-Type"] == "application/json"
    assert response.json()["found"] is True


def test_a_client_accepting_only_xml_gets_406_in_the_error_shape(crm):
    response = crm.get("/api/v1/events", HTTP_ACCEPT="application/xml")

    assert response.status_code == 406
    assert response.json()["error"]["code"] == "not_acceptable"


def test_schema_format_query_parameter_picks_the_renderer(crm):
    response = crm.get("/api/schema/?format=json")

    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert "/api/v1/xref/{entity}/lookup" in response.json()["paths"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/xref/customer/crm/a%00b"),
        ("GET", "/api/v1/golden/customer/cu_a%00b"),
        ("GET", "/api/v1/golden/customer/cu_a%00b/history"),
        ("GET", "/api/v1/events?type=golden.%00"),
        ("PUT", "/api/v1/sources/crm/customer/a%00b"),
        ("DELETE", "/api/v1/sources/crm/customer/a%00b"),
    ],
)
def test_a_nul_character_in_the_path_or_query_is_422_not_a_server_error(crm, method, path):
    """PostgreSQL text cannot hold NUL; these used to reach the database and answer 500."""
    response = crm.generic(method, path, json.dumps(ACME), content_type="application/json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"


@override_settings(KEYSTONE_API_THROTTLE_RATE="5/min")
def test_every_answer_says_where_the_caller_stands_against_the_rate_limit(crm):
    from django.core.cache import cache

    cache.clear()

    answers = [crm.get("/api/v1/xref/customer/crm/nope") for _ in range(2)]

    assert [a["RateLimit-Policy"] for a in answers] == ['"default";q=5;w=60'] * 2
    remaining = [int(a["RateLimit"].split(";r=")[1].split(";")[0]) for a in answers]
    assert remaining == [4, 3]
    assert all(a.has_header("X-Correlation-ID") for a in answers)


def test_writing_to_an_unknown_entity_is_404_unknown_entity_not_403(crm):
    response = crm.put("/api/v1/sources/crm/spaceship/1", ACME, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_entity"
