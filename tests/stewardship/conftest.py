"""Stewardship fixtures: the two roles, logged-in clients, and review candidates made
directly over ingested records (Splink is not the point of most UI tests)."""

import itertools

import pytest
from django.test import Client

from matching.models import MatchCandidate
from mdm.models import SourceRecord
from mdm.services.ingest import ingest_records
from stewardship.roles import setup_roles
from tests.matching.conftest import (  # noqa: F401 - shared fixtures
    febrl_sample,
    load_febrl,
    open_candidate,
)

PASSWORD = "pw-keystone-123"
_keys = itertools.count(1)


def explanation(left: dict, right: dict) -> dict:
    """A per-attribute explanation shaped like the matcher's."""
    explained = {}
    for name in ("name", "email", "city", "postal_code"):
        same = left.get(name) == right.get(name)
        explained[name] = {
            "level": "exact match" if same else "all other comparisons",
            "left": left.get(name),
            "right": right.get(name),
            "match_weight": 4.2 if same else -2.1,
        }
    return explained


def ingest(system: str, **row) -> SourceRecord:
    row.setdefault("source_key", f"{system}-{next(_keys)}")
    ingest_records(
        entity_type="customer",
        system_code=system,
        rows=[(1, row)],
        actor="test",
        create_system=True,
    )
    return SourceRecord.objects.select_related("golden").get(
        source_system__code=system, source_key=row["source_key"]
    )


def make_candidate(left: dict, right: dict, probability: float = 0.7) -> MatchCandidate:
    first, second = ingest("crm", **left), ingest("erp", **right)
    return open_candidate(
        first,
        second,
        probability=probability,
        explanation=explanation(first.attributes, second.attributes),
    )


@pytest.fixture
def roles(db):
    setup_roles()


def _account(django_user_model, username: str, group: str):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def steward_account(roles, django_user_model):
    return _account(django_user_model, "alice", "steward")


@pytest.fixture
def auditor_account(roles, django_user_model):
    return _account(django_user_model, "audrey", "auditor")


@pytest.fixture
def steward_client(steward_account):
    client = Client()
    client.force_login(steward_account)
    return client


@pytest.fixture
def auditor_client(auditor_account):
    client = Client()
    client.force_login(auditor_account)
    return client


@pytest.fixture
def acme_pair(db):
    return make_candidate(
        {"name": "Acme Corporation", "email": "info@acme.com", "city": "Berlin"},
        {"name": "ACME Corp", "email": "info@acme.com", "city": "Berlin"},
        probability=0.62,
    )


@pytest.fixture
def globex_pair(db):
    return make_candidate(
        {"name": "Globex Ltd", "email": "hello@globex.io", "city": "Paris"},
        {"name": "Globex Holdings", "email": "ir@globex-holdings.com", "city": "Lyon"},
        probability=0.55,
    )
