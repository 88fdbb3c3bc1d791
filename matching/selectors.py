"""Reads for the review queue: open match candidates (pairs of golden records), prioritised
and filtered.

Priority puts first the pairs where a steward's decision matters most:

- *uncertainty* — how close the model's probability is to 0.5 (1 at 0.5, 0 at 0 or 1);
- *stakes* — how much hangs off the two golden records: the contracts and entitlements
  (and child accounts) whose relations point at them, and how many source systems they span.

``priority = uncertainty + 0.25·ln(1 + related) + 0.1·systems`` — uncertainty dominates,
stakes order pairs of similar uncertainty. The priority terms are correlated subqueries, so
ranking costs a few index probes per open candidate; pages read the queue through
`RankedQueue`, which ranks on the narrow candidate rows (ids and priority terms) with
PostgreSQL's JIT off, then loads the page's records — a fixed number of queries per page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import (
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Abs, Coalesce, Ln
from django.utils import timezone

from matching.models import CandidateStatus, MatchCandidate
from mdm.models import GoldenRecord, SourceRecord

# name -> (label, low inclusive, high exclusive)
PROBABILITY_BANDS: dict[str, tuple[str, float, float]] = {
    "uncertain": ("0.40 – 0.60 (most uncertain)", 0.4, 0.6),
    "likely": ("0.60 – 0.80", 0.6, 0.8),
    "very_likely": ("0.80 – 1.00", 0.8, 1.01),
    "unlikely": ("below 0.40", 0.0, 0.4),
}
# name -> (label, min age in days inclusive, max age in days exclusive or None)
AGE_BANDS: dict[str, tuple[str, int, int | None]] = {
    "today": ("less than a day", 0, 1),
    "week": ("1 – 7 days", 1, 7),
    "month": ("7 – 30 days", 7, 30),
    "older": ("30 days or more", 30, None),
}


@dataclass(frozen=True)
class QueueFilters:
    entity_type: str = ""
    system: str = ""
    band: str = ""
    age: str = ""
    exclude_ids: tuple[int, ...] = ()

    def as_query(self) -> dict[str, str]:
        wanted = {"entity": self.entity_type, "system": self.system}
        wanted |= {"band": self.band, "age": self.age}
        return {k: v for k, v in wanted.items() if v}


def _related_count(side: str) -> Coalesce:
    """Active golden records whose relations point at the golden record of `side`."""
    golden = OuterRef(f"{side}_golden_id")
    related = (
        GoldenRecord.objects.filter(
            Q(customer_id=golden) | Q(contract_id=golden) | Q(parent_id=golden)
        )
        .exclude(status="merged")
        .order_by()
        .annotate(group=Value(1))
        .values("group")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(related, output_field=IntegerField()), 0)


def _systems_count() -> Coalesce:
    """Distinct source systems among the live members of both golden records."""
    systems = (
        SourceRecord.objects.filter(
            Q(golden_id=OuterRef("left_golden_id")) | Q(golden_id=OuterRef("right_golden_id")),
            deleted=False,
        )
        .order_by()
        .annotate(group=Value(1))
        .values("group")
        .annotate(n=Count("source_system_id", distinct=True))
        .values("n")
    )
    return Coalesce(Subquery(systems, output_field=IntegerField()), 0)


def _filtered(filters: QueueFilters) -> QuerySet[MatchCandidate]:
    """Open candidates passing `filters`, without the priority terms (cheap to count)."""
    queue = MatchCandidate.objects.filter(status=CandidateStatus.OPEN)
    if filters.entity_type:
        queue = queue.filter(entity_type=filters.entity_type)
    if filters.system:
        queue = queue.filter(
            Q(left__source_system__code=filters.system)
            | Q(right__source_system__code=filters.system)
        )
    if filters.band in PROBABILITY_BANDS:
        _, low, high = PROBABILITY_BANDS[filters.band]
        queue = queue.filter(probability__gte=low, probability__lt=high)
    if filters.age in AGE_BANDS:
        _, min_days, max_days = AGE_BANDS[filters.age]
        now = timezone.now()
        queue = queue.filter(created_at__lte=now - timedelta(days=min_days))
        if max_days is not None:
            queue = queue.filter(created_at__gt=now - timedelta(days=max_days))
    if filters.exclude_ids:
        queue = queue.exclude(pk__in=filters.exclude_ids)
    return queue


def _prioritised(queue: QuerySet[MatchCandidate]) -> QuerySet[MatchCandidate]:
    float_ = FloatField()
    queue = queue.annotate(
        uncertainty=ExpressionWrapper(
            Value(1.0) - Value(2.0) * Abs(F("probability") - Value(0.5)), output_field=float_
        ),
        related=_related_count("left") + _related_count("right"),
        systems=_systems_count(),
    ).annotate(
        priority=ExpressionWrapper(
            F("uncertainty")
            + Value(0.25) * Ln(Value(1.0) + F("related") * Value(1.0))
            + Value(0.1) * F("systems"),
            output_field=float_,
        )
    )
    return queue.order_by("-priority", "created_at", "id")


CANDIDATE_RELATIONS = (
    "left__source_system",
    "right__source_system",
    "left_golden",
    "right_golden",
)
PRIORITY_TERMS = ("uncertainty", "related", "systems", "priority")


def review_queue(filters: QueueFilters | None = None) -> QuerySet[MatchCandidate]:
    """Open candidates, highest priority first, with both records, their systems and golden
    records joined (no per-row queries). Annotated: uncertainty, related, systems, priority."""
    filters = filters or QueueFilters()
    return _prioritised(_filtered(filters)).select_related(*CANDIDATE_RELATIONS)


@contextmanager
def _without_jit() -> Iterator[None]:
    """PostgreSQL JIT-compiles a query whose estimated cost passes `jit_above_cost`; ranking
    10,000 candidates is estimated far above it (a subquery per term and row), and compiling
    took seconds where running takes a fraction of one. Off for this transaction only."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


