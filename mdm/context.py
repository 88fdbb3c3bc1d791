"""Who is acting, why, and under which correlation ID — for history rows and events.

Services take `actor` and `reason` explicitly; this context carries them (plus the request's
correlation ID) to the places that cannot take arguments: django-simple-history's signal
handlers and the history rows written for bulk operations.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")

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


def current_correlation_id() -> str:
    """The correlation ID set for this request, command or task; "" when none is (log lines
    and task headers read it without making one up)."""
    return _correlation_id.get()


def enter_correlation(value: str) -> Token[str]:
    """Set the correlation ID until `leave_correlation` with the token (for code that cannot
    use `audit_context` around its work: Celery's task signals)."""
    return _correlation_id.set(value)


def leave_correlation(token: Token[str]) -> None:
    _correlation_id.reset(token)


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


def correlated(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `func` under the current correlation ID, or a new one for the call when none is
    set (a command's file load): everything it causes — history, match requests, events,
    the worker processes it forks — shares that one ID, and it is gone after the call."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with audit_context(correlation=current_correlation_id() or new_correlation_id()):
            return func(*args, **kwargs)

    return wrapper
