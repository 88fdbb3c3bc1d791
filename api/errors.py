"""One error shape for every 4xx/5xx the API returns:

    {"error": {"code": "...", "message": "...", "fields": {"field": ["reason"]},
               "correlation_id": "..."}}

`code` comes from one vocabulary (`ERROR_CODES`, published as an enum in the schema): one code
per kind of mistake, so a client can branch on it. Domain exceptions (`mdm.errors`) map to
HTTP here and nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mdm.context import correlation_id
from mdm.errors import (
    ConcurrentChange,
    GoldenRecordNotFound,
    InvalidResolution,
    MdmError,
    SourceRecordNotFound,
    UnknownEntity,
    UnknownSourceSystem,
)
from mdm.mappings import InvalidMapping

logger = logging.getLogger("api")

# The vocabulary: code -> when it is answered. The schema's `ErrorCode` enum is this list.
ERROR_CODES: dict[str, str] = {
    "parse_error": "400: the body is not valid JSON / NDJSON.",
    "not_authenticated": "401: no token or session.",
    "authentication_failed": "401: an unknown or revoked token.",
    "permission_denied": "403: the role or token does not allow this.",
    "not_found": "404: no such endpoint.",
    "unknown_entity": "404: no such entity type.",
    "unknown_source_system": "404: no such source system.",
    "golden_record_not_found": "404: no such golden record (or past the redirect limit).",
    "source_record_not_found": "404: no such source record.",
    "subscription_not_found": "404: no such webhook subscription (or not yours).",
    "mapping_not_found": "404: no such source mapping version (or not your system's).",
    "method_not_allowed": "405: the endpoint does not take this method.",
    "not_acceptable": "406: the Accept header names nothing the endpoint renders.",
    "idempotency_key_reused": "409: the Idempotency-Key was used for a different request.",
    "idempotency_key_in_use": "409: a request with this Idempotency-Key is still running.",
    "invalid_resolution": "409: the change would break a resolution rule.",
    "concurrent_change": "409: concurrent writers kept changing the same records; send again.",
    "no_active_model": "409: no match model is trained for the entity type.",
    "precondition_failed": "412: If-Match names a version that is no longer current.",
    "payload_too_large": "413: the body, batch or key list is over its limit.",
    "unsupported_media_type": "415: the Content-Type is not accepted here.",
    "invalid": "422: the request parsed but cannot be used; `fields` says what and why.",
    "rejected": "422: ingest refused the record (kept as a rejection for replay).",
    "throttled": "429: over the rate limit; see Retry-After.",
    "server_error": "500: a bug; quote the correlation ID.",
}


class ApiError(exceptions.APIException):
    """An API error with a code from the vocabulary and optional per-field reasons."""

    def __init__(
        self, detail: str | None = None, code: str | None = None, fields: dict | None = None
    ) -> None:
        super().__init__(detail, code)
        self.fields = fields or {}


class Invalid(ApiError):
    """The request parsed but cannot be used (422). `fields` names what is wrong."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "invalid"
    default_detail = "The request has invalid fields."


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "invalid_resolution"
    default_detail = "The request conflicts with the current state."


class PreconditionFailed(ApiError):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "If-Match does not name the current version; read it again."


class PayloadTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"
    default_detail = "Not found."


def translate(exc: Exception) -> Exception:
    from matching.errors import NoActiveModel
    from matching.errors import SourceRecordNotFound as MatchingRecordNotFound

    if isinstance(exc, NoActiveModel):
        return Conflict(str(exc), code="no_active_model")
    if isinstance(exc, UnknownEntity):
        return NotFound(str(exc), code="unknown_entity")
    if isinstance(exc, UnknownSourceSystem):
        return NotFound(str(exc), code="unknown_source_system")
    if isinstance(exc, GoldenRecordNotFound):
        return NotFound(str(exc), code="golden_record_not_found")
    if isinstance(exc, SourceRecordNotFound | MatchingRecordNotFound):
        return NotFound(str(exc), code="source_record_not_found")
    if isinstance(exc, InvalidResolution):
        return Conflict(str(exc), code="invalid_resolution")
    if isinstance(exc, ConcurrentChange):
        return Conflict(str(exc), code="concurrent_change")
    if isinstance(exc, InvalidMapping):
        fields: dict[str, list[str]] = {}
        for where, reason in exc.problems:
            fields.setdefault(f"spec.{where}", []).append(reason)
        return Invalid("The mapping cannot be used; `fields` says where and why.", fields=fields)
    if isinstance(exc, MdmError):
        return Invalid(str(exc))
    if isinstance(exc, Http404):
        return NotFound(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, RequestDataTooBig):  # Django's own limit on a body read as request.body
        return PayloadTooLarge("The body is too large.")
    return exc


def flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation errors as {"keys[0].system": ["reason"]}."""
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for name, inner in detail.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            if isinstance(name, int):
                key = f"{prefix}[{name}]"
            fields.update(flatten(inner, key))
    elif isinstance(detail, list) and any(isinstance(i, dict | list) for i in detail):
        for index, inner in enumerate(detail):
            if inner:
                fields.update(flatten(inner, f"{prefix}[{index}]"))
    elif isinstance(detail, list):
        fields[prefix or "non_field_errors"] = [str(i) for i in detail]
    else:
        fields[prefix or "non_field_errors"] = [str(detail)]
    return fields


def error_body(code: str, message: str, fields: dict | None = None) -> dict[str, Any]:
    assert code in ERROR_CODES, code
    return {
        "error": {
            "code": code,
            "message": message,
            "fields": fields or {},
            "correlation_id": correlation_id(),
        }
    }


def exception_handler(exc: Exception, context: dict) -> Response:
    exc = translate(exc)
    if isinstance(exc, exceptions.ValidationError):
        return Response(
            error_body("invalid", "The request has invalid fields.", flatten(exc.detail)),
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error", extra={"correlation_id": correlation_id()})
        return Response(
            error_body("server_error", "Internal error; quote the correlation ID."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "server_error"
    if not isinstance(code, str) or code not in ERROR_CODES:
        code = "server_error" if response.status_code >= 500 else "invalid"
    message = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    response.data = error_body(code, str(message), getattr(exc, "fields", None))
    return response
