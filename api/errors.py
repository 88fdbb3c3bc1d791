"""One error shape for every 4xx/5xx the API returns:

    {"error": {"code": "...", "message": "...", "fields": {"field": ["reason"]},
               "correlation_id": "..."}}

Domain exceptions (`mdm.errors`) map to HTTP here and nowhere else.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mdm.context import correlation_id
from mdm.errors import (
    GoldenRecordNotFound,
    InvalidResolution,
    MdmError,
    UnknownEntity,
    UnknownSourceSystem,
)

logger = logging.getLogger("api")


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class Unprocessable(exceptions.APIException):
    """The body parsed but cannot be used (422). `fields` names what is wrong."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"
    default_detail = "The request cannot be processed."

    def __init__(self, detail=None, code=None, fields: dict | None = None):
        super().__init__(detail, code)
        self.fields = fields or {}


NOT_FOUND_ERRORS = (UnknownEntity, UnknownSourceSystem, GoldenRecordNotFound)


def translate(exc: Exception) -> Exception:
    from matching.errors import NoActiveModel

    if isinstance(exc, NoActiveModel):
        return Conflict(str(exc), code="no_active_model")
    if isinstance(exc, NOT_FOUND_ERRORS):
        return exceptions.NotFound(str(exc))
    if isinstance(exc, InvalidResolution):
        return Conflict(str(exc))
    if isinstance(exc, MdmError):
        return Unprocessable(str(exc))
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    return exc


def flatten(detail, prefix: str = "") -> dict[str, list[str]]:
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


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "fields": fields or {},
            "correlation_id": correlation_id(),
        }
    }


def exception_handler(exc, context):
    exc = translate(exc)
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten(exc.detail)
        return Response(
            error_body("invalid", "The request has invalid fields.", fields),
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error", extra={"correlation_id": correlation_id()})
        return Response(
            error_body("server_error", "Internal error; quote the correlation ID."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if not isinstance(code, str):
        code = "error"
    message = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    response.data = error_body(code, str(message), getattr(exc, "fields", None))
    return response


def json_error_view(status_code: int, code: str, message: str):
    def view(request, exception=None):
        return JsonResponse(error_body(code, message), status=status_code)

    return view


handler404 = json_error_view(404, "not_found", "No such endpoint.")
handler500 = json_error_view(500, "server_error", "Internal error; quote the correlation ID.")
