"""Conditional requests: an `ETag` on golden record and cross-reference reads (a `304` for a
matching `If-None-Match`), and `If-Match` on subscription updates (a `412` when stale).

The tag is a digest of the representation's data, already in hand when the view answers:
no extra query, and a few microseconds even on the xref hot path.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import PreconditionFailed

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def etag_of(data: Any) -> str:
    digest = hashlib.blake2b(orjson.dumps(data, option=_OPTIONS, default=str), digest_size=12)
    return f'"{digest.hexdigest()}"'


def _matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in tags


def conditional_get(request: Request, data: Any, **headers: str) -> Response:
    """`data` with its ETag, or 304 (no body) when If-None-Match names it."""
    etag = etag_of(data)
    wanted = request.META.get("HTTP_IF_NONE_MATCH")
    if wanted is not None and _matches(wanted, etag):
        response = Response(status=status.HTTP_304_NOT_MODIFIED)
    else:
        response = Response(data)
    response["ETag"] = etag
    for name, value in headers.items():
        response[name] = value
    return response


def require_current(request: Request, data: Any) -> None:
    """412 when If-Match is given and does not name the current representation."""
    wanted = request.META.get("HTTP_IF_MATCH")
    if wanted is not None and not _matches(wanted, etag_of(data)):
        raise PreconditionFailed(fields={"If-Match": ["not the current ETag"]})
