"""A real Celery worker on Redis runs a batch matching task end to end (PostgreSQL + Redis).
How long it takes is bench/match_worker.py's subject, not a test's."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from matching.models import MatchRun, RunStatus
from matching.tasks import run_matching_task
from mdm.models import SourceRecord

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


@pytest.fixture
def worker_queue():
    """A worker subprocess on the test database, consuming only a queue of its own."""
    yield from _worker("solo", {})


@pytest.fixture
def prefork_worker_queue():
    """A prefork worker (the production pool: the task runs in a daemonic child process)
    whose batch runs apply merges in batches of 2 over forked apply workers."""
    yield from _worker(
        "prefork", {"KEYSTONE_MATCH_APPLY_BATCH": "2", "KEYSTONE_MATCH_APPLY_MIN_BATCHES": "2"}
    )


def _worker(pool: str, extra_env: dict[str, str]):
    if not settings.REDIS_URL:  # PostgreSQL: the tests' postgres marker
        pytest.skip("needs Redis (REDIS_URL) for a real worker")
    from config.celery import app

    queue = f"test-matching-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": settings.REDIS_URL}
    env.update(extra_env)
    env.pop("CELERY_EAGER", None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", f"--pool={pool}",
         "--concurrency=1", "-Q", queue, "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    app.conf.task_always_eager = False
    try:
        yield queue
    finally:
        app.conf.task_always_eager = True
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@pytest.mark.postgres
@pytest.mark.redis
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


@pytest.mark.postgres
@pytest.mark.redis
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
