"""Every request gets (or keeps) a correlation ID, and history written under it carries it."""

import pytest


def test_response_carries_a_new_correlation_id(client):
    response = client.get("/admin/login/")

    assert len(response["X-Correlation-ID"]) == 32


def test_valid_incoming_correlation_id_is_kept_and_an_unsafe_one_replaced(client):
    kept = client.get("/admin/login/", HTTP_X_CORRELATION_ID="req-42.a:b")
    replaced = client.get("/admin/login/", HTTP_X_CORRELATION_ID="bad value\n<script>")

    assert kept["X-Correlation-ID"] == "req-42.a:b"
    assert replaced["X-Correlation-ID"] != "bad value\n<script>"


@pytest.mark.django_db
def test_history_written_during_a_request_carries_its_correlation_id(admin_client):
    from mdm.models import SourceSystem

    admin_client.post(
        "/admin/mdm/sourcesystem/add/",
        {"code": "crm", "name": "CRM", "trust_rank": 1},
        HTTP_X_CORRELATION_ID="corr-admin-1",
    )

    row = SourceSystem.history.get()
    assert row.correlation_id == "corr-admin-1"
    assert row.history_user.username == "admin"
    assert row.actor == "user:admin"
