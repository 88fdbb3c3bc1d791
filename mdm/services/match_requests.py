"""Match requests: the durable hand-over from ingest to matching (`mdm.models.MatchRequest`).

Ingest writes the request in the transaction that changes the records; on commit it says so
(`mdm.signals.source_records_changed`, with the request ids) and `matching` enqueues a task
per request. Whether that enqueue works or not, the row is there: `matching`'s periodic sweep
enqueues what nobody picked up, so a broker outage delays matching and never skips it.

Claim, then work, then complete — nothing held open while matching runs:
- `claim_match_request`: one conditional UPDATE moves `available_at` forward by a lease, so
  a request is worked on by one worker at a time; a worker that dies leaves it claimable when
  the lease runs out;
- `complete_match_request` deletes it; `fail_match_request` keeps it with the error's class
  and a backoff before the next claim.
Matching a request twice is harmless (incremental matching is idempotent): at least once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mdm.context import correlation_id
from mdm.models import MatchRequest, SourceSystem

REQUEST_SIZE = 1000  # record ids per request (one incremental matching call)
BACKOFF_SECONDS, BACKOFF_MAX_SECONDS = 10, 600


def request_matching(
    *, entity_type: str, source_system: SourceSystem, record_ids: Sequence[int]
) -> list[int]:
    """Write requests to match `record_ids` in the caller's transaction; returns their ids.
    Each keeps the current correlation ID, under which matching will run."""
    ids = sorted(set(record_ids))
    correlation = correlation_id()
    requests = [
        MatchRequest(
            entity_type=entity_type,
            source_system=source_system,
            record_ids=ids[start : start + REQUEST_SIZE],
            record_count=len(ids[start : start + REQUEST_SIZE]),
            correlation_id=correlation,
        )
        for start in range(0, len(ids), REQUEST_SIZE)
    ]
    MatchRequest.objects.bulk_create(requests)
    return [request.pk for request in requests]


def claim_match_request(*, request_id: int, lease_seconds: float) -> MatchRequest | None:
    """The request, claimed for `lease_seconds`; None when it is done, or claimed by another
    worker whose lease has not run out, or waiting out a backoff."""
    now = timezone.now()
    claimed = MatchRequest.objects.filter(pk=request_id, available_at__lte=now).update(
        available_at=now + timedelta(seconds=lease_seconds), attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    return MatchRequest.objects.select_related("source_system").filter(pk=request_id).first()


def complete_match_request(*, request: MatchRequest) -> None:
    MatchRequest.objects.filter(pk=request.pk).delete()


def fail_match_request(*, request: MatchRequest, error: BaseException) -> None:
    """Keep the request for another attempt after a backoff; the error's class is kept."""
    delay = min(BACKOFF_SECONDS * 2 ** max(request.attempts - 1, 0), BACKOFF_MAX_SECONDS)
    MatchRequest.objects.filter(pk=request.pk).update(
        available_at=timezone.now() + timedelta(seconds=delay),
        last_error=type(error).__name__[:200],
    )


def sweep_match_requests(*, unclaimed_for_seconds: float, limit: int = 1000) -> list[int]:
    """Requests claimable for at least `unclaimed_for_seconds` (their task was lost, never
    sent, or failed and waited out its backoff), oldest first. Each is marked as swept (its
    `available_at` set to now, so it stays claimable), so the next sweep within that time
    does not send it again."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            MatchRequest.objects.select_for_update(skip_locked=True)
            .filter(available_at__lte=now - timedelta(seconds=unclaimed_for_seconds))
            .order_by("available_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        MatchRequest.objects.filter(pk__in=ids).update(available_at=now)
    return ids
