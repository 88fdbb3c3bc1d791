"""Whose address a request counts against (config/clients.py): the API's rate limit of
unauthenticated callers and the sign-in limit share the rule."""

import pytest
from rest_framework.test import APIRequestFactory

from api.throttling import PrincipalRateThrottle
from config.clients import client_address, parse_networks

factory = APIRequestFactory()


def ident(remote: str, forwarded: str | None = None) -> str:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    request = factory.get("/api/v1/events", REMOTE_ADDR=remote, **extra)
    return PrincipalRateThrottle().get_ident(request)


def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings):
    """DRF's default believed the header: each forged value was a new, empty counter."""
    settings.KEYSTONE_TRUSTED_PROXIES = ()

    assert {ident("198.51.100.7", f"192.0.2.{n}") for n in range(5)} == {"198.51.100.7"}


def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client(settings):
    settings.KEYSTONE_TRUSTED_PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"])

    assert ident("10.0.0.5", "198.51.100.7") == "198.51.100.7"
    assert ident("10.0.0.5", "192.0.2.1, 198.51.100.7, 10.1.1.1") == "198.51.100.7"
    assert ident("fd00::1", "2001:db8::7") == "2001:db8::7"
    # a peer that is not a proxy is the client whatever it writes
    assert ident("198.51.100.8", "192.0.2.1") == "198.51.100.8"
    # only proxies on the way, or no header: the peer
    assert ident("10.0.0.5", "10.2.2.2") == "10.0.0.5"
    assert ident("10.0.0.5") == "10.0.0.5"


def test_garbage_in_x_forwarded_for_is_an_address_of_its_own_not_an_error(settings):
    settings.KEYSTONE_TRUSTED_PROXIES = parse_networks(["10.0.0.0/8"])

    assert client_address({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "x, ,y"}) == "y"


def test_a_malformed_network_is_refused_by_name():
    with pytest.raises(ValueError, match="10.0.0.300"):
        parse_networks(["10.0.0.300/8"])
