"""Redis stopped during an ingest: the chunks committed while it is down cannot send their
match tasks (and the messages sent before died with it: no persistence), but their match
requests are rows; when Redis is back, the sweep (beat) sends them and every record is
matched — no batch run."""

import json
import os
import subprocess
import sys

import pytest

from matching.services import run_batch_matching
from mdm.models import MatchRequest, SourceRecord
from tests.celery_worker import (
    ROOT,
    database_url,
    new_queue,
    start_worker,
    stop_worker,
    wait_for,
)
from tests.faults import FAULT_SUITE_NEEDS

pytestmark = [pytest.mark.postgres(reason=FAULT_SUITE_NEEDS), pytest.mark.redis, pytest.mark.slow]

CHUNK, CHUNKS_WHILE_UP = 8, 2

# Runs in a process of its own, like `load_source`: loads the rows chunk by chunk and stops
# (SIGKILL) the test's redis-server once the first CHUNKS_WHILE_UP chunks have committed.
INGEST = """
import json, os, signal, sys
from mdm.services.ingest import ingest_records
rows = json.load(sys.stdin)
chunks = [0]
def progress(count):
    chunks[0] += 1
    if chunks[0] == int(os.environ["CHUNKS_WHILE_UP"]):
        os.kill(int(os.environ["REDIS_PID"]), signal.SIGKILL)
summary = ingest_records(entity_type="customer", system_code="billing", actor="fault-test",
    rows=list(enumerate(rows, start=1)), create_system=True, chunk_size=int(os.environ["CHUNK"]),
    on_progress=progress)
print(summary.line())
"""


@pytest.mark.django_db(transaction=True)
def test_records_ingested_while_redis_is_down_are_matched_when_it_returns(
    customer_model, febrl_sample, redis_server, proved
):
    run_batch_matching(entity_type="customer", actor="test")
    copies = [row | {"source_key": f"b-{row['source_key']}"} for row in febrl_sample["crm"]]
    queue = new_queue("fault-outage")
    worker = start_worker(
        [queue],
        redis_url=redis_server.url,
        beat=True,
        env={
            "KEYSTONE_MATCH_QUEUE": queue,
            "KEYSTONE_WEBHOOK_QUEUE": queue,
            "KEYSTONE_MATCH_REQUEST_SWEEP_SECONDS": "1",
        },
    )
    try:
        loaded = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", INGEST],
            input=json.dumps(copies),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            env={
                **{k: v for k, v in os.environ.items() if k != "CELERY_EAGER"},  # the run's own
                "DATABASE_URL": database_url(),
                "REDIS_URL": redis_server.url,
                "KEYSTONE_MATCH_QUEUE": queue,
                "CHUNK": str(CHUNK),
                "CHUNKS_WHILE_UP": str(CHUNKS_WHILE_UP),
                "REDIS_PID": str(redis_server.process.pid),
                "LOG_LEVEL": "WARNING",
            },
        )
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        summary = loaded.stdout.strip().splitlines()[-1]
        assert redis_server.process.poll() is not None  # Redis is down
        waiting = MatchRequest.objects.count()
        records_waiting = sum(r.record_count for r in MatchRequest.objects.all())

        redis_server.start()  # back, on the same port, empty
        everything_matched = wait_for(
            lambda: not MatchRequest.objects.exists() and linked() == len(copies), timeout=120
        )
    finally:
        stop_worker(worker)

    assert summary.startswith(f"loaded {len(copies)},")
    assert "not sent (broker unreachable)" in loaded.stderr
    assert waiting >= len(copies) // CHUNK - CHUNKS_WHILE_UP  # the chunks after the outage
    assert everything_matched, f"{linked()} of {len(copies)} linked"
    proved(
        f"Redis stopped after chunk {CHUNKS_WHILE_UP} of {len(copies) // CHUNK}: the ingest "
        f"finished ({summary}); {records_waiting} records waited in {waiting} match requests "
        "(the messages sent before the outage died with Redis); after Redis came back the "
        f"sweep sent them and all {len(copies)} copies were linked to their originals — no "
        "batch run"
    )


def linked() -> int:
    golden = dict(
        SourceRecord.objects.filter(source_system__code="crm").values_list(
            "source_key", "golden_id"
        )
    )
    return sum(
        golden.get(key.removeprefix("b-")) == golden_id
        for key, golden_id in SourceRecord.objects.filter(
            source_system__code="billing"
        ).values_list("source_key", "golden_id")
    )
