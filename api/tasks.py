"""Celery tasks for webhooks: thin, idempotent, acks_late, on the webhook queue
(KEYSTONE_WEBHOOK_QUEUE). The delivery table decides what is due (see api/webhooks.py); a task
run twice finds nothing left to do, and a message that is never sent or lost only delays a
delivery until the `retry_due_deliveries` sweep."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api import webhooks
from api.models import DeliveryStatus, IdempotencyKey, WebhookDelivery

logger = logging.getLogger(__name__)


def enqueue_deliveries(delivery_ids, countdown: float = 0) -> None:
    for delivery_id in delivery_ids:
        deliver_webhook.apply_async(
            args=[delivery_id], queue=settings.KEYSTONE_WEBHOOK_QUEUE, countdown=countdown
        )


def nudge_deliveries() -> None:
    """After a commit that made deliveries due (replay, redeliver): ask for the sweep now.
    Best effort — the rows are the guarantee and beat sweeps them anyway — so a broker that
    is down does not turn a committed change into an error."""
    try:
        retry_due_deliveries.apply_async(queue=settings.KEYSTONE_WEBHOOK_QUEUE, retry=False)
    except Exception:
        if retry_due_deliveries.app.conf.task_always_eager:
            raise
        logger.warning("webhook sweep not sent (broker unreachable); beat runs it", exc_info=True)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def dispatch_events() -> dict:
    created = webhooks.dispatch_new_events()
    transaction.on_commit(lambda: enqueue_deliveries(created))
    return {"deliveries": len(created)}


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> str | None:
    """One attempt. A failure is sent again when its backoff is over; in eager mode (no
    broker, where a countdown would not wait) the next sweep or commit tries it instead."""
    status = webhooks.deliver(delivery_id)
    if status == DeliveryStatus.FAILED and not deliver_webhook.app.conf.task_always_eager:
        due = WebhookDelivery.objects.get(pk=delivery_id).next_attempt_at
        delay = max((due - timezone.now()).total_seconds(), 0)
        enqueue_deliveries([delivery_id], countdown=delay)
    return status


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def retry_due_deliveries() -> dict:
    """The sweep that makes the table the source of truth: anything due is (re)enqueued."""
    due = webhooks.due_deliveries()
    enqueue_deliveries(due)
    return {"enqueued": len(due)}


@shared_task(acks_late=True, ignore_result=True)
def purge_idempotency_keys() -> dict:
    cutoff = timezone.now() - timedelta(hours=settings.KEYSTONE_API_IDEMPOTENCY_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return {"deleted": deleted}
