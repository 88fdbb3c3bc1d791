"""What every API request passes before its view runs: the body-size limit (checked before
the body is read), no NUL character in the path or query string, no query parameter the
operation does not declare, and the same validation for every integer parameter."""

from __future__ import annotations

from collections.abc import Collection

from rest_framework.request import Request

from api.errors import Invalid, PayloadTooLarge


def refuse_large_body(request: Request, limit: int) -> None:
    """413 for a declared Content-Length over `limit` bytes, before parsing: a batch's
    KEYSTONE_API_MAX_BODY_BYTES, any other body's (one object: a record, a lookup, a probe,
    a subscription) KEYSTONE_API_MAX_OBJECT_BYTES — parsed whole, it must stay small."""
    length = request.META.get("CONTENT_LENGTH") or 0
    try:
        too_big = int(length) > limit
    except ValueError:
        too_big = False
    if too_big:
        raise PayloadTooLarge(f"The body is over {limit} bytes.")


def refuse_nul(request: Request) -> None:
    """PostgreSQL text cannot hold NUL, so no key, ID or filter value can contain one (the
    driver would raise, a 500): refused up front."""
    if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
        raise Invalid(
            "NUL characters are not allowed in the path or query string.",
            fields={"path": ["contains a NUL character"]},
        )


def refuse_unknown_parameters(request: Request, allowed: Collection[str]) -> None:
    """422 naming every query parameter the operation does not declare: a typo in a filter
    must not silently return the whole list."""
    if not request.META.get("QUERY_STRING"):
        return
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise Invalid(
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            fields={name: ["unknown query parameter"] for name in unknown},
        )


def int_parameter(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter between `low` and `high`; 422 naming it otherwise."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(fields={name: [f"an integer between {low} and {high}"]}) from None
    if not low <= value <= high:
        raise Invalid(fields={name: [f"an integer between {low} and {high}"]})
    return value
