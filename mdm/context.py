"""Who is acting, why, and under which correlation ID — for history rows and events.

Services take `actor` and `reason` explicitly; this context carries them (plus the request's
correlation ID) to the places that cannot take arguments: django-simple-history's signal
handlers and the history rows written for bulk operations.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")
_actor: ContextVar[str] = ContextVar("actor", default="")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def correlation_id() -> str:
    """The current correlation ID; a fresh one is made (and kept) when none is set."""
    value = _correlation_id.get()
    if not value:
        value = new_correlation_id()
        _correlation_id.set(value)
    return value


def current_actor() -> str:
    return _actor.get()


@contextmanager
def audit_context(*, actor: str | None = None, correlation: str | None = None) -> Iterator[None]:
    tokens = []
    if actor is not None:
        tokens.append((_actor, _actor.set(actor)))
    if correlation is not None:
        tokens.append((_correlation_id, _correlation_id.set(correlation)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
