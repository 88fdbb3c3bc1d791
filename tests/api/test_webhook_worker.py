"""Webhooks through a REAL Celery worker on Redis, killed mid-delivery (SIGKILL) and
restarted: the delivery table keeps the delivery pending, so nothing is lost.

Runs only on PostgreSQL with Redis: the worker is a separate process and must see the
test database (pytest-django's `test_<name>`) and the broker.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from api import webhooks
from api.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from api.tasks import enqueue_deliveries
from config.celery import app
from tests.api.conftest import ACME, load
from tests.api.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]


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


def start_worker(queue: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "KEYSTONE_WEBHOOK_QUEUE": queue,
        "CELERY_EAGER": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", queue]
        + ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def real_broker(settings):
    settings.KEYSTONE_WEBHOOK_QUEUE = f"keystone-test-{uuid.uuid4().hex[:8]}"
    app.conf.task_always_eager = False
    yield settings.KEYSTONE_WEBHOOK_QUEUE
    app.conf.task_always_eager = True


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_delivery_loses_nothing(real_broker):
    with Receiver(delay_first=4) as receiver:
        WebhookSubscription.objects.create(url=receiver.url, event_types=["golden.created"])
        load("crm", [{**ACME, "source_key": "1"}])
        worker = start_worker(real_broker)
        try:
            enqueue_deliveries(webhooks.dispatch_new_events())
            assert receiver.arrived.wait(30), "the worker never called the receiver"
            worker.send_signal(signal.SIGKILL)  # mid-delivery: the receiver is still answering
            worker.wait(10)
            delivery = WebhookDelivery.objects.get()
            assert delivery.status == DeliveryStatus.PENDING  # its transaction died with it

            worker = start_worker(real_broker)
            enqueue_deliveries(webhooks.due_deliveries())  # the periodic sweep's job
            assert wait_for(
                lambda: WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED
            )
        finally:
            worker.kill()
            worker.wait(10)

    event_ids = {r["headers"]["X-Keystone-Event-Id"] for r in receiver.requests}
    assert event_ids == {str(delivery.event_id)}  # at least once, same event ID to de-duplicate
    assert WebhookDelivery.objects.get().attempts == 1


@pytest.mark.django_db(transaction=True)
def test_worker_delivers_a_webhook(real_broker):
    with Receiver() as receiver:
        WebhookSubscription.objects.create(url=receiver.url)
        load("crm", [{**ACME, "source_key": "1"}])
        worker = start_worker(real_broker)
        try:
            enqueue_deliveries(webhooks.dispatch_new_events())
            assert wait_for(
                lambda: WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED
            )
        finally:
            worker.kill()
            worker.wait(10)
    assert len(receiver.requests) == 1
