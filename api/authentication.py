"""Bearer-token authentication for integrations, and revoking tokens.

An authenticated integration is an `IntegrationPrincipal` (not a Django user): it has no
password, no session and no admin access; `request.auth` is its `IntegrationToken`.

A process remembers the tokens it has verified, so a lookup costs no token query; revoking a
token (or changing its scopes) must still take effect at once in every process. So every
process reads a shared *tokens version* on each request, and trusts a remembered token only
while the version it was verified under is still current; every change to a token replaces
the version (`tokens_changed`, on commit). The version lives in the shared cache (Redis) when
REDIS_URL is set — every process on every machine — and otherwise in a file under var/
(KEYSTONE_TOKENS_VERSION_FILE: its inode and modification time, one stat per request), which
every process on the machine shares. If it cannot be read, nothing is remembered: each
request then looks its token up in the database.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from rest_framework import authentication, exceptions

from api.models import IntegrationToken, hash_token

logger = logging.getLogger("api")

TOKENS_VERSION_KEY = "keystone-tokens-version"


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


# token digest -> (token row, tokens version it was verified under, monotonic expiry)
_TOKEN_CACHE: dict[str, tuple[IntegrationToken, str, float]] = {}
_TOKEN_CACHE_MAX = 10_000


def revoke_tokens(tokens: QuerySet[IntegrationToken]) -> int:
    """Revoke `tokens` (those not yet revoked); effective in every process once committed.
    Returns how many were revoked."""
    count = tokens.filter(revoked=False).update(revoked=True, revoked_at=timezone.now())
    tokens_changed()
    return count


def tokens_changed() -> None:
    """Make every process forget the tokens it has verified, after the current transaction
    commits (at once outside one). Called for every token change: revocation, scopes."""
    transaction.on_commit(_new_tokens_version)


@receiver(post_save, sender=IntegrationToken)
@receiver(post_delete, sender=IntegrationToken)
def _token_saved(sender, instance, created=False, **kwargs) -> None:
    if not created:  # a new token is in no process's memory yet
        tokens_changed()


def _new_tokens_version() -> None:
    try:
        if settings.KEYSTONE_TOKENS_VERSION_FILE is None:
            cache.set(TOKENS_VERSION_KEY, secrets.token_hex(8), timeout=None)
        else:
            _write_version_file(settings.KEYSTONE_TOKENS_VERSION_FILE)
    except Exception:  # noqa: BLE001 - nowhere to publish: processes look tokens up meanwhile
        logger.exception("could not publish a token change")
    _TOKEN_CACHE.clear()


def tokens_version() -> str | None:
    """The current tokens version; None when it cannot be read."""
    path = settings.KEYSTONE_TOKENS_VERSION_FILE
    try:
        if path is not None:
            return _file_version(path)
        version = cache.get(TOKENS_VERSION_KEY)
        if version is None:  # first use, or evicted: any new value invalidates what was kept
            cache.add(TOKENS_VERSION_KEY, secrets.token_hex(8), timeout=None)
            version = cache.get(TOKENS_VERSION_KEY)
    except Exception:  # noqa: BLE001 - an outage of the shared state must not fail requests
        _warn_cache_down()
        _TOKEN_CACHE.clear()  # a change published meanwhile may be lost: verify afresh
        return None
    return version


def _file_version(path) -> str:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        _write_version_file(path)
        status = os.stat(path)
    return f"{status.st_ino}:{status.st_mtime_ns}"


def _write_version_file(path) -> None:
    """Replace the file (a new inode, a new modification time): a new version."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tokens-version-")
    with os.fdopen(handle, "w") as file:
        file.write(secrets.token_hex(8))
    os.replace(temporary, path)


_warned_at = 0.0


def _warn_cache_down() -> None:
    global _warned_at
    if time.monotonic() - _warned_at > 60:
        _warned_at = time.monotonic()
        logger.warning("tokens version unreadable: tokens are looked up on every request")


class IntegrationTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`; the token is looked up by its SHA-256.

    A verified token is remembered in-process for up to KEYSTONE_API_TOKEN_CACHE_SECONDS while
    the tokens version is unchanged (see the module docstring), so a revocation is effective
    at once everywhere and a lookup costs one cache read instead of a query. 0 disables it.
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
        version = tokens_version() if ttl > 0 else None
        cached = _TOKEN_CACHE.get(digest)
        if cached is not None and cached[1] == version and cached[2] > time.monotonic():
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
        if version is not None:
            if len(_TOKEN_CACHE) >= _TOKEN_CACHE_MAX:
                _TOKEN_CACHE.clear()
            _TOKEN_CACHE[digest] = (row, version, time.monotonic() + ttl)
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
