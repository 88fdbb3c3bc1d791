"""Per transaction, however many writes of events it makes: the id floor (`mdm.db.watermark`)
is taken once, before the first ids, and `events_committed` (in embedded mode: webhooks
dispatched in process) is sent once — again after a savepoint that wrote events rolled back."""

import pytest
from django.db import transaction

from mdm.models import GoldenRecord, OutboxEvent
from mdm.services import events
from mdm.signals import events_committed

pytestmark = pytest.mark.django_db


def updated(golden_id: str) -> OutboxEvent:
    golden = GoldenRecord(id=golden_id, entity_type="customer", status="active", values={})
    return events.golden_updated(golden, before={"values": {}, "status": "active"})


@pytest.fixture
def announcements():
    sent: list[object] = []

    def receiver(sender, **kwargs):
        sent.append(sender)

    events_committed.connect(receiver, dispatch_uid="tests.announcements")
    yield sent
    events_committed.disconnect(dispatch_uid="tests.announcements")


def test_two_writes_of_events_in_one_transaction_announce_once(
    announcements, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events.emit_many([updated("CUS-A")], actor="test")  # a merge's golden.updated
        events.emit_many([updated("CUS-B")], actor="test")  # and its golden.merged

    assert announcements == [OutboxEvent]


def test_events_written_after_a_rolled_back_savepoint_are_announced(
    announcements, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            events.emit_many([updated("CUS-A")], actor="test")
            raise RuntimeError("the savepoint rolls back")
        events.emit_many([updated("CUS-B")], actor="test")

    assert announcements == [OutboxEvent]


@pytest.fixture
def floors(monkeypatch):
    taken: list[object] = []
    monkeypatch.setattr(events, "hold_id_floor", taken.append)
    return taken


def test_the_id_floor_is_taken_once_per_transaction(floors):
    with transaction.atomic():
        events.emit_many([updated("CUS-A")], actor="test")
        events.emit_many([updated("CUS-B")], actor="test")

    assert floors == [OutboxEvent]


def test_the_id_floor_is_taken_again_after_a_savepoint_that_took_it_rolled_back(floors):
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            events.emit_many([updated("CUS-A")], actor="test")
            raise RuntimeError("the savepoint rolls back, and its lock with it")
        events.emit_many([updated("CUS-B")], actor="test")

    assert floors == [OutboxEvent, OutboxEvent]
