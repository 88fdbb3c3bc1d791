"""Webhooks through a REAL Celery worker on Redis, killed mid-delivery (SIGKILL) and
restarted: the delivery table keeps the delivery pending, so nothing is lost.

Runs only on PostgreSQL with Redis: the worker is a separate process and must see the
test database (pytest-django's `test_<name>`) and the broker.
"""

import os
import signal

import pytest
from django.conf import settings

from api import webhooks
from api.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from api.tasks import enqueue_deliveries
from config.celery import app
from tests.api.conftest import ACME, load
from tests.api.receiver import Receiver
from tests.celery_worker import forget_queue, new_queue, start_worker, stop_worker, wait_for


def _redis_reachable() -> bool:
    if not settings.REDIS_URL:
        return False
    try:
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres(reason="the worker process needs the PostgreSQL test database"),
    pytest.mark.slow,
    pytest.mark.skipif(not _redis_reachable(), reason="needs REDIS_URL and a reachable Redis"),
]


def start(queue: str):
    """A solo worker on the test's queue (webhooks, and the match requests the test's ingest
    sends); a 1 s deadline, so a killed worker's claim lapses after 6 s."""
    return start_worker(
        [queue],
        redis_url=settings.REDIS_URL,
        env={
            "KEYSTONE_WEBHOOK_QUEUE": queue,
            "KEYSTONE_MATCH_QUEUE": queue,
            "KEYSTONE_WEBHOOK_TIMEOUT_SECONDS": "1",
        },
    )


@pytest.fixture
def real_broker(settings):
    queue = new_queue("keystone-test")
    settings.KEYSTONE_WEBHOOK_QUEUE = settings.KEYSTONE_MATCH_QUEUE = queue
    settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    app.conf.task_always_eager = False
    yield queue
    app.conf.task_always_eager = True
    stranded = forget_queue(settings.REDIS_URL, queue)
    assert stranded <= 1, f"{stranded} messages left in Redis"  # a killed worker's one


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_delivery_loses_nothing(real_broker):
    with Receiver(delay_first=4) as receiver:
        WebhookSubscription.objects.create(url=receiver.url, event_types=["golden.created"])
        load("crm", [{**ACME, "source_key": "1"}])
        worker = start(real_broker)
        try:
            enqueue_deliveries(webhooks.dispatch_new_events())
            assert receiver.arrived.wait(30), "the worker never called the receiver"
            os.killpg(worker.pid, signal.SIGKILL)  # mid-delivery: the receiver still answers
            worker.wait(10)
            delivery = WebhookDelivery.objects.get()
            assert delivery.status == DeliveryStatus.PENDING  # claimed, never finished

            worker = start(real_broker)

            def swept_and_delivered() -> bool:  # the periodic sweep's job
                enqueue_deliveries(webhooks.due_deliveries())
                return WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED

            assert wait_for(swept_and_delivered, timeout=30)
        finally:
            stop_worker(worker)

    event_ids = [r["headers"]["X-Keystone-Event-Id"] for r in receiver.requests]
    assert event_ids == [str(delivery.event_id)] * 2  # at least once, one ID to de-duplicate on
    assert WebhookDelivery.objects.get().attempts == 2  # the killed attempt counts


@pytest.mark.django_db(transaction=True)
def test_worker_delivers_a_webhook(real_broker):
    with Receiver() as receiver:
        WebhookSubscription.objects.create(url=receiver.url)
        load("crm", [{**ACME, "source_key": "1"}])
        worker = start(real_broker)
        try:
            enqueue_deliveries(webhooks.dispatch_new_events())
            assert wait_for(
                lambda: WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED
            )
        finally:
            stop_worker(worker)
    assert len(receiver.requests) == 1
