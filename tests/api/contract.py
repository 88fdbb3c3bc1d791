"""The API as a client generated from its live schema sees it: `openapi-python-client` builds
the client, an httpx transport hands its requests to the WSGI app in-process (same database
connection as the test), and openapi-core validates every request and every answer against
the same schema."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import requests
from django.test import Client as DjangoClient
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

PACKAGE = "keystone_contract_client"
GENERATOR_CONFIG = {
    "project_name_override": "keystone-contract-client",
    "package_name_override": PACKAGE,
    # NDJSON bodies are bytes to the client (it has no NDJSON encoder of its own).
    "content_type_overrides": {"application/x-ndjson": "application/octet-stream"},
    "post_hooks": [],  # no formatter run: the generated code is imported, not read
}


def live_schema() -> dict[str, Any]:
    response = DjangoClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def generate_client(schema: dict[str, Any], directory: Path) -> tuple[ModuleType, str]:
    """Generate the client into `directory` and import it; returns it and the generator's
    output (which the caller checks for warnings)."""
    schema_path = directory / "schema.json"
    schema_path.write_text(json.dumps(schema))
    config_path = directory / "config.json"
    config_path.write_text(json.dumps(GENERATOR_CONFIG))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(schema_path),
            "--config",
            str(config_path),
            "--meta",
            "none",
            "--output-path",
            str(directory / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=directory,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    sys.path.insert(0, str(directory))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]
    return importlib.import_module(PACKAGE), output


def operations(client_package: ModuleType) -> dict[str, ModuleType]:
    """operationId -> the generated module that calls it."""
    api = importlib.import_module(f"{client_package.__name__}.api")
    found = {}
    for info in pkgutil.walk_packages(api.__path__, f"{api.__name__}."):
        if not info.ispkg:
            found[info.name.rsplit(".", 1)[1]] = importlib.import_module(info.name)
    return found


class ValidatingTransport(httpx.BaseTransport):
    """Hands requests to the WSGI app and validates each exchange with openapi-core."""

    def __init__(self, schema: dict[str, Any], app: Any) -> None:
        self.openapi = OpenAPI.from_dict(
            schema,
            config=Config(extra_media_type_deserializers={"application/x-ndjson": _text}),
        )
        self.inner = httpx.WSGITransport(app=app)
        self.exchanges: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        response = self.inner.handle_request(request)
        content = response.read()
        openapi_request = RequestsOpenAPIRequest(
            requests.Request(
                request.method, str(request.url), headers=dict(request.headers), data=body
            )
        )
        self.openapi.validate_request(openapi_request)
        self.openapi.validate_response(openapi_request, _as_requests(response, content))
        self.exchanges.append((request.method, request.url.path, response.status_code))
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )


def _text(value: bytes, **parameters: str) -> str:
    """An NDJSON body as the string its schema declares (openapi-core has no NDJSON reader)."""
    return value.decode()


def _as_requests(response: httpx.Response, content: bytes) -> RequestsOpenAPIResponse:
    converted = requests.Response()
    converted.status_code = response.status_code
    converted.headers.update(response.headers)
    converted._content = content
    return RequestsOpenAPIResponse(converted)


_openapi: dict[str, OpenAPI] = {}


def assert_matches_schema(response: Any) -> None:
    """A Django test client's answer validates against the live schema (the request is not
    checked: ingest and the probe take more spellings than the schema's types say)."""
    from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse

    if "live" not in _openapi:
        _openapi["live"] = OpenAPI.from_dict(live_schema())
    sent = response.wsgi_request
    if not hasattr(sent, "_body"):  # the API's parsers read the body as a stream
        sent._body = b""  # (not checked here anyway), so request.body cannot be read again
    request = DjangoOpenAPIRequest(sent)
    _openapi["live"].validate_response(request, DjangoOpenAPIResponse(response))
