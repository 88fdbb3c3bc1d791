"""The events feed (ordered, gap-free) and webhooks against a real local HTTP receiver."""

import hashlib
import hmac
import json

import pytest
from django.test import override_settings

from api.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from api.tasks import dispatch_events, retry_due_deliveries
from tests.api.conftest import ACME, load
from tests.api.receiver import Receiver, free_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_targets")]


def test_feed_is_ordered_and_pages_with_after_and_limit(crm):
    load("crm", [{**ACME, "source_key": str(i), "name": f"Co {i}"} for i in range(5)])

    first = crm.get("/api/v1/events", {"limit": 3}).json()
    rest = crm.get("/api/v1/events", {"after": first["next_after"]}).json()

    ids = [e["id"] for e in first["events"] + rest["events"]]
    assert ids == sorted(ids) and len(ids) == 5
    assert first["events"][0]["type"] == "golden.created"
    assert first["events"][0]["golden_id"].startswith("CUS-")
    assert rest["next_after"] == rest["high_water_mark"] == ids[-1]


def test_feed_filters_by_type(crm):
    load("crm", [{**ACME, "source_key": "1"}])
    load("crm", [{**ACME, "source_key": "1", "name": "ACME Group"}])

    events = crm.get("/api/v1/events", {"type": "golden.updated"}).json()["events"]

    assert [e["type"] for e in events] == ["golden.updated"]


def test_feed_rejects_a_bad_limit(crm):
    assert crm.get("/api/v1/events", {"limit": 0}).status_code == 422


def verify(secret: str, request: dict) -> bool:
    headers = request["headers"]
    signed = headers["X-Keystone-Timestamp"].encode() + b"." + request["body"]
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Keystone-Signature"])


def subscribe(client, url: str, **extra) -> dict:
    response = client.post(
        "/api/v1/webhooks/subscriptions",
        {"url": url, "event_types": ["golden.created"], **extra},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_webhook_is_delivered_signed_with_the_event_id(crm, django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        subscription = subscribe(crm, receiver.url)
        load("crm", [{**ACME, "source_key": "1"}])

        with django_capture_on_commit_callbacks(execute=True):
            dispatch_events.delay()

        (request,) = receiver.requests
        event = json.loads(request["body"])
        assert verify(subscription["signing_secret"], request)
        assert event["type"] == "golden.created"
        assert request["headers"]["X-Keystone-Event-Id"] == str(event["id"])
        assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_dispatch_twice_delivers_once(crm, django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        subscribe(crm, receiver.url)
        load("crm", [{**ACME, "source_key": "1"}])

        with django_capture_on_commit_callbacks(execute=True):
            dispatch_events.delay()
            dispatch_events.delay()
            retry_due_deliveries.delay()

        assert len(receiver.requests) == 1


@override_settings(KEYSTONE_WEBHOOK_MAX_ATTEMPTS=3, KEYSTONE_WEBHOOK_BACKOFF_SECONDS=0)
def test_receiver_down_retries_then_dead_letters_and_replay_delivers(
    crm, django_capture_on_commit_callbacks
):
    port = free_port()  # nothing listens here yet
    subscription = subscribe(crm, f"http://127.0.0.1:{port}/hook")
    load("crm", [{**ACME, "source_key": "1"}])

    with django_capture_on_commit_callbacks(execute=True):
        dispatch_events.delay()
    for _ in range(3):  # what beat does: the sweep sends what is due again (no backoff here)
        retry_due_deliveries.delay()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DEAD, 3)
    assert delivery.last_error == "connect_failed"
    deliveries = crm.get(
        f"/api/v1/webhooks/subscriptions/{subscription['id']}/deliveries", {"status": "dead"}
    ).json()["results"]
    assert [d["id"] for d in deliveries] == [delivery.pk]

    with Receiver(port) as receiver, django_capture_on_commit_callbacks(execute=True):
        replayed = crm.post(
            f"/api/v1/webhooks/subscriptions/{subscription['id']}/replay",
            {"after": 0},
            format="json",
        )

    assert replayed.json() == {"replayed": 1}
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)


def test_receiver_error_is_retried_with_exponential_backoff(crm):
    with Receiver(status=500) as receiver:
        subscribe(crm, receiver.url)
        load("crm", [{**ACME, "source_key": "1"}])
        dispatch_events.delay()
        from api.webhooks import deliver

        deliver(WebhookDelivery.objects.get().pk)

    delivery = WebhookDelivery.objects.get()
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert (delivery.status, delivery.response_code, delivery.attempts) == ("failed", 500, 1)
    assert 25 < wait < 35  # base 30 s, doubling per attempt


def test_integration_sees_only_its_own_subscriptions(crm, erp):
    mine = subscribe(crm, "http://127.0.0.1:9/crm")
    subscribe(erp, "http://127.0.0.1:9/erp")

    listed = crm.get("/api/v1/webhooks/subscriptions").json()["results"]

    assert [s["id"] for s in listed] == [mine["id"]]
    assert erp.get(f"/api/v1/webhooks/subscriptions/{mine['id']}").status_code == 404
    assert WebhookSubscription.objects.get(pk=mine["id"]).owner.code == "crm"


def test_subscription_secret_is_never_shown_after_creation(crm):
    created = subscribe(crm, "http://127.0.0.1:9/x")

    shown = crm.get(f"/api/v1/webhooks/subscriptions/{created['id']}").json()

    assert created["signing_secret"]
    assert "secret" not in shown and "signing_secret" not in shown


def test_subscription_with_an_unknown_event_type_is_422(crm):
    response = crm.post(
        "/api/v1/webhooks/subscriptions",
        {"url": "http://127.0.0.1:9/x", "event_types": ["golden.exploded"]},
        format="json",
    )

    assert response.status_code == 422
    assert "event_types[0]" in response.json()["error"]["fields"]


def test_auditor_cannot_create_subscriptions(auditor_api):
    response = auditor_api.post(
        "/api/v1/webhooks/subscriptions", {"url": "http://127.0.0.1:9/x"}, format="json"
    )

    assert response.status_code == 403
