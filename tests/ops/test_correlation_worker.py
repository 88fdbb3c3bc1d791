"""A real Celery worker (PostgreSQL + Redis) runs a task under the correlation ID of what sent
it (the message's headers) and writes JSON log lines with it (LOG_FORMAT=json)."""

import json

import pytest

from config.celery import app
from matching.tasks import run_matching_task
from mdm.context import audit_context
from mdm.models import OutboxEvent
from tests.celery_worker import forget_queue, new_queue, start_worker, stop_worker
from tests.matching.conftest import febrl_sample, load_febrl  # noqa: F401

pytestmark = [
    pytest.mark.postgres(reason="the worker process needs the PostgreSQL test database"),
    pytest.mark.redis,
]


@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_task_under_the_senders_correlation_id(load_febrl, settings, tmp_path):  # noqa: F811
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL) for a real worker")
    load_febrl()
    queue = new_queue("test-correlation")
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        worker = start_worker(
            [queue],
            redis_url=settings.REDIS_URL,
            env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "KEYSTONE_MATCH_QUEUE": queue},
            output=output,
            log_level="info",
        )
        app.conf.task_always_eager = False
        try:
            with audit_context(correlation="corr-batch-7"):
                summary = run_matching_task.apply_async(args=["customer"], queue=queue).get(
                    timeout=180
                )
        finally:
            app.conf.task_always_eager = True
            stop_worker(worker)
            forget_queue(settings.REDIS_URL, queue)

    merges = OutboxEvent.objects.filter(event_type="golden.merged")
    assert summary["merges"] > 0 and merges.count() > 0
    assert set(merges.values_list("correlation_id", flat=True)) == {"corr-batch-7"}
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    # The task's own lines (its outcome included); the worker's "received" line comes
    # before the task runs, under no ID.
    task_lines = [line for line in lines if line["logger"] == "celery.app.trace"]
    assert task_lines, [line for line in log.read_text().splitlines() if line.startswith("{")][-20:]
    assert {line["correlation_id"] for line in task_lines} == {"corr-batch-7"}
    assert {line["correlation_id"] for line in lines} <= {"corr-batch-7", ""}
