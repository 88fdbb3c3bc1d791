"""Two workers matching at the same time (real threads on PostgreSQL, each its own
connection): no merge is lost, no constraint is broken, no duplicate golden record is left."""

import contextlib
import threading

import pytest
from django.db import connections

from matching import incremental
from matching.decisions import decide
from matching.models import MatchModel, Verdict
from matching.services import match_records, run_batch_matching
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from mdm.services.ingest import ingest_records
from tests.matching.conftest import open_candidate

pytestmark = [
    pytest.mark.postgres(reason="races need concurrent transactions"),
    pytest.mark.django_db(transaction=True),
]


def golden_of(system: str, key: str) -> str:
    return SourceRecord.objects.get(source_system__code=system, source_key=key).golden_id


def record_id(system: str, key: str) -> int:
    return SourceRecord.objects.get(source_system__code=system, source_key=key).pk


def ingest_unmatched(*rows: dict) -> None:
    """Ingest without matching yet (as when ingests commit at once and their matching tasks
    are still queued): the model is inactive while they load."""
    model = MatchModel.objects.get(entity_type="customer", is_active=True)
    MatchModel.objects.filter(pk=model.pk).update(is_active=False)
    try:
        ingest_records(
            entity_type="customer",
            system_code="billing",
            rows=list(enumerate(rows, start=1)),
            actor="test",
            create_system=True,
        )
    finally:
        MatchModel.objects.filter(pk=model.pk).update(is_active=True)


@pytest.fixture
def twins(customer_model, febrl_sample) -> dict:
    """rec-10-org as another system sends it, matched by a batch run first."""
    run_batch_matching(entity_type="customer", actor="test")
    return next(dict(r) for r in febrl_sample["crm"] if r["source_key"] == "rec-10-org")


class PlanThenWait:
    """Wraps clustering so both workers have planned before either applies (while nothing
    holds them apart, they meet here; a worker that cannot get here goes on after a while)."""

    def __init__(self, monkeypatch):
        self.barrier = threading.Barrier(2, timeout=3)
        self.real = incremental.cluster
        monkeypatch.setattr(incremental, "cluster", self)

    def __call__(self, **kwargs):
        planned = self.real(**kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait()
        return planned


def race(*jobs):
    errors = []

    def run(job):
        try:
            job()
        except BaseException as error:  # reported after both ended
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]


def test_two_workers_matching_overlapping_records_lose_no_merge(twins, monkeypatch):
    ingest_unmatched(twins | {"source_key": "b-1"}, twins | {"source_key": "b-2"})
    ids = [record_id("billing", "b-1"), record_id("billing", "b-2")]
    PlanThenWait(monkeypatch)

    race(
        lambda: match_records(entity_type="customer", record_ids=ids, actor="worker-1"),
        lambda: match_records(entity_type="customer", record_ids=ids[::-1], actor="worker-2"),
    )

    original = golden_of("crm", "rec-10-org")
    assert golden_of("billing", "b-1") == golden_of("billing", "b-2") == original
    assert GoldenRecord.objects.get(pk=original).status == GoldenStatus.ACTIVE
    members = SourceRecord.objects.filter(source_key__in=["b-1", "b-2", "rec-10-org"])
    assert {m.golden_id for m in members} == {original}


def test_two_workers_never_merge_records_a_steward_kept_apart(twins, monkeypatch):
    ingest_unmatched(
        twins | {"source_key": "b-1"}, twins | {"source_key": "b-2", "email": "x@example.org"}
    )
    first, second = record_id("billing", "b-1"), record_id("billing", "b-2")
    candidate = open_candidate(
        SourceRecord.objects.get(pk=first), SourceRecord.objects.get(pk=second)
    )
    decide(candidate=candidate, verdict=Verdict.NOT_A_MATCH, actor="steward", reason="twins")
    PlanThenWait(monkeypatch)

    race(
        lambda: match_records(entity_type="customer", record_ids=[first], actor="worker-1"),
        lambda: match_records(entity_type="customer", record_ids=[second], actor="worker-2"),
    )

    original = golden_of("crm", "rec-10-org")
    assert golden_of("billing", "b-1") != golden_of("billing", "b-2")  # the decision holds
    assert original in {golden_of("billing", "b-1"), golden_of("billing", "b-2")}  # no lost merge
