"""Applying planned merges: batches of whole clusters, in this process or in forked workers."""

import multiprocessing
import os

import pytest

from matching import apply
from matching.apply import Merge, apply_merges, apply_workers, batches_of_clusters
from matching.models import MatchRun
from matching.services import run_batch_matching
from mdm.db.pool import Worker, WorkerStopped
from mdm.errors import InvalidResolution
from mdm.models import GoldenRecord, GoldenStatus, OutboxEvent, SourceRecord
from mdm.services.ingest import ingest_records
from tests.processes import child_processes

needs_postgres = pytest.mark.postgres(
    reason="apply workers run on PostgreSQL only (SQLite applies in the calling process)",
)


def _merges(*pairs: tuple[str, str]) -> list[Merge]:
    return [Merge(survivor, loser, 0.99) for survivor, loser in pairs]


def test_batches_hold_whole_clusters():
    merges = _merges(("a", "1"), ("b", "2"), ("a", "3"), ("c", "4"), ("b", "5"), ("d", "6"))

    batches = batches_of_clusters(merges, size=3)

    assert batches == [
        _merges(("a", "1"), ("a", "3")),
        _merges(("b", "2"), ("b", "5"), ("c", "4")),
        _merges(("d", "6")),
    ]
    assert sorted(m for batch in batches for m in batch) == sorted(merges)


def test_a_cluster_bigger_than_a_batch_is_a_batch_of_its_own():
    merges = _merges(("a", "1"), *(("b", str(n)) for n in range(2, 7)), ("c", "9"))

    batches = batches_of_clusters(merges, size=3)

    assert [len(b) for b in batches] == [1, 5, 1]
    assert {m.survivor for m in batches[1]} == {"b"}


@pytest.mark.django_db
def test_inside_a_transaction_or_for_few_batches_one_process_applies(settings):
    settings.KEYSTONE_MATCH_APPLY_WORKERS = 2

    assert apply_workers(settings.KEYSTONE_MATCH_APPLY_MIN_BATCHES - 1) == 1
    assert apply_workers(100) == 1  # the test's transaction: workers would not see its rows
    settings.KEYSTONE_MATCH_APPLY_WORKERS = 1
    assert apply_workers(100) == 1


def _goldens(count: int, system: str = "crm") -> list[str]:
    ingest_records(
        entity_type="customer",
        system_code=system,
        rows=[
            (n, {"source_key": f"k{n}", "kind": "organization", "name": f"Company {n}"})
            for n in range(count)
        ],
        actor="test",
        create_system=True,
    )
    return list(
        SourceRecord.objects.filter(source_system__code=system)
        .order_by("pk")
        .values_list("golden_id", flat=True)
    )


@pytest.fixture
def small_batches(monkeypatch, settings):
    settings.KEYSTONE_MATCH_APPLY_WORKERS = 2
    settings.KEYSTONE_MATCH_APPLY_BATCH = 2
    settings.KEYSTONE_MATCH_APPLY_MIN_BATCHES = 2
    forks = []
    real = apply._apply_in_processes

    def spy(batches, workers, **kwargs):
        forks.append((len(batches), workers))
        return real(batches, workers, **kwargs)

    monkeypatch.setattr(apply, "_apply_in_processes", spy)
    return forks


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_workers_apply_every_merge_whole(small_batches):
    goldens = _goldens(12)
    merges = _merges(*((goldens[n], goldens[n + 1]) for n in range(0, 12, 2)))
    progress = []

    applied = apply_merges(merges, actor="test", reason="workers", on_progress=progress.append)

    assert small_batches == [(3, 2)]
    assert applied == 6 and sorted(progress) == progress and progress[-1] == 6
    for merge in merges:
        loser = GoldenRecord.objects.get(pk=merge.loser)
        assert (loser.status, loser.merged_into_id) == (GoldenStatus.MERGED, merge.survivor)
        assert SourceRecord.objects.filter(golden_id=merge.survivor).count() == 2
    assert OutboxEvent.objects.filter(event_type="golden.merged").count() == 6
    assert SourceRecord.history.filter(history_change_reason="workers").count() == 6


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_is_raised_and_leaves_nothing_half_written(small_batches):
    goldens = _goldens(8)
    merges = _merges(
        (goldens[0], goldens[1]),
        (goldens[2], goldens[3]),
        (goldens[4], "G-DOES-NOT-EXIST"),
        (goldens[4], goldens[5]),
        (goldens[6], goldens[7]),
    )

    with pytest.raises(InvalidResolution, match="G-DOES-NOT-EXIST"):
        apply_merges(merges, actor="test", reason="workers")

    assert small_batches
    failed = GoldenRecord.objects.get(pk=goldens[5])
    assert failed.status == GoldenStatus.ACTIVE  # its batch rolled back as a whole
    merged = set(
        GoldenRecord.objects.filter(status=GoldenStatus.MERGED).values_list("pk", flat=True)
    )
    assert merged <= {goldens[1], goldens[3], goldens[7]}
    assert child_processes() == []


def _apply_in_a_daemon(merges, results):
    from django.db import connections

    connections.close_all()
    try:
        results.put(("applied", apply_merges(merges, actor="test", reason="daemon")))
    except BaseException as error:
        results.put(("error", repr(error)))
    finally:
        connections.close_all()


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_workers_start_from_a_daemonic_process_as_a_celery_prefork_child_is(small_batches):
    goldens = _goldens(8)
    merges = _merges(*((goldens[n], goldens[n + 1]) for n in range(0, 8, 2)))
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    from django.db import connections

    connections.close_all()
    daemon = context.Process(target=_apply_in_a_daemon, args=(merges, results), daemon=True)
    daemon.start()
    outcome = results.get(timeout=60)
    daemon.join(timeout=30)

    assert outcome == ("applied", 4)
    assert GoldenRecord.objects.filter(status=GoldenStatus.MERGED).count() == 4


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_batch_run_with_workers_applies_its_whole_plan(small_batches, load_febrl, monkeypatch):
    from matching import services

    load_febrl()
    planned = []
    real = services.apply_merges

    def record_plan(merges, **kwargs):
        planned.extend(merges)
        return real(merges, **kwargs)

    monkeypatch.setattr(services, "apply_merges", record_plan)

    summary = run_batch_matching(entity_type="customer", actor="test", retrain=True)

    assert small_batches and small_batches[0][1] == 2
    assert summary.merges == len(planned) > 10
    assert MatchRun.objects.get(pk=summary.run_id).merges == len(planned)
    for merge in planned:
        assert GoldenRecord.objects.filter(
            pk=merge.loser, status=GoldenStatus.MERGED, merged_into_id=merge.survivor
        ).exists()
    assert run_batch_matching(entity_type="customer", actor="test").merges == 0


def test_a_stopped_worker_merges_no_further_batch(monkeypatch):
    merged = []
    monkeypatch.setattr(apply, "_merge_batch", lambda batch, actor, reason: merged.append(batch))
    receiver, sender = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    stop.set()  # another worker failed
    worker = Worker(0, 1, sender, stop, parent=os.getpid())

    with pytest.raises(WorkerStopped):
        apply._apply_share(worker, batches=[_merges(("a", "b"))], actor="test", reason="x")

    assert merged == []
    assert not receiver.poll()  # nothing reported
