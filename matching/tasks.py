"""Celery tasks for matching: thin (ids in, one service, a small summary out), acks_late,
idempotent, retried with backoff on transient database or broker errors only."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from matching.activation import stage_retrained
from matching.services import match_records, run_batch_matching

TRANSIENT = (OperationalError, InterfaceError, BrokerError)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def match_records_task(entity_type: str, record_ids: list[int]) -> dict:
    """Incremental matching of changed source records (see `matching.incremental`)."""
    summary = match_records(
        entity_type=entity_type, record_ids=record_ids, actor="task:match_records"
    )
    return summary.as_dict()


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def run_matching_task(entity_type: str, retrain: bool = False, run_id: int | None = None) -> dict:
    """A batch matching run. With `run_id` (a MatchRun the caller created to follow progress)
    the same run record is used, also when a worker died and the task is delivered again."""
    summary = run_batch_matching(
        entity_type=entity_type, actor="task:run_matching", retrain=retrain, run_id=run_id
    )
    return {
        "run_id": summary.run_id,
        "records": summary.records,
        "pairs_scored": summary.pairs_scored,
        "merges": summary.merges,
        "sent_to_review": summary.sent_to_review,
        "goldens_before": summary.goldens_before,
        "goldens_after": summary.goldens_after,
        "seconds": summary.seconds,
    }


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def stage_retrained_task(entity_type: str, actor: str, reason: str = "") -> dict:
    """Train a new model version and stage it with its diff (`matching.activation`)."""
    model = stage_retrained(entity_type=entity_type, actor=actor, reason=reason)
    return {"model": model.pk, "version": model.version, "state": model.state}
