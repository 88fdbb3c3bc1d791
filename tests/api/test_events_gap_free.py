"""The events feed against concurrent writers on PostgreSQL (real threads, real transactions):
every committed event is served exactly once, in order, and a poll never blocks a write."""

import threading
import time

import pytest
from django.db import connections, transaction

from mdm.db import copy as copy_module
from mdm.models import GoldenRecord, OutboxEvent
from mdm.services import events
from tests.api.conftest import bearer

pytestmark = [
    pytest.mark.postgres(reason="commit-order gaps need concurrent writers (SQLite has one)"),
    pytest.mark.django_db(transaction=True),
]


def updated(golden_id: str) -> OutboxEvent:
    """A `golden.updated` event for a golden record that need not exist (the feed does not
    look), valid against its schema."""
    golden = GoldenRecord(id=golden_id, entity_type="customer", status="active", values={})
    return events.golden_updated(golden, before={"values": {}, "status": "active"})


def write(count: int, label: str) -> None:
    """`count` events in one transaction of their own (COPY from 50 on)."""
    with transaction.atomic():
        events.emit_many([updated(label) for _ in range(count)], actor="test")


def in_thread(target, *args) -> threading.Thread:
    def run():
        try:
            target(*args)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


class Poller:
    """A feed client: polls with after = next_after and keeps every event it is served."""

    def __init__(self, token: str):
        self.client = bearer(token)
        self.after = 0
        self.served: list[int] = []

    def poll(self) -> dict:
        page = self.client.get("/api/v1/events", {"after": self.after, "limit": 1000}).json()
        self.served += [event["id"] for event in page["results"]]
        self.after = page["next_after"]
        return page

    def drain(self) -> None:
        while self.poll()["results"]:
            pass


def test_feed_serves_every_committed_event_once_in_order_around_a_paused_copy(
    crm_token, monkeypatch
):
    """A large writer has taken its ids (nextval) and pauses before its COPY; a small writer
    commits a higher id meanwhile and the feed is polled: the feed must not pass the large
    writer's ids. Then writers of both sizes and a poller run freely."""
    poller = Poller(crm_token)
    write(3, "CUS-BEFORE")
    poller.poll()
    reserved, release = threading.Event(), threading.Event()
    real_copy_rows = copy_module.copy_rows

    def copy_rows_after_a_pause(model, columns, rows):
        if model is OutboxEvent and not release.is_set():
            reserved.set()
            release.wait(10)
        return real_copy_rows(model, columns, rows)

    monkeypatch.setattr(copy_module, "copy_rows", copy_rows_after_a_pause)
    large = in_thread(write, 60, "CUS-LARGE")
    assert reserved.wait(10), "the large writer never reached its COPY"
    write(1, "CUS-SMALL")  # a higher id, committed first
    during = poller.poll()
    release.set()
    large.join(10)

    stop = threading.Event()

    def writers(size: int, label: str):
        while not stop.is_set():
            write(size, label)

    busy = [in_thread(writers, 55, "CUS-BULK"), in_thread(writers, 1, "CUS-ONE")]
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        poller.poll()
    stop.set()
    for thread in busy:
        thread.join(20)
    poller.drain()

    committed = list(OutboxEvent.objects.order_by("id").values_list("id", flat=True))
    assert poller.served == committed  # each committed event once, in order, none skipped
    assert len(committed) > 3 + 60 + 1 + 55
    assert [e["golden_id"] for e in during["results"]] == []  # CUS-SMALL waits for CUS-LARGE


def test_a_poll_never_blocks_a_write(crm_token):
    """A writer holds an uncommitted event; a poll runs meanwhile; another small write must
    not wait for either."""
    holding, release = threading.Event(), threading.Event()

    def slow_writer():
        with transaction.atomic():
            events.emit_many([updated("CUS-SLOW")], actor="test")
            holding.set()
            release.wait(10)

    poll_seconds = []

    def poll():
        started = time.monotonic()
        Poller(crm_token).poll()
        poll_seconds.append(time.monotonic() - started)

    slow = in_thread(slow_writer)
    assert holding.wait(10)
    poller = in_thread(poll)
    time.sleep(0.3)  # the poll is under way (or already done)
    started = time.monotonic()
    write(1, "CUS-QUICK")
    write_seconds = time.monotonic() - started
    poller.join(10)
    release.set()
    slow.join(10)

    assert write_seconds < 0.5, f"a small write took {write_seconds:.2f} s during a poll"
    assert poll_seconds[0] < 0.5, f"the poll took {poll_seconds[0]:.2f} s"


def test_feed_never_serves_past_an_event_that_is_still_being_written(crm_token):
    poller = Poller(crm_token)
    write(1, "CUS-BEFORE")
    poller.poll()
    holding, release = threading.Event(), threading.Event()

    def slow_writer():
        with transaction.atomic():
            events.emit_many([updated("CUS-SLOW")], actor="test")  # takes the next id, commits last
            holding.set()
            release.wait(10)

    writer = in_thread(slow_writer)
    holding.wait(10)
    write(1, "CUS-FAST")  # a higher id, committed first

    while_open = poller.poll()
    release.set()
    writer.join()
    after_commit = poller.poll()

    assert while_open["results"] == []
    assert [e["golden_id"] for e in after_commit["results"]] == ["CUS-SLOW", "CUS-FAST"]
    assert poller.served == list(OutboxEvent.objects.order_by("id").values_list("id", flat=True))
