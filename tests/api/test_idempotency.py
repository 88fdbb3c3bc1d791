"""Idempotency-Key: claimed before the request runs (insert first), so one key never runs two
requests; honoured on every POST that creates something."""

import contextlib
import threading

import pytest
from django.db import connection, connections

from api import views
from api.models import IdempotencyKey, WebhookSubscription
from mdm.models import SourceRecord
from tests.api.conftest import ACME, bearer

pytestmark = pytest.mark.django_db

URL = "/api/v1/sources/crm/customer"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_and_different_bodies_never_both_run(
    crm_token, monkeypatch
):
    """Both requests start together; whichever claims the key first runs, and it waits inside
    ingest (up to 1.5 s) for the other to arrive there too. A check-then-store key lets both
    in; a claimed key keeps the second out (409 while the first runs)."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent requests need PostgreSQL")
    inside = threading.Barrier(2, timeout=1.5)
    ingest = views.ingest_records

    def ingest_when_both_are_inside(**kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):  # the other never got here
            inside.wait()
        return ingest(**kwargs)

    monkeypatch.setattr(views, "ingest_records", ingest_when_both_are_inside)
    start = threading.Barrier(2)
    answers = {}

    def put(name: str) -> None:
        start.wait()
        answers[name] = bearer(crm_token).put(
            f"{URL}/1", {**ACME, "name": name}, format="json", HTTP_IDEMPOTENCY_KEY="same-key"
        )
        connections.close_all()

    threads = [threading.Thread(target=put, args=(name,)) for name in ("First Co", "Second Co")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    statuses = sorted(response.status_code for response in answers.values())
    assert statuses == [201, 409]
    refused = next(r for r in answers.values() if r.status_code == 409)
    assert refused.json()["error"]["code"] in {"idempotency_key_in_use", "idempotency_key_reused"}
    winner = next(name for name, r in answers.items() if r.status_code == 201)
    assert SourceRecord.objects.get(source_key="1").raw["name"] == winner
    assert IdempotencyKey.objects.get(key="same-key").status_code == 201


def test_a_failed_request_gives_its_key_back(crm, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(views, "ingest_records", broken)
    failed = crm.put(f"{URL}/1", ACME, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    monkeypatch.undo()

    retried = crm.put(f"{URL}/1", ACME, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert failed.status_code == 500
    assert retried.status_code == 201
    assert not retried.has_header("Idempotent-Replayed")


@pytest.mark.usefixtures("private_targets")
def test_subscription_create_with_one_key_creates_one_subscription(crm):
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["golden.merged"]}

    first = crm.post(
        "/api/v1/webhooks/subscriptions", body, format="json", HTTP_IDEMPOTENCY_KEY="s-1"
    )
    second = crm.post(
        "/api/v1/webhooks/subscriptions", body, format="json", HTTP_IDEMPOTENCY_KEY="s-1"
    )

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert second["Location"] == first["Location"]
    assert WebhookSubscription.objects.count() == 1


def test_batch_with_one_key_loads_once(crm):
    rows = [{**ACME, "source_key": "1"}, {**ACME, "source_key": "2", "name": "Globex"}]

    first = crm.post(f"{URL}/batch", rows, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    second = crm.post(f"{URL}/batch", rows, format="json", HTTP_IDEMPOTENCY_KEY="b-1")

    assert first.json()["counts"]["loaded"] == 2
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"


@pytest.mark.usefixtures("private_targets")
def test_replay_with_one_key_is_answered_once(crm):
    subscription = crm.post(
        "/api/v1/webhooks/subscriptions", {"url": "http://127.0.0.1:9/hook"}, format="json"
    ).json()
    url = f"/api/v1/webhooks/subscriptions/{subscription['id']}/replay"

    first = crm.post(url, {"after": 0}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    other = crm.post(url, {"after": 5}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")

    assert first.status_code == 200
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
