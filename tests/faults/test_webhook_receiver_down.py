"""A webhook receiver that is down: a real worker retries each delivery with backoff, then
dead-letters it; once the receiver is back, a replay delivers every event — none lost, none
twice (delivery is at least once; here nothing needed a second send)."""

import pytest

from api.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from api.tasks import dispatch_events, retry_due_deliveries
from api.webhooks import replay, starting_cursor
from mdm.models import OutboxEvent
from tests.api.conftest import load
from tests.api.receiver import Receiver, free_port
from tests.celery_worker import new_queue, start_worker, stop_worker, wait_for
from tests.faults import FAULT_SUITE_NEEDS

pytestmark = [pytest.mark.postgres(reason=FAULT_SUITE_NEEDS), pytest.mark.redis, pytest.mark.slow]

ATTEMPTS = 3


def statuses() -> set[str]:
    return set(WebhookDelivery.objects.values_list("status", flat=True))


@pytest.mark.django_db(transaction=True)
def test_receiver_down_retries_dead_letters_and_replay_delivers_each_event_once(own_broker, proved):
    port = free_port()  # nothing listens there yet
    subscription = WebhookSubscription.objects.create(
        url=f"http://127.0.0.1:{port}/hook", last_event_id=starting_cursor()
    )
    load(
        "crm", [{"source_key": str(i), "kind": "organization", "name": f"Co {i}"} for i in range(5)]
    )
    events = set(OutboxEvent.objects.values_list("id", flat=True))
    queue = new_queue("fault-webhooks")
    worker = start_worker(
        [queue],
        redis_url=own_broker.url,
        env={
            "KEYSTONE_WEBHOOK_QUEUE": queue,
            "KEYSTONE_WEBHOOK_MAX_ATTEMPTS": str(ATTEMPTS),
            "KEYSTONE_WEBHOOK_BACKOFF_SECONDS": "0.3",
            "KEYSTONE_WEBHOOK_TIMEOUT_SECONDS": "1",
        },
    )
    try:
        own_broker.send(dispatch_events, queue=queue)
        assert wait_for(
            lambda: (
                WebhookDelivery.objects.count() == len(events)
                and statuses() == {DeliveryStatus.DEAD}
            ),
            timeout=60,
        ), statuses()
        dead = set(WebhookDelivery.objects.values_list("attempts", "last_error"))

        with Receiver(port) as receiver:
            replayed = replay(subscription=subscription, after=0)
            own_broker.send(retry_due_deliveries, queue=queue)  # what the replay endpoint asks
            delivered = wait_for(lambda: statuses() == {DeliveryStatus.DELIVERED}, timeout=60)
    finally:
        stop_worker(worker)

    received = sorted(int(r["headers"]["X-Keystone-Event-Id"]) for r in receiver.requests)
    assert dead == {(ATTEMPTS, "connect_failed")}
    assert replayed == len(events)
    assert delivered, statuses()
    assert received == sorted(events)  # every event, each once
    proved(
        f"receiver down: {len(events)} deliveries tried {ATTEMPTS} times each with backoff by a "
        f"real worker, then dead-lettered (connect_failed); receiver back + replay: all "
        f"{len(events)} events delivered, each exactly once"
    )
