"""Hourly volumes per source system and entity type (`mdm.models.IngestVolume`): what the
Integrations page charts. Ingest adds to them after each chunk commits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from mdm.db.tally import add_to_row
from mdm.models import IngestVolume, SourceSystem

# One column per ingest outcome (`mdm.services.ingest.OUTCOMES`, checked there).
OUTCOMES = ("loaded", "updated", "unchanged", "stale", "deleted", "rejected")


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def record_volume(
    *, system: SourceSystem, entity_type: str, counts: Mapping[str, int], at: datetime
) -> None:
    """Add `counts` (outcome -> records) to the hour of `at`: one statement, no read."""
    if not any(counts.get(outcome) for outcome in OUTCOMES):
        return
    add_to_row(
        IngestVolume,
        key={"source_system": system.pk, "entity_type": entity_type, "hour": hour_of(at)},
        counts={outcome: int(counts.get(outcome, 0)) for outcome in OUTCOMES},
        latest={"last_seen_at": at},
    )


def prune_volumes(*, now: datetime | None = None) -> int:
    """Delete the hours older than KEYSTONE_INGEST_VOLUME_DAYS (the table would otherwise grow
    by one row per system, entity and hour forever). Returns the rows deleted."""
    cutoff = hour_of((now or timezone.now()) - timedelta(days=settings.KEYSTONE_INGEST_VOLUME_DAYS))
    deleted, _ = IngestVolume.objects.filter(hour__lt=cutoff).delete()
    return deleted