class RankedQueue:
    """The review queue as a paginator reads it: `count()` without the priority terms, and
    a slice in two queries — rank the narrow candidate rows (id and priority terms only), then
    load that slice's candidates with their records. Same order and annotations as
    `review_queue`; far less to join and sort than ranking the full rows."""

    def __init__(self, filters: QueueFilters | None = None):
        self.filters = filters or QueueFilters()

    def count(self) -> int:
        return _filtered(self.filters).count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, item: slice) -> list[MatchCandidate]:
        if not isinstance(item, slice):
            raise TypeError("RankedQueue supports slices only")
        ranked = _prioritised(_filtered(self.filters)).values("pk", *PRIORITY_TERMS)[item]
        with _without_jit():
            terms = list(ranked)
        loaded = MatchCandidate.objects.select_related(*CANDIDATE_RELATIONS).in_bulk(
            [row["pk"] for row in terms]
        )
        page = []
        for row in terms:
            candidate = loaded.get(row["pk"])
            if candidate is None:  # deleted between the two queries
                continue
            for name in PRIORITY_TERMS:
                setattr(candidate, name, row[name])
            page.append(candidate)
        return page

    def first(self) -> MatchCandidate | None:
        page = self[:1]
        return page[0] if page else None


def next_candidate(filters: QueueFilters) -> MatchCandidate | None:
    return RankedQueue(filters).first()


def queue_size_by_entity_and_age() -> dict[str, dict[str, int]]:
    """Open candidates per entity type and age band, in one query."""
    now = timezone.now()
    aggregates = {}
    for name, (_, min_days, max_days) in AGE_BANDS.items():
        condition = Q(created_at__lte=now - timedelta(days=min_days))
        if max_days is not None:
            condition &= Q(created_at__gt=now - timedelta(days=max_days))
        aggregates[name] = Count("pk", filter=condition)
    rows = (
        MatchCandidate.objects.filter(status=CandidateStatus.OPEN)
        .order_by()
        .values("entity_type")
        .annotate(total=Count("pk"), **aggregates)
    )
    return {row.pop("entity_type"): row for row in cast(Iterator[dict[str, Any]], rows)}
