"""Reads for the review queue: open match candidates (pairs of golden records), prioritised
and filtered.

Priority puts first the pairs where a steward's decision matters most:

    priority = uncertainty × impact

- *uncertainty* — how close the model's probability is to 0.5 (1 at 0.5, 0 at 0 or 1);
- *impact* — what a wrong decision about the two golden records puts at stake, from the
  stakes their entity declares (`mdm.entities.Stake`: a customer's contract value, active
  entitlements and child accounts; a product's or contract's active entitlements) and the
  number of source systems they span:
  ``impact = 1 + Σ weight · ln(1 + amount / scale) + SYSTEMS_WEIGHT · ln(systems)``.

A sure pair with much at stake ranks with an unsure pair with little. Each term is a
correlated subquery, so ranking costs a few index probes per open candidate; pages read the
queue through `RankedQueue`, which ranks on the narrow candidate rows (ids and priority terms)
with PostgreSQL's JIT off, then loads the page's records — a fixed number of queries per page.
The queue shows each candidate's terms beside its priority.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Abs, Cast, Coalesce, Greatest, Ln
from django.utils import timezone

from matching.models import CandidateStatus, MatchCandidate, MatchRun, RunStatus
from mdm.entities import ENTITIES, STAKES, Stake
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
    # A condition on the candidate rows from the caller (the desk's claims and assignments):
    # not part of the query string.
    condition: Q | None = None

    def as_query(self) -> dict[str, str]:
        wanted = {"entity": self.entity_type, "system": self.system}
        wanted |= {"band": self.band, "age": self.age}
        return {k: v for k, v in wanted.items() if v}


SYSTEMS_WEIGHT = 0.5  # two systems add 0.35, four 0.69


def _stake_amount(stake: Stake) -> Subquery:
    """Active golden records of the stake's kind pointing at either golden record: counted,
    or their `total` summed."""
    either = Q(**{f"{stake.relation}_id": OuterRef("left_golden_id")}) | Q(
        **{f"{stake.relation}_id": OuterRef("right_golden_id")}
    )
    rows = GoldenRecord.objects.filter(either, entity_type=stake.referrer, status="active")
    if stake.only:
        attribute, value = stake.only
        rows = rows.filter(**{f"values__{attribute}": value})
    amount = (
        Sum(Cast(KeyTextTransform(stake.total, "values"), FloatField()))
        if stake.total
        else Count("pk")
    )
    grouped = rows.order_by().annotate(group=Value(1)).values("group")
    return Subquery(grouped.annotate(n=amount).values("n"), output_field=FloatField())


def _stakes() -> dict[str, Case]:
    """One annotation per declared stake name: the amount for candidates of an entity that
    declares it, else 0 (CASE: the subquery runs only for those)."""
    annotations = {}
    for name in STAKES:
        whens = [
            When(entity_type=entity.name, then=Coalesce(_stake_amount(stake), Value(0.0)))
            for entity in ENTITIES.values()
            for stake in entity.stakes
            if stake.name == name
        ]
        annotations[name] = Case(*whens, default=Value(0.0), output_field=FloatField())
    return annotations


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
    if filters.condition is not None:
        queue = queue.filter(filters.condition)
    return queue


def _prioritised(queue: QuerySet[MatchCandidate]) -> QuerySet[MatchCandidate]:
    float_ = FloatField()
    queue = queue.annotate(
        uncertainty=ExpressionWrapper(
            Value(1.0) - Value(2.0) * Abs(F("probability") - Value(0.5)), output_field=float_
        ),
        systems=_systems_count(),
        **_stakes(),
    )
    impact = Value(1.0) + Value(SYSTEMS_WEIGHT) * Ln(
        Greatest(F("systems") * Value(1.0), Value(1.0))
    )
    for name, stake in STAKES.items():
        impact = impact + Value(stake.weight) * Ln(
            Value(1.0) + Greatest(F(name), Value(0.0)) / Value(stake.scale)
        )
    queue = queue.annotate(impact=ExpressionWrapper(impact, output_field=float_)).annotate(
        priority=ExpressionWrapper(F("uncertainty") * F("impact"), output_field=float_)
    )
    return queue.order_by("-priority", "created_at", "id")


CANDIDATE_RELATIONS = (
    "left__source_system",
    "right__source_system",
    "left_golden",
    "right_golden",
)
PRIORITY_TERMS = ("uncertainty", "impact", "systems", "priority", *STAKES)


def review_queue(filters: QueueFilters | None = None) -> QuerySet[MatchCandidate]:
    """Open candidates, highest priority first, with both records, their systems and golden
    records joined (no per-row queries). Annotated: uncertainty, impact, systems, every stake
    by name (`mdm.entities.STAKES`), priority."""
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


def open_candidate_count() -> int:
    """How many match candidates wait for a steward."""
    return MatchCandidate.objects.filter(status=CandidateStatus.OPEN).count()


@dataclass(frozen=True)
class ReviewQueueAge:
    """Open match candidates of one entity type and when the oldest was opened."""

    entity_type: str
    open: int
    oldest: Any  # datetime


def review_queue_depth() -> list[ReviewQueueAge]:
    """Open candidates per entity type with the oldest one's creation time: one grouped query
    over the open candidates (metrics read it at every scrape)."""
    rows = (
        MatchCandidate.objects.filter(status=CandidateStatus.OPEN)
        .order_by()
        .values("entity_type")
        .annotate(open=Count("pk"), oldest=Min("created_at"))
    )
    return [ReviewQueueAge(row["entity_type"], row["open"], row["oldest"]) for row in rows]


def last_finished_runs() -> list[MatchRun]:
    """The latest succeeded batch run of each entity type (one query per entity type)."""
    runs = []
    for entity_type in ENTITIES:
        run = (
            MatchRun.objects.filter(entity_type=entity_type, status=RunStatus.SUCCEEDED)
            .order_by("-started_at", "-id")
            .first()
        )
        if run is not None:
            runs.append(run)
    return runs
