"""Ingest racing itself and the resolution services, with real threads on PostgreSQL.

Each test makes the interleaving certain instead of hoping for it: a transaction holds a lock
the racers need, the test waits until PostgreSQL reports them waiting, then lets go."""

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connections, transaction

from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from mdm.selectors import resolve_golden
from mdm.services.ingest import ingest_records
from mdm.services.resolution import merge
from tests.api.conftest import bearer

pytestmark = [
    pytest.mark.postgres(reason="races need concurrent transactions"),
    pytest.mark.django_db(transaction=True),
]

ACME = {"kind": "organization", "name": "Acme", "email": "info@acme.com", "country": "DE"}


def load(system: str, *rows: dict) -> None:
    ingest_records(
        entity_type="customer",
        system_code=system,
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
    )


def record(system: str, key: str) -> SourceRecord:
    return SourceRecord.objects.get(source_system__code=system, source_key=key)


def waiting_on_locks() -> int:
    """Other backends of this database waiting for a lock right now."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the racers never got where the test needs them")
        time.sleep(0.02)


class Racer(threading.Thread):
    """A thread on its own database connection; join() raises what the thread raised."""

    def __init__(self, target: Callable[[], object]):
        super().__init__(daemon=True)
        self._target_call = target
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._target_call()
        except BaseException as error:  # reported on join
            self.error = error
        finally:
            connections.close_all()

    def join(self, timeout: float | None = 60) -> None:
        super().join(timeout)
        assert not self.is_alive(), "racer still running"
        if self.error is not None:
            raise self.error


class Holder(Racer):
    """Runs `hold()` inside a transaction and keeps the transaction open until released."""

    def __init__(self, hold: Callable[[], object]):
        self.holding, self.release = threading.Event(), threading.Event()

        def body():
            with transaction.atomic():
                hold()
                self.holding.set()
                self.release.wait(30)

        super().__init__(body)

    def __enter__(self) -> "Holder":
        self.start()
        self.holding.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.join()


def test_an_update_ingested_while_a_merge_is_open_leaves_the_merge_intact():
    load("crm", {**ACME, "source_key": "c1"})
    load("erp", {**ACME, "source_key": "e1", "name": "ACME GmbH"})
    survivor, loser = record("crm", "c1").golden, record("erp", "e1").golden
    update = Racer(lambda: load("erp", {**ACME, "source_key": "e1", "name": "Acme Europe GmbH"}))

    with Holder(lambda: merge(survivor=survivor, loser=loser, actor="steward", reason="same")):
        update.start()
        until(lambda: waiting_on_locks() >= 1)
    update.join()

    updated = record("erp", "e1")
    assert updated.golden_id == survivor.pk  # not pointed back at the merged-away record
    assert updated.attributes["name"] == "Acme Europe GmbH"
    assert GoldenRecord.objects.get(pk=loser.pk).status == GoldenStatus.MERGED
    assert resolve_golden(loser.pk)[0].pk == survivor.pk
    golden = GoldenRecord.objects.get(pk=survivor.pk)
    assert golden.status == GoldenStatus.ACTIVE
    assert "Acme Europe GmbH" in {golden.values.get("name")} | {
        r["value"] for r in golden.lineage["name"].get("runner_ups", [])
    }


def test_concurrent_updates_of_one_key_keep_the_newest():
    load("crm", {**ACME, "source_key": "c1", "source_updated_at": "2026-01-01T00:00:00Z"})
    newer = Racer(
        lambda: load(
            "crm", {**ACME, "source_key": "c1", "name": "Newer", "source_updated_at": "2026-03-01"}
        )
    )
    older = Racer(
        lambda: load(
            "crm", {**ACME, "source_key": "c1", "name": "Older", "source_updated_at": "2026-02-01"}
        )
    )
    pk = record("crm", "c1").pk

    with Holder(lambda: list(SourceRecord.objects.select_for_update().filter(pk=pk))):
        newer.start()
        until(lambda: waiting_on_locks() >= 1)
        older.start()
        until(lambda: waiting_on_locks() >= 2)
    newer.join()
    older.join()

    stored = record("crm", "c1")
    assert stored.attributes["name"] == "Newer"
    assert stored.source_updated_at.month == 3
    assert GoldenRecord.objects.get(pk=stored.golden_id).values["name"] == "Newer"


def test_concurrent_first_inserts_of_one_key_give_one_record_and_no_server_error():
    from api.models import IntegrationToken
    from mdm.services.ingest import get_source_system

    _, token = IntegrationToken.issue(get_source_system("crm", create=True))
    body = {**ACME, "name": "Acme Racing"}

    def put():
        return bearer(token).put("/api/v1/sources/crm/customer/k1", body, format="json")

    first, second = Racer(put), Racer(put)
    with Holder(lambda: load("crm", {**ACME, "source_key": "k1"})):
        first.start()
        second.start()
        until(lambda: waiting_on_locks() >= 2)
    first.join()
    second.join()

    statuses = sorted(r.status_code for r in (first.result, second.result))
    assert all(code < 500 for code in statuses), [r.content for r in (first.result, second.result)]
    assert SourceRecord.objects.filter(source_key="k1").count() == 1
    assert GoldenRecord.objects.filter(status=GoldenStatus.ACTIVE).count() == 1
    outcomes = sorted(r.json()["outcome"] for r in (first.result, second.result))
    assert outcomes == ["unchanged", "updated"]
    assert record("crm", "k1").attributes["name"] == "Acme Racing"
