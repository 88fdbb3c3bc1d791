"""The address of the client behind a request: one rule for the sign-in limit and the API's
rate limit of unauthenticated callers.

The direct peer (REMOTE_ADDR) is the client unless it is one of KEYSTONE_TRUSTED_PROXIES: then
the client is the rightmost X-Forwarded-For entry that is not itself a trusted proxy — the
address the outermost trusted proxy saw. Entries left of it were written by whoever sent the
request and are never believed: a guesser who writes his own header gains nothing. Without
trusted proxies the header is ignored altogether.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs ("10.0.0.0/8", "::1") as networks; ValueError names a malformed one."""
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(meta: Any) -> str:
    """The client's address from a request's META (see the module docstring)."""
    peer = str(meta.get("REMOTE_ADDR", "") or "")
    proxies: tuple[Network, ...] = settings.KEYSTONE_TRUSTED_PROXIES
    if not proxies or not _trusted(peer, proxies):
        return peer
    forwarded = [hop.strip() for hop in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    for hop in reversed([hop for hop in forwarded if hop]):
        if not _trusted(hop, proxies):
            return hop
    return peer  # only proxies on the way: the request started at one of them
