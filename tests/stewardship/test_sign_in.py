"""Signing in: password guessing against a person's account is cut off (Review 2026-12: the
admin's login let anyone try passwords without limit)."""

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tests.stewardship.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.KEYSTONE_LOGIN_MAX_FAILURES = 3
    cache.clear()
    yield
    cache.clear()


def sign_in(client: Client, password: str, address: str = "198.51.100.7") -> bool:
    client.post(LOGIN, {"username": "alice", "password": password}, REMOTE_ADDR=address)
    return "_auth_user_id" in client.session


def test_after_the_limit_even_the_right_password_is_refused(steward_account):
    guesses = [sign_in(Client(), f"guess-{n}") for n in range(3)]

    assert guesses == [False, False, False]
    assert not sign_in(Client(), PASSWORD)
    assert sign_in(Client(), PASSWORD, address="203.0.113.9")  # not from everywhere


def test_below_the_limit_the_right_password_signs_in_and_clears_the_count(steward_account):
    sign_in(Client(), "guess-1")
    sign_in(Client(), "guess-2")

    assert sign_in(Client(), PASSWORD)
    assert not sign_in(Client(), "guess-3")
    assert not sign_in(Client(), "guess-4")
    assert sign_in(Client(), PASSWORD)
