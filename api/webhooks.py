"""Webhook services: dispatch outbox events to subscriptions, deliver them signed, retry with
exponential backoff, dead-letter, replay.

The `WebhookDelivery` table is the source of truth. A Celery message only says "look at
delivery N now"; losing one (a killed worker, a flushed broker) delays a delivery until the
next `retry_due_deliveries` sweep, it never loses it. Delivery is at least once: consumers
de-duplicate on the event ID (`X-Keystone-Event-Id`, also `id` in the body).

Every delivery carries `X-Correlation-ID`: the correlation ID of the request, file load or
task that caused the event (the event's `correlation_id`), and its log lines carry it too.

Signature: `X-Keystone-Signature: sha256=<hex>` where hex is HMAC-SHA256 with the
subscription's secret over `<X-Keystone-Timestamp>.<raw body>`; receivers recompute it and
reject old timestamps to stop replays by a third party.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from api import outbound
from api.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from api.scopes import subscription_reads_sensitive
from api.selectors import event_high_water_mark
from mdm import metrics
from mdm.context import audit_context
from mdm.models import OutboxEvent, SourceSystem

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 1000
USER_AGENT = "Keystone-Webhooks/1"


def claim_seconds(timeout: float) -> float:
    """How long a claim keeps a delivery from other workers: the call's deadline and as much
    again (at least 5 s) for the writes around it. A worker that dies mid-call leaves the
    delivery due again after this."""
    return timeout + max(timeout, 5.0)


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


def starting_cursor(*, from_event: int | None = None) -> int:
    """A new subscription's dispatch cursor: from now (every event that can no longer appear
    below the high-water mark was committed before it), or just before `from_event`."""
    return max(from_event - 1, 0) if from_event is not None else event_high_water_mark()


def create_subscription(
    *,
    url: str,
    owner: SourceSystem | None,
    event_types: Sequence[str] = (),
    name: str = "",
    active: bool = True,
    secret: str | None = None,
    from_event: int | None = None,
) -> WebhookSubscription:
    """A new subscription (its URL already checked by the model field's validator). It starts
    from now — events committed before it are not sent — unless `from_event` names the first
    event sequence number to send (1: everything kept)."""
    subscription = WebhookSubscription(
        url=url,
        owner=owner,
        event_types=list(event_types),
        name=name,
        active=active,
        last_event_id=starting_cursor(from_event=from_event),
    )
    if secret:
        subscription.secret = secret
    subscription.save()
    return subscription


def dispatch_new_events() -> list[int]:
    """Create a pending delivery per (active subscription, new matching event) up to the
    events high-water mark; returns the new delivery IDs. Safe to run concurrently and twice:
    each subscription's cursor is advanced under its row lock, deliveries are unique."""
    subscription_ids = list(
        WebhookSubscription.objects.filter(active=True).values_list("id", flat=True)
    )
    if not subscription_ids:
        return []
    mark = event_high_water_mark()
    created: list[int] = []
    for subscription_id in subscription_ids:
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

    Claim, commit, then send: the claim is one conditional UPDATE (due and not delivered →
    attempt counted, next attempt pushed past this call's deadline), committed before the
    HTTP call, so no transaction or row lock is held while a receiver answers. Another worker
    cannot claim it meanwhile; a worker that dies mid-call leaves it due again when that time
    comes (at least once). The target is checked again and the call goes to the checked
    address; only the status code and an error class are stored, never the response body.
    """
    timeout = settings.KEYSTONE_WEBHOOK_TIMEOUT_SECONDS
    now = timezone.now()
    with transaction.atomic(durable=True):
        claimed = WebhookDelivery.objects.filter(
            pk=delivery_id,
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED],
            next_attempt_at__lte=now,
        ).update(
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            next_attempt_at=now + timedelta(seconds=claim_seconds(timeout)),
        )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("subscription", "event").get(pk=delivery_id)
    with audit_context(correlation=delivery.event.correlation_id or None):
        status = _attempt(delivery)
    metrics.record_delivery(outcome=status)
    return status


def _attempt(delivery: WebhookDelivery) -> str:
    """Send the claimed `delivery` and store how it went; its new status."""
    response_code, error = _send(delivery)
    if response_code is not None and 200 <= response_code < 300:
        status, next_attempt_at, error = DeliveryStatus.DELIVERED, delivery.next_attempt_at, ""
    elif delivery.attempts >= settings.KEYSTONE_WEBHOOK_MAX_ATTEMPTS:
        status, next_attempt_at = DeliveryStatus.DEAD, delivery.next_attempt_at
    else:
        status, next_attempt_at = DeliveryStatus.FAILED, timezone.now() + backoff(delivery.attempts)
    with transaction.atomic(durable=True):
        WebhookDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).update(
            status=status,
            response_code=response_code,
            last_error=error,
            next_attempt_at=next_attempt_at,
            delivered_at=timezone.now() if status == DeliveryStatus.DELIVERED else None,
        )
    logger.info(
        "webhook delivery %s (event #%s to subscription %s, attempt %s): %s%s",
        delivery.pk,
        delivery.event_id,
        delivery.subscription_id,
        delivery.attempts,
        status,
        f" ({error})" if error else "",
    )
    return status


def _send(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST the delivery's event to its subscription: (status code or None, error class)."""
    subscription = delivery.subscription
    body = event_body(delivery.event, sensitive=subscription_reads_sensitive(subscription))
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Keystone-Event-Id": str(delivery.event_id),
        "X-Keystone-Event-Type": delivery.event.event_type,
        "X-Keystone-Delivery-Attempt": str(delivery.attempts),
        "X-Keystone-Timestamp": timestamp,
        "X-Keystone-Signature": sign(subscription.secret, timestamp, body),
    }
    if delivery.event.correlation_id:
        headers["X-Correlation-ID"] = delivery.event.correlation_id
    try:
        target = outbound.webhook_target(subscription.url)
    except outbound.TargetRefused:
        return None, outbound.REFUSED_TARGET
    try:
        code = outbound.post(
            target,
            body,
            headers,
            deadline_seconds=settings.KEYSTONE_WEBHOOK_TIMEOUT_SECONDS,
            max_response_bytes=settings.KEYSTONE_WEBHOOK_MAX_RESPONSE_BYTES,
        )
    except outbound.CallFailed as failed:
        return None, failed.error_class
    return code, "" if 200 <= code < 300 else outbound.HTTP_STATUS


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


def replay_dead_letters(*, subscription: WebhookSubscription) -> int:
    """Send again the subscription's dead-lettered deliveries (after its receiver was fixed):
    back to pending with a fresh attempt count, due now. Returns how many."""
    return WebhookDelivery.objects.filter(
        subscription=subscription, status=DeliveryStatus.DEAD
    ).update(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        last_error="",
        response_code=None,
    )
