"""Property-based run of the OpenAPI schema against the app itself (WSGI, same database):
no 5xx, every status code, content type and body as documented. Bounded examples."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.api.conftest import ACME, load


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value) -> dict:
    return {"data": value if isinstance(value, bytes) else str(value).encode()}


schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _keep_the_test_connection(in_process_wsgi):
    yield


@pytest.fixture
def auth_headers(crm_token):
    load("crm", [{**ACME, "source_key": "1"}, {**ACME, "source_key": "2", "name": "Globex"}])
    return {"Authorization": f"Bearer {crm_token}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, auth_headers):
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
