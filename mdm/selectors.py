"""Reads: golden records (following merges), cross-references, and "as of" history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Min, Sum

from mdm.entities import get_entity
from mdm.errors import GoldenRecordNotFound
from mdm.models import GoldenRecord, GoldenStatus, MatchRequest, SourceRecord

MAX_REDIRECTS = 50


def resolve_golden(golden_id: str) -> tuple[GoldenRecord, list[str]]:
    """The record `golden_id` names now, and the chain of merged IDs followed to reach it."""
    golden = GoldenRecord.objects.filter(pk=golden_id).first()
    if golden is None:
        raise GoldenRecordNotFound(golden_id)
    chain = []
    while golden.status == GoldenStatus.MERGED and golden.merged_into_id:
        chain.append(golden.pk)
        if len(chain) > MAX_REDIRECTS:
            raise GoldenRecordNotFound(golden_id)
        golden = GoldenRecord.objects.get(pk=golden.merged_into_id)
    return golden, chain


def xref_keys(golden: GoldenRecord, *, include_deleted: bool = False) -> list[SourceRecord]:
    records = SourceRecord.objects.filter(golden=golden).select_related("source_system")
    if not include_deleted:
        records = records.filter(deleted=False)
    return list(records.order_by("source_system__code", "source_key"))


def find_source_record(entity_type: str, system_code: str, source_key: str) -> SourceRecord | None:
    get_entity(entity_type)
    return (
        SourceRecord.objects.filter(
            entity_type=entity_type, source_system__code=system_code, source_key=source_key
        )
        .select_related("source_system", "golden")
        .first()
    )


def golden_as_of(golden_id: str, when: datetime) -> Any:  # a simple-history row, or None
    """The golden record's history row in force at `when`, or None if it did not exist yet."""
    return (
        GoldenRecord.history.filter(id=golden_id, history_date__lte=when)
        .order_by("-history_date", "-history_id")
        .first()
    )


def xrefs_as_of(golden_id: str, when: datetime) -> list[dict[str, str]]:
    """The (system, key) pairs linked to `golden_id` at `when`, from source record history."""
    latest: dict[int, Any] = {}  # history rows (simple-history's models are untyped)
    rows = (
        SourceRecord.history.filter(history_date__lte=when)
        .filter(id__in=SourceRecord.history.filter(golden_id=golden_id).values("id"))
        .order_by("id", "history_date", "history_id")
    )
    for row in rows:
        latest[row.id] = row
    codes = dict(
        SourceRecord.objects.filter(id__in=latest).values_list("id", "source_system__code")
    )
    return sorted(
        (
            {"system": codes[row.id], "source_key": row.source_key}
            for row in latest.values()
            if row.golden_id == golden_id and not row.deleted and row.history_type != "-"
        ),
        key=lambda x: (x["system"], x["source_key"]),
    )


@dataclass(frozen=True)
class PendingMatching:
    """Records waiting to be matched, per entity type and source system."""

    entity_type: str
    source_system: str
    requests: int
    records: int
    oldest: datetime


def pending_matching() -> list[PendingMatching]:
    """What waits to be matched (one grouped query), for metrics and the integrations page."""
    rows = (
        MatchRequest.objects.values("entity_type", "source_system__code")
        .annotate(requests=Count("id"), records=Sum("record_count"), oldest=Min("created_at"))
        .order_by("entity_type", "source_system__code")
    )
    return [
        PendingMatching(
            entity_type=row["entity_type"],
            source_system=row["source_system__code"],
            requests=row["requests"],
            records=row["records"],
            oldest=row["oldest"],
        )
        for row in rows
    ]
