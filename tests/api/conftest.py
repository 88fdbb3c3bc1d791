import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from api.models import IntegrationToken
from api.scopes import SCOPES
from mdm.services.ingest import get_source_system, ingest_records

ACME = {
    "kind": "organization",
    "name": "ACME Inc.",
    "email": "INFO@ACME.COM",
    "country": "Germany",
    "tax_id": "de 123 456 789",
}


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def private_targets(settings):
    """The test receivers listen on 127.0.0.1: allow loopback and private webhook targets."""
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def crm_token(db) -> str:
    _, token = IntegrationToken.issue(get_source_system("crm", create=True))
    return token


@pytest.fixture
def crm(crm_token) -> APIClient:
    return bearer(crm_token)


@pytest.fixture
def crm_all_scopes_token(db) -> str:
    """A token of crm with every scope, golden:read_sensitive included."""
    _, token = IntegrationToken.issue(get_source_system("crm", create=True), scopes=SCOPES)
    return token


@pytest.fixture
def crm_all_scopes(crm_all_scopes_token) -> APIClient:
    return bearer(crm_all_scopes_token)


@pytest.fixture
def erp(db) -> APIClient:
    _, token = IntegrationToken.issue(get_source_system("erp", create=True))
    return bearer(token)


def _user_client(django_user_model, name: str, group: str | None) -> APIClient:
    user = django_user_model.objects.create_user(name, password="pw-secret-123")
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def steward_api(django_user_model) -> APIClient:
    return _user_client(django_user_model, "stella", "steward")


@pytest.fixture
def auditor_api(django_user_model) -> APIClient:
    return _user_client(django_user_model, "audrey", "auditor")


@pytest.fixture
def no_role_api(django_user_model) -> APIClient:
    return _user_client(django_user_model, "nobody", None)


def load(system: str, rows: list[dict], entity: str = "customer"):
    return ingest_records(
        entity_type=entity,
        system_code=system,
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
        collect_results=True,
    )


@pytest.fixture
def in_process_wsgi():
    """The WSGI app, called in the test's thread. Its request signals would close the test's
    connection mid-transaction (Django's own test client disconnects them the same way)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from config.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
