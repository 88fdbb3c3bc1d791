"""Bearer-token authentication for integrations.

An authenticated integration is an `IntegrationPrincipal` (not a Django user): it has no
password, no session and no admin access; `request.auth` is its `IntegrationToken`.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from api.models import IntegrationToken, hash_token


class IntegrationPrincipal:
    """The `request.user` of an integration: enough of the user protocol for DRF."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, token: IntegrationToken) -> None:
        self.token = token
        self.pk = self.id = None
        self.username = token.actor

    def __str__(self) -> str:
        return self.username

    def get_username(self) -> str:
        return self.username


_TOKEN_CACHE: dict[str, tuple[IntegrationToken, float]] = {}
_TOKEN_CACHE_MAX = 10_000


def forget_cached_tokens() -> None:
    _TOKEN_CACHE.clear()


class IntegrationTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`; the token is looked up by its SHA-256.

    A valid token is remembered in-process for KEYSTONE_API_TOKEN_CACHE_SECONDS (default
    10 s), so a lookup costs one query instead of two. The trade-off: a revoked token keeps
    working for at most that long in a process that has just seen it. Set 0 to disable.
    """

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            token = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        digest = hash_token(token)
        ttl = settings.KEYSTONE_API_TOKEN_CACHE_SECONDS
        cached = _TOKEN_CACHE.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            return IntegrationPrincipal(cached[0]), cached[0]
        row = (
            IntegrationToken.objects.select_related("source_system")
            .filter(token_hash=digest, revoked=False)
            .first()
        )
        if row is None:
            _TOKEN_CACHE.pop(digest, None)
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        self._touch(row)
        if ttl > 0:
            if len(_TOKEN_CACHE) >= _TOKEN_CACHE_MAX:
                _TOKEN_CACHE.clear()
            _TOKEN_CACHE[digest] = (row, time.monotonic() + ttl)
        return IntegrationPrincipal(row), row

    @staticmethod
    def _touch(row: IntegrationToken) -> None:
        """Record use at most once a minute, so reads do not each cost a write."""
        now = timezone.now()
        lag = timedelta(seconds=settings.KEYSTONE_API_TOKEN_TOUCH_SECONDS)
        if row.last_used_at is None or now - row.last_used_at > lag:
            IntegrationToken.objects.filter(pk=row.pk).update(last_used_at=now)
            row.last_used_at = now

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="keystone"'
