"""A Celery worker killed (SIGKILL, with its children) while a batch run applies its merges:
the re-run completes, and no cluster is ever half-applied (merges are applied in batches of
whole clusters, each one transaction)."""

import os
import signal

import pytest

from matching.models import MatchRun, RunStatus
from matching.tasks import run_matching_task
from mdm.models import GoldenRecord, GoldenStatus, SourceRecord
from tests.celery_worker import new_queue, start_worker, stop_worker, wait_for
from tests.faults import FAULT_SUITE_NEEDS

pytestmark = [pytest.mark.postgres(reason=FAULT_SUITE_NEEDS), pytest.mark.redis, pytest.mark.slow]


def membership() -> dict[int, str]:
    return dict(SourceRecord.objects.values_list("pk", "golden_id"))


def merged() -> int:
    return GoldenRecord.objects.filter(status=GoldenStatus.MERGED).count()


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_apply_leaves_whole_clusters_and_the_rerun_completes(
    customer_model, own_broker, proved
):
    queue = new_queue("fault-apply")
    one_cluster_per_batch = {
        "KEYSTONE_MATCH_QUEUE": queue,
        "KEYSTONE_MATCH_APPLY_BATCH": "1",  # every cluster its own transaction
        "KEYSTONE_MATCH_APPLY_WORKERS": "1",  # applied in the task's own process
    }
    before = membership()
    assert len(set(before.values())) == len(before)  # every record on its own so far
    run = MatchRun.objects.create(entity_type="customer", actor="test")
    worker = start_worker([queue], redis_url=own_broker.url, env=one_cluster_per_batch)
    try:
        own_broker.send(run_matching_task, "customer", run_id=run.pk, queue=queue)
        assert wait_for(lambda: merged() > 0, timeout=120, every=0.01), "no merge was applied"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        stop_worker(worker)
    at_kill = membership()
    merged_at_kill = merged()

    worker = start_worker([queue], redis_url=own_broker.url, env=one_cluster_per_batch)
    try:
        own_broker.send(run_matching_task, "customer", run_id=run.pk, queue=queue)
        assert wait_for(
            lambda: MatchRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED, timeout=180
        ), MatchRun.objects.get(pk=run.pk).error
    finally:
        stop_worker(worker)
    final = membership()

    clusters: dict[str, set[int]] = {}
    for record_id, golden_id in final.items():
        clusters.setdefault(golden_id, set()).add(record_id)
    merged_clusters = [members for members in clusters.values() if len(members) > 1]
    half_applied = [
        members
        for members in merged_clusters
        if 1 < len({at_kill[r] for r in members}) < len(members)
    ]
    applied_at_kill = sum(len({at_kill[r] for r in m}) == 1 for m in merged_clusters)
    assert 0 < merged_at_kill < merged(), "the worker was not killed mid-apply"
    assert half_applied == []
    original, duplicate = (
        SourceRecord.objects.get(source_key=key) for key in ("rec-5-org", "rec-5-dup-0")
    )
    assert original.golden_id == duplicate.golden_id
    proved(
        f"worker killed after {merged_at_kill} of {merged()} merges ({applied_at_kill} of "
        f"{len(merged_clusters)} clusters applied): every cluster was whole or untouched, and "
        "the re-run applied the rest"
    )
