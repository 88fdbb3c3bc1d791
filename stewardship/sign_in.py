"""Signing in (admin and steward pages): password guessing is cut off.

Django's login has no limit of its own. `LimitedModelBackend` counts failed sign-ins per
(username, client address) in the shared cache (Redis when REDIS_URL is set): after
KEYSTONE_LOGIN_MAX_FAILURES within KEYSTONE_LOGIN_LOCK_MINUTES, that pair is refused without
the password being checked — the right one included — until the window has passed since the
last failure. A successful sign-in clears the count. Counting per address means a guesser
cannot lock a steward out from everywhere; the address is the client's as
`config.clients.client_address` finds it (behind KEYSTONE_TRUSTED_PROXIES, the address the
proxy saw; a forged X-Forwarded-For changes nothing). If the cache is unreachable, sign-ins
are neither limited nor failed.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from config.clients import client_address

logger = logging.getLogger("stewardship")


def _key(username: str, request: HttpRequest | None) -> str:
    address = client_address(request.META) if request is not None else ""
    digest = hashlib.sha256(f"{username.casefold()}\x00{address}".encode()).hexdigest()
    return f"sign-in-failures:{digest}"


def _failures(key: str) -> int:
    try:
        return int(cache.get(key) or 0)
    except Exception:  # noqa: BLE001 - an outage of the shared cache must not stop sign-ins
        logger.warning("shared cache unreachable: sign-ins not limited", exc_info=True)
        return 0


def _remember(key: str, failures: int | None) -> None:
    try:
        if failures is None:
            cache.delete(key)
        else:
            cache.set(key, failures, timeout=settings.KEYSTONE_LOGIN_LOCK_MINUTES * 60)
    except Exception:  # noqa: BLE001 - see _failures
        logger.warning("shared cache unreachable: sign-in not counted", exc_info=True)


class LimitedModelBackend(ModelBackend):
    """Django's username and password check, refused for a (username, address) that failed
    too often (see the module docstring)."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None or password is None:
            return super().authenticate(request, username, password, **kwargs)
        key = _key(username, request)
        failures = _failures(key)
        if failures >= settings.KEYSTONE_LOGIN_MAX_FAILURES:
            _remember(key, failures + 1)  # the window runs from the last attempt
            raise PermissionDenied  # no other backend is asked; the form says "incorrect"
        user = super().authenticate(request, username, password, **kwargs)
        _remember(key, None if user is not None else failures + 1)
        return user
