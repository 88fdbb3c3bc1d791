"""Real Celery workers on Redis (PostgreSQL + Redis): a batch matching task end to end, and
incremental matching driven by what ingest requests. Every task the test causes — the match
requests each ingest writes included — goes to a queue of the test's own that the worker
consumes, and nothing is left in Redis afterwards. How long a batch run takes is
bench/match_worker.py's subject, not a test's."""

import pytest

from config.celery import app
from matching.models import MatchRun, RunStatus
from matching.services import run_batch_matching
from matching.tasks import run_matching_task
from mdm.models import MatchRequest, SourceRecord
from mdm.services.ingest import ingest_records
from tests.celery_worker import forget_queue, new_queue, start_worker, stop_worker, wait_for

pytestmark = [
    pytest.mark.postgres(reason="the worker process needs the PostgreSQL test database"),
    pytest.mark.redis,
]


def _worker_queue(settings, pool: str, extra_env: dict[str, str]):
    if not settings.REDIS_URL:  # PostgreSQL: the tests' postgres marker
        pytest.skip("needs Redis (REDIS_URL) for a real worker")
    queue = new_queue("test-matching")
    settings.KEYSTONE_MATCH_QUEUE = queue  # the match requests ingest sends go here too
    worker = start_worker(
        [queue],
        redis_url=settings.REDIS_URL,
        pool=pool,
        env={"KEYSTONE_MATCH_QUEUE": queue, **extra_env},
    )
    app.conf.task_always_eager = False
    try:
        yield queue
    finally:
        app.conf.task_always_eager = True
        drained = wait_for(lambda: not MatchRequest.objects.exists(), timeout=60)
        stop_worker(worker)
        stranded = forget_queue(settings.REDIS_URL, queue)
        assert drained, "match requests were left unmatched"
        assert stranded == 0, f"{stranded} messages left in Redis"


@pytest.fixture
def worker_queue(settings):
    """A solo worker on the test database, consuming only a queue of its own."""
    yield from _worker_queue(settings, "solo", {})


@pytest.fixture
def prefork_worker_queue(settings):
    """A prefork worker (the production pool: the task runs in a daemonic child process)
    whose batch runs apply merges in batches of 2 over forked apply workers."""
    yield from _worker_queue(
        settings,
        "prefork",
        {"KEYSTONE_MATCH_APPLY_BATCH": "2", "KEYSTONE_MATCH_APPLY_MIN_BATCHES": "2"},
    )


@pytest.mark.django_db(transaction=True)
def test_worker_runs_batch_matching_end_to_end(load_febrl, worker_queue):
    load_febrl()
    run = MatchRun.objects.create(entity_type="customer", actor="test")

    result = run_matching_task.apply_async(
        args=["customer"], kwargs={"run_id": run.pk}, queue=worker_queue
    )
    summary = result.get(timeout=180)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.phase == "done"
    assert summary["run_id"] == run.pk
    assert summary["merges"] == run.merges > 0
    assert summary["goldens_after"] < summary["goldens_before"]
    assert (
        SourceRecord.objects.get(source_key="rec-5-org").golden_id
        == SourceRecord.objects.get(source_key="rec-5-dup-0").golden_id
    )


@pytest.mark.django_db(transaction=True)
def test_prefork_worker_applies_merges_over_forked_apply_workers(load_febrl, prefork_worker_queue):
    load_febrl()

    summary = run_matching_task.apply_async(args=["customer"], queue=prefork_worker_queue).get(
        timeout=180
    )

    run = MatchRun.objects.get(pk=summary["run_id"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert summary["merges"] == run.merges >= 2 * 2  # at least two batches of two
    assert (
        SourceRecord.objects.get(source_key="rec-5-org").golden_id
        == SourceRecord.objects.get(source_key="rec-5-dup-0").golden_id
    )


@pytest.mark.django_db(transaction=True)
def test_worker_matches_what_an_ingest_requests(customer_model, febrl_sample, worker_queue):
    """The ingest's commit sends its match request to the broker; the worker matches it."""
    run_batch_matching(entity_type="customer", actor="test")
    row = next(dict(r) for r in febrl_sample["crm"] if r["source_key"] == "rec-10-org")
    row["address_line1"] += "x"

    ingest_records(
        entity_type="customer",
        system_code="billing",
        rows=[(1, row | {"source_key": "b-10"})],
        actor="test",
        create_system=True,
    )

    original = SourceRecord.objects.get(source_key="rec-10-org")
    assert wait_for(
        lambda: SourceRecord.objects.get(source_key="b-10").golden_id == original.golden_id,
        timeout=60,
    ), "the worker never linked the near-duplicate"
