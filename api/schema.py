"""OpenAPI 3.1: every operation documents the shared error shape for every error status, the
headers every answer carries, and the bearer-token security scheme; the published
definitions of `mdm.contracts` (entity values, lineage, inputs, events) become components,
and outgoing webhooks are described in the `webhooks` section with their signature headers.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter

from mdm.contracts import EVENT_DESCRIPTIONS, EVENT_TYPES, definitions

COMMON_ERRORS = {
    "400": "Malformed request: the body is not valid JSON (`parse_error`).",
    "401": "No token or session (`not_authenticated`), or an unknown or revoked token "
    "(`authentication_failed`); see WWW-Authenticate.",
    "403": "The role or token does not allow this, e.g. the token lacks the operation's scope "
    "(`permission_denied`).",
    "404": "No such entity type, source system, record or endpoint (see `code`).",
    "406": "Not acceptable (`not_acceptable`).",
    "413": "The body, batch or key list is over its limit (`payload_too_large`).",
    "415": "Unsupported media type (`unsupported_media_type`).",
    "422": "The request parsed but cannot be used (`invalid`): `fields` says what and why; "
    "undeclared query parameters are named there.",
    "429": "Throttled (`throttled`); see Retry-After.",
    "500": "A bug (`server_error`); quote the correlation ID.",
}
RESPONSE_HEADERS = [
    OpenApiParameter(
        "X-Correlation-ID",
        str,
        OpenApiParameter.HEADER,
        response=True,
        description="The request's correlation ID (the caller's if valid, else a new one); "
        "written to history rows and events.",
    ),
    OpenApiParameter(
        "RateLimit-Policy",
        str,
        OpenApiParameter.HEADER,
        response=True,
        description='The quota: `"default";q=<requests>;w=<window seconds>`.',
    ),
    OpenApiParameter(
        "RateLimit",
        str,
        OpenApiParameter.HEADER,
        response=True,
        description='Where the caller stands: `"default";r=<remaining>;t=<seconds to reset>`.',
    ),
    OpenApiParameter(
        "Retry-After",
        int,
        OpenApiParameter.HEADER,
        response=[429],
        description="Seconds until the window resets.",
    ),
    OpenApiParameter(
        "WWW-Authenticate",
        str,
        OpenApiParameter.HEADER,
        response=[401],
        description='`Bearer realm="keystone"`.',
    ),
]


def _component(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


class KeystoneAutoSchema(AutoSchema):
    def get_description(self) -> str:  # type: ignore[override]  # drf-spectacular's signature
        """Only what an operation's `extend_schema(description=…)` says: docstrings are
        written for developers, not for API clients."""
        return ""

    def get_operation(self, *args: Any, **kwargs: Any) -> Any:
        """The operation, its description naming the token scope it needs (`api.scopes`)."""
        operation = super().get_operation(*args, **kwargs)
        scope = getattr(self.view, "required_scope", None)
        if operation and scope:
            said = operation.get("description", "")
            operation["description"] = f"{said}\n\nToken scope: `{scope}`.".strip()
        return operation

    def _is_public(self) -> bool:
        return getattr(self.view, "authentication_classes", None) == []

    def get_override_parameters(self) -> list:
        parameters = super().get_override_parameters()
        if self._is_public():
            return parameters
        return [*parameters, *RESPONSE_HEADERS]

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if self._is_public():
            return responses
        from api.serializers import ErrorSerializer

        for code, description in COMMON_ERRORS.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = description
        return responses


class IntegrationTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.IntegrationTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}


SIGNATURE_HEADERS = {
    "X-Keystone-Event-Id": "The event's sequence number (de-duplicate on it).",
    "X-Keystone-Event-Type": "The event type.",
    "X-Keystone-Delivery-Attempt": "1 on the first attempt, then 2, 3, …",
    "X-Keystone-Timestamp": "Unix seconds when signed; reject old ones.",
    "X-Keystone-Signature": '`sha256=` + hex HMAC-SHA256(secret, "<timestamp>.<raw body>").',
}


def webhooks() -> dict[str, Any]:
    """One entry per event type: what Keystone POSTs to a subscribed URL."""
    return {
        event_type: {
            "post": {
                "summary": f"{event_type} delivered to a subscription",
                "description": EVENT_DESCRIPTIONS[event_type]
                + " Answer 2xx to acknowledge; anything else (3xx included) is retried with "
                "backoff and dead-lettered after the maximum number of attempts.",
                "operationId": f"webhook_{event_type.replace('.', '_')}",
                "tags": ["webhooks"],
                "parameters": [
                    {
                        "name": name,
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": description,
                    }
                    for name, description in SIGNATURE_HEADERS.items()
                ]
                + [
                    {
                        "name": "X-Correlation-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "The correlation ID of the request, file load or task "
                        "that caused the event (the event's `correlation_id`).",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _component(_envelope(event_type))}},
                },
                "responses": {"200": {"description": "Delivered (any 2xx)."}},
            }
        }
        for event_type in EVENT_TYPES
    }


def _envelope(event_type: str) -> str:
    return "".join(w.capitalize() for w in event_type.replace(".", "_").split("_")) + "Event"


def add_contract_components(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Postprocessing hook: the published definitions as components, webhooks described,
    every request body required."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in definitions(_component).items():
        assert name not in schemas or schemas[name] == schema, f"two components named {name}"
        schemas[name] = schema
    result["webhooks"] = webhooks()
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return dict(sorted(result.items(), key=lambda item: _ORDER.get(item[0], 99)))


_ORDER = {"openapi": 0, "info": 1, "paths": 2, "webhooks": 3, "components": 4}
