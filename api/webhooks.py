"""Webhook services: dispatch outbox events to subscriptions, deliver them signed, retry with
exponential backoff, dead-letter, replay.

The `WebhookDelivery` table is the source of truth. A Celery message only says "look at
delivery N now"; losing one (a killed worker, a flushed broker) delays a delivery until the
next `retry_due_deliveries` sweep, it never loses it. Delivery is at least once: consumers
de-duplicate on the event ID (`X-Keystone-Event-Id`, also `id` in the body).

Signature: `X-Keystone-Signature: sha256=<hex>` where hex is HMAC-SHA256 with the
subscription's secret over `<X-Keystone-Timestamp>.<raw body>`; receivers recompute it and
reject old timestamps to stop replays by a third party.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from api.scopes import subscription_reads_sensitive
from api.selectors import event_high_water_mark
from mdm.models import OutboxEvent

DISPATCH_BATCH = 1000
USER_AGENT = "Keystone-Webhooks/1"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def event_body(event: OutboxEvent, *, sensitive: bool) -> bytes:
    """The event as the feed serves it (`EventSerializer`), the same bytes on every attempt
    (while the subscriber's scopes stay the same) so a consumer can de-duplicate on content
    too. Sensitive attributes only if `sensitive` (`api.scopes.subscription_reads_sensitive`)."""
    from api.serializers import EventSerializer

    return json.dumps(
        EventSerializer(event, context={"sensitive": sensitive}).data,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode()


def dispatch_new_events() -> list[int]:
    """Create a pending delivery per (active subscription, new matching event) up to the
    events high-water mark; returns the new delivery IDs. Safe to run concurrently and twice:
    each subscription's cursor is advanced under its row lock, deliveries are unique."""
    mark = event_high_water_mark()
    created: list[int] = []
    for subscription_id in WebhookSubscription.objects.filter(active=True).values_list(
        "id", flat=True
    ):
        with transaction.atomic():
            subscription = (
                WebhookSubscription.objects.select_for_update(skip_locked=True)
                .filter(pk=subscription_id, active=True)
                .first()
            )
            if subscription is None or subscription.last_event_id >= mark:
                continue
            events = OutboxEvent.objects.filter(
                id__gt=subscription.last_event_id, id__lte=mark
            ).order_by("id")
            if subscription.event_types:
                events = events.filter(event_type__in=subscription.event_types)
            event_ids = list(events.values_list("id", flat=True)[:DISPATCH_BATCH])
            WebhookDelivery.objects.bulk_create(
                [WebhookDelivery(subscription=subscription, event_id=i) for i in event_ids],
                ignore_conflicts=True,
            )
            reached = event_ids[-1] if len(event_ids) == DISPATCH_BATCH else mark
            WebhookSubscription.objects.filter(pk=subscription.pk).update(last_event_id=reached)
            created += WebhookDelivery.objects.filter(
                subscription=subscription, event_id__in=event_ids, status=DeliveryStatus.PENDING
            ).values_list("id", flat=True)
    return created


def backoff(attempts: int) -> timedelta:
    base = settings.KEYSTONE_WEBHOOK_BACKOFF_SECONDS
    seconds = min(base * 2 ** max(attempts - 1, 0), settings.KEYSTONE_WEBHOOK_BACKOFF_MAX_SECONDS)
    return timedelta(seconds=seconds)


def deliver(delivery_id: int) -> str | None:
    """Attempt one delivery if it is due; returns its new status, or None if there was
    nothing to do (already delivered, dead, not yet due, or being sent by someone else).

    The row stays locked during the HTTP call, so two workers never send the same delivery
    at once; if the worker dies mid-call, the lock goes with its connection and the row is
    still pending.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription", "event")
            .filter(pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
            .first()
        )
        if delivery is None or delivery.next_attempt_at > timezone.now():
            return None
        subscription = delivery.subscription
        body = event_body(
            delivery.event, sensitive=subscription_reads_sensitive(delivery.subscription)
        )
        timestamp = str(int(time.time()))
        delivery.attempts += 1
        delivery.last_attempt_at = timezone.now()
        try:
            response = requests.post(
                subscription.url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    "X-Keystone-Event-Id": str(delivery.event_id),
                    "X-Keystone-Event-Type": delivery.event.event_type,
                    "X-Keystone-Delivery-Attempt": str(delivery.attempts),
                    "X-Keystone-Timestamp": timestamp,
                    "X-Keystone-Signature": sign(subscription.secret, timestamp, body),
                },
                timeout=settings.KEYSTONE_WEBHOOK_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            delivery.response_code = None
            delivery.last_error = f"{type(error).__name__}: {error}"[:2000]
        else:
            delivery.response_code = response.status_code
            delivery.last_error = "" if response.ok else response.text[:2000]
            if 200 <= response.status_code < 300:
                delivery.status = DeliveryStatus.DELIVERED
                delivery.delivered_at = timezone.now()
        if delivery.status != DeliveryStatus.DELIVERED:
            if delivery.attempts >= settings.KEYSTONE_WEBHOOK_MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.DEAD
            else:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = timezone.now() + backoff(delivery.attempts)
        delivery.save()
        return delivery.status


def due_deliveries(limit: int = 1000) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED],
            next_attempt_at__lte=timezone.now(),
        )
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def replay(*, subscription: WebhookSubscription, after: int) -> int:
    """Send again every matching event with a sequence number above `after`, delivered or
    dead-lettered alike: existing deliveries go back to pending with a fresh attempt count;
    events never dispatched to this subscription are left to the dispatcher."""
    with transaction.atomic():
        count = WebhookDelivery.objects.filter(
            subscription=subscription, event_id__gt=after
        ).update(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            last_error="",
            response_code=None,
            delivered_at=None,
        )
        events = OutboxEvent.objects.filter(
            id__gt=after, id__lte=subscription.last_event_id
        ).exclude(id__in=WebhookDelivery.objects.filter(subscription=subscription).values("event"))
        if subscription.event_types:
            events = events.filter(event_type__in=subscription.event_types)
        missing = [
            WebhookDelivery(subscription=subscription, event_id=event_id)
            for event_id in events.values_list("id", flat=True)
        ]
        WebhookDelivery.objects.bulk_create(missing, ignore_conflicts=True)
    return count + len(missing)
