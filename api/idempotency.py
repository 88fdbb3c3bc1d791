"""Repeat-safe writes: `Idempotency-Key` on every POST that creates something (and on PUT and
DELETE of source records).

The key is claimed before the request runs: one INSERT, and the unique constraint on
(principal, key) decides which of two concurrent requests goes ahead. The loser never runs:
it gets the stored answer (`Idempotent-Replayed: true`) when the winner has finished and the
request is the same, 409 `idempotency_key_in_use` while the winner is still running, and 409
`idempotency_key_reused` when the same key comes with a different method, path or body.
A request that fails (an exception or a 5xx) gives its claim back, so a retry can run. Keys
are kept KEYSTONE_API_IDEMPOTENCY_HOURS (24 h); an older key is claimed afresh.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import Conflict, Invalid
from api.models import IdempotencyKey, IntegrationToken

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = ("Location", "ETag")  # sent again with a replayed answer


def principal_of(request: Request) -> str:
    if isinstance(request.auth, IntegrationToken):
        return f"token:{request.auth.source_system_id}"
    return f"user:{request.user.pk}"


def request_hash(request: Request, body: Any) -> str:
    text = json.dumps(
        [request.method, request.path, body],
        sort_keys=True,
        default=lambda value: getattr(value, "text", str(value)),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def idempotent(request: Request, body: Any, produce: Callable[[], Response]) -> Response:
    """Run `produce()` at most once per Idempotency-Key (when the request has one)."""
    key = request.headers.get(HEADER)
    if not key:
        return produce()
    if len(key) > 255:
        raise Invalid(fields={HEADER: ["at most 255 characters"]})
    principal, digest = principal_of(request), request_hash(request, body)
    claim = _claim(principal, key, digest)
    if not isinstance(claim, IdempotencyKey):
        return claim
    try:
        response = produce()
    except BaseException:
        claim.delete()
        raise
    if response.status_code >= 500:
        claim.delete()
        return response
    IdempotencyKey.objects.filter(pk=claim.pk).update(
        status_code=response.status_code,
        response_body=response.data,
        response_headers={h: response[h] for h in KEPT_HEADERS if response.has_header(h)},
    )
    return response


def _claim(principal: str, key: str, digest: str) -> IdempotencyKey | Response:
    """Our claim on the key, or the answer to give instead of running."""
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    principal=principal, key=key, request_hash=digest
                )
        except IntegrityError:
            pass
        stored = IdempotencyKey.objects.filter(principal=principal, key=key).first()
        if stored is None:
            continue  # its owner gave it back: try again
        fresh_after = timezone.now() - timedelta(hours=settings.KEYSTONE_API_IDEMPOTENCY_HOURS)
        if stored.created_at < fresh_after:
            IdempotencyKey.objects.filter(pk=stored.pk, created_at=stored.created_at).delete()
            continue
        return _answer(stored, digest)
    raise Conflict("This Idempotency-Key is in use by another request.", "idempotency_key_in_use")


def _answer(stored: IdempotencyKey, digest: str) -> Response:
    if stored.request_hash != digest:
        raise Conflict(
            "This Idempotency-Key was used for a different request.", "idempotency_key_reused"
        )
    if stored.status_code is None:
        raise Conflict(
            "A request with this Idempotency-Key is still running; retry later.",
            "idempotency_key_in_use",
        )
    response = Response(stored.response_body, status=stored.status_code)
    for name, value in stored.response_headers.items():
        response[name] = value
    response[REPLAYED] = "true"
    return response
