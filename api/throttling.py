"""Per-principal throttling: one fixed-window counter per token (or user) in the shared
cache (Redis in production: the limit holds across every process; see CACHES in settings),
and the IETF RateLimit header fields that tell a client where it stands.

DRF's SimpleRateThrottle keeps every request's timestamp in a list, which is costly at high
rates; a counter per window is O(1) and good enough for protecting the service. A cache
outage lets requests through (logged) rather than failing them; "off" throttles nothing.

Every answer the throttle saw carries `RateLimit-Policy: "default";q=<limit>;w=<window
seconds>` and `RateLimit: "default";r=<remaining>;t=<seconds to the window's end>`
(draft-ietf-httpapi-ratelimit-headers); a 429 also `Retry-After`.
"""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from config.clients import client_address

logger = logging.getLogger("api")

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
OFF = "off"


@lru_cache(maxsize=16)
def parse_rate(rate: str) -> tuple[int, int] | None:
    """(requests, seconds) for "600/min"; None for "off"."""
    if rate.strip().lower() == OFF:
        return None
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0].lower()]


class PrincipalRateThrottle(BaseThrottle):
    """`settings.KEYSTONE_API_THROTTLE_RATE` requests per token, user or (unauthenticated) IP."""

    def allow_request(self, request, view) -> bool:
        rate = parse_rate(settings.KEYSTONE_API_THROTTLE_RATE)
        if rate is None:
            return True
        limit, period = rate
        if request.auth is not None and hasattr(request.auth, "prefix"):
            ident = f"token:{request.auth.pk}:{request.auth.prefix}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        now = time.time()
        window = int(now // period)
        key = f"keystone-throttle:{ident}:{period}:{window}"
        try:
            count = self._count(key, timeout=period + 1)
        except Exception:  # noqa: BLE001 - a cache outage must not fail requests
            logger.warning("shared cache unreachable: request not throttled", exc_info=True)
            return True
        self._wait = (window + 1) * period - now
        request._keystone_rate = (limit, period, max(limit - count, 0), self._wait)
        return count <= limit

    @staticmethod
    def _count(key: str, *, timeout: int) -> int:
        """Increment the window's counter: one cache operation once the window has one."""
        try:
            return cache.incr(key)
        except ValueError:  # first request of the window (or the counter just expired)
            if cache.add(key, 1, timeout=timeout):
                return 1
            return cache.incr(key)  # another process started the window first

    def get_ident(self, request) -> str:
        """The caller's address by the one rule of `config.clients` (DRF's own believes any
        X-Forwarded-For unless NUM_PROXIES is set: a caller could pick a new counter per
        request)."""
        return client_address(request.META)

    def wait(self) -> float:
        return self._wait


def rate_limit_headers(request: Request) -> list[tuple[str, str]]:
    """The RateLimit fields for an answer to `request` (none if the throttle did not run)."""
    seen = getattr(request, "_keystone_rate", None)
    if seen is None:
        return []
    limit, period, remaining, wait = seen
    return [
        ("RateLimit-Policy", _policy(limit, period)),
        ("RateLimit", f'"default";r={remaining};t={math.ceil(wait)}'),
    ]


@lru_cache(maxsize=16)
def _policy(limit: int, period: int) -> str:
    return f'"default";q={limit};w={period}'
