"""The events feed (ordered, gap-free) and webhooks against a real local HTTP receiver."""

import hashlib
import hmac
import json

import pytest
from django.test import override_settings
from django.utils import timezone

from api.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from api.tasks import dispatch_events, retry_due_deliveries
from tests.api.conftest import ACME, load
from tests.api.receiver import Receiver, free_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_targets")]


def test_feed_is_ordered_and_pages_with_after_and_limit(crm):
    load("crm", [{**ACME, "source_key": str(i), "name": f"Co {i}"} for i in range(5)])

    first = crm.get("/api/v1/events", {"limit": 3}).json()
    rest = crm.get("/api/v1/events", {"after": first["next_after"]}).json()

    ids = [e["id"] for e in first["results"] + rest["results"]]
    assert ids == sorted(ids) and len(ids) == 5
    assert first["results"][0]["type"] == "golden.created"
    assert first["results"][0]["golden_id"].startswith("CUS-")
    assert rest["next_after"] == rest["high_water_mark"] == ids[-1]


def test_feed_filters_by_type(crm):
    load("crm", [{**ACME, "source_key": "1"}])
    load("crm", [{**ACME, "source_key": "1", "name": "ACME Group"}])

    events = crm.get("/api/v1/events", {"type": "golden.updated"}).json()["results"]

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


def _due_now(delivery_id: int) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())


@override_settings(KEYSTONE_WEBHOOK_BACKOFF_SECONDS=30, KEYSTONE_WEBHOOK_MAX_ATTEMPTS=8)
def test_backoff_doubles_over_three_attempts(crm):
    from api.webhooks import deliver

    waits = []
    with Receiver(status=503) as receiver:
        subscribe(crm, receiver.url)
        load("crm", [{**ACME, "source_key": "1"}])
        dispatch_events.delay()
        delivery_id = WebhookDelivery.objects.get().pk
        for _ in range(3):
            _due_now(delivery_id)
            deliver(delivery_id)
            delivery = WebhookDelivery.objects.get(pk=delivery_id)
            waits.append((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds())

    assert len(receiver.requests) == 3
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
    assert [round(w) for w in waits] == [30, 60, 120]


def test_a_redirect_answer_is_a_failed_delivery_and_is_not_followed(crm):
    from api.webhooks import deliver

    with Receiver(status=302) as receiver:
        subscribe(crm, receiver.url)
        load("crm", [{**ACME, "source_key": "1"}])
        dispatch_events.delay()
        deliver(WebhookDelivery.objects.get().pk)

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_code) == (DeliveryStatus.FAILED, 302)
    assert len(receiver.requests) == 1


def test_delivered_body_and_headers_follow_the_webhooks_section_of_the_schema(crm):
    """What a subscriber receives validates against the schema's `webhooks` entry for the
    event type: the signature headers and the typed event body."""
    from openapi_core import OpenAPI
    from openapi_core.contrib.requests import RequestsOpenAPIWebhookRequest
    from requests import Request

    from api.webhooks import deliver
    from tests.api.contract import live_schema

    with Receiver() as receiver:
        subscribe(crm, receiver.url)
        load("crm", [{**ACME, "source_key": "1"}])
        dispatch_events.delay()
        deliver(WebhookDelivery.objects.get().pk)

    sent = receiver.requests[0]
    event_type = sent["headers"]["X-Keystone-Event-Type"]
    webhook = RequestsOpenAPIWebhookRequest(
        Request("POST", receiver.url, headers=sent["headers"], data=sent["body"]), event_type
    )
    OpenAPI.from_dict(live_schema()).validate_webhook_request(webhook)  # raises if not valid


def test_if_match_guards_subscription_updates(crm):
    created = subscribe(crm, "http://127.0.0.1:9/x")
    url = f"/api/v1/webhooks/subscriptions/{created['id']}"
    etag = crm.get(url)["ETag"]

    first = crm.patch(url, {"name": "one"}, format="json", HTTP_IF_MATCH=etag)
    second = crm.patch(url, {"name": "two"}, format="json", HTTP_IF_MATCH=etag)
    unconditional = crm.patch(url, {"name": "three"}, format="json")

    assert first.status_code == 200 and first["ETag"] != etag
    assert second.status_code == 412
    assert second.json()["error"]["code"] == "precondition_failed"
    assert unconditional.status_code == 200
    assert WebhookSubscription.objects.get().name == "three"


def test_feed_pages_with_cursor_to_the_end(crm):
    load("crm", [{**ACME, "source_key": str(i), "name": f"Co {i}"} for i in range(5)])

    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = crm.get("/api/v1/events", params)
        pages.append([e["id"] for e in page.json()["results"]])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            assert not page.has_header("Link")
            break
        assert page["Link"].endswith('rel="next"')

    assert [len(p) for p in pages] == [2, 2, 1]
    assert sum(pages, []) == sorted(sum(pages, []))


def test_a_replay_over_a_long_history_holds_a_bounded_number_of_rows_in_memory(crm):
    """Review 2026-12: replaying from 0 built one delivery object per event ever dispatched
    (millions on a long-lived hub) in one request's memory; it now works in chunks."""
    import tracemalloc

    from api.webhooks import replay
    from mdm.models import OutboxEvent

    events = 40_000
    OutboxEvent.objects.bulk_create(
        OutboxEvent(event_type="golden.updated", entity_type="customer", golden_id=f"CUS-{n}")
        for n in range(events)
    )
    subscription = WebhookSubscription.objects.create(
        url="https://hooks.example.com/x", last_event_id=OutboxEvent.objects.latest("id").id
    )

    tracemalloc.start()
    replayed = replay(subscription=subscription, after=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert replayed == WebhookDelivery.objects.filter(subscription=subscription).count() == events
    assert peak < 16 * 2**20
