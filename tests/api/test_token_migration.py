"""Tokens issued before scopes existed keep working after migration api.0003: they get every
scope but golden:read_sensitive."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from api.models import IntegrationToken, hash_token
from api.scopes import DEFAULT_SCOPES
from tests.api.conftest import ACME, bearer, load

BEFORE = [("api", "0002_idempotency_claimed_before_running")]
WITH_SCOPES = [("api", "0003_integration_token_scopes")]


@pytest.mark.django_db(transaction=True)
def test_a_token_issued_before_scopes_keeps_working_without_sensitive_attributes():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    system = old.get_model("mdm", "SourceSystem").objects.create(code="crm", name="CRM")
    old.get_model("api", "IntegrationToken").objects.create(
        source_system_id=system.pk, prefix="legacy", token_hash=hash_token("legacy-token")
    )

    executor = MigrationExecutor(connection)
    executor.migrate(WITH_SCOPES)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert IntegrationToken.objects.get(prefix="legacy").scopes == list(DEFAULT_SCOPES)
    client = bearer("legacy-token")
    load("crm", [{**ACME, "source_key": "1"}])
    assert client.get("/api/v1/xref/customer/crm/1").status_code == 200
    golden = client.get("/api/v1/golden/customer").json()["results"][0]
    assert golden["values"]["name"] == "ACME Inc." and "tax_id" not in golden["values"]
