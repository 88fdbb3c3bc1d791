"""Celery tasks for matching: thin (ids in, one service, a small summary out), acks_late,
idempotent, retried with backoff on transient database or broker errors only.

Incremental matching is driven by `mdm.models.MatchRequest` rows, not by messages: a task
names a request, and `sweep_match_requests` (beat) sends again whatever no task picked up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from matching.activation import stage_retrained
from matching.services import match_request, run_batch_matching
from mdm.services.match_requests import sweep_match_requests as sweep

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, BrokerError)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


def enqueue_match_requests(request_ids: Sequence[int]) -> None:
    """Send a task per request. Best effort where there is a broker: the request rows are the
    guarantee, and the sweep sends what this could not. Eager mode runs them here, errors
    included."""
    for request_id in request_ids:
        try:
            match_request_task.apply_async(
                args=[request_id], queue=settings.KEYSTONE_MATCH_QUEUE, retry=False
            )
        except Exception:
            if match_request_task.app.conf.task_always_eager:
                raise
            logger.warning(
                "match request %s not sent (broker unreachable); the sweep will send it",
                request_id,
                exc_info=True,
            )
            return  # the broker is down: the rest waits for the sweep as well


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def match_request_task(request_id: int) -> dict | None:
    """Incremental matching of one match request's records (see `matching.incremental`);
    None when another worker has it or it is done. A failure is kept on the request, which
    is tried again after a backoff."""
    summary = match_request(request_id=request_id, actor="task:match_records")
    return summary.as_dict() if summary is not None else None


@shared_task(acks_late=True, ignore_result=True)
def sweep_match_requests() -> dict:
    """Beat: send again every match request no task has picked up for a while."""
    swept = sweep(unclaimed_for_seconds=settings.KEYSTONE_MATCH_REQUEST_SWEEP_SECONDS)
    enqueue_match_requests(swept)
    return {"sent": len(swept)}


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
