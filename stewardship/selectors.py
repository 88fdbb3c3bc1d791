"""Reads for the stewardship pages: dashboard figures, live accuracy, the golden record page
and audit timelines. Each function issues a fixed number of queries, whatever the data size."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from api.selectors import SubscriptionLag, subscription_lags, tokens_last_used
from matching.models import CandidateStatus, MatchCandidate, MatchDecision, MatchRun
from mdm.entities import ENTITIES, INVERSE_LABELS, EntityType
from mdm.models import (
    GoldenRecord,
    GoldenStatus,
    IngestRejection,
    LinkMethod,
    OutboxEvent,
    RejectionStatus,
    SourceRecord,
    SourceSystem,
    StewardOverride,
    SurvivorshipRule,
)
from mdm.selectors import (
    Preview,
    SourceActivity,
    merge_preview,
    open_rejections_by_source,
    source_activity,
)
from stewardship.models import (
    ApprovalRequest,
    ApprovalStatus,
    AutoLinkSample,
    CandidateAssignment,
    CandidateClaim,
    SampleVerdict,
)

Z_95 = 1.959963984540054


# ------------------------------------------------------------------------------ accuracy


@dataclass(frozen=True)
class Precision:
    confirmed: int
    reviewed: int
    low: float | None
    high: float | None

    @property
    def estimate(self) -> float | None:
        return self.confirmed / self.reviewed if self.reviewed else None

    @property
    def percent(self) -> float | None:
        estimate = self.estimate
        return None if estimate is None else round(100 * estimate, 1)

    @property
    def interval_percent(self) -> tuple[float, float] | None:
        """(left edge, width) of the interval in percent, for drawing it."""
        if self.low is None or self.high is None:
            return None
        return round(100 * self.low, 1), round(100 * (self.high - self.low), 1)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion (None without trials)."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


def precision(confirmed: int, reviewed: int) -> Precision:
    interval = wilson_interval(confirmed, reviewed)
    low, high = interval if interval else (None, None)
    return Precision(confirmed, reviewed, low, high)


@dataclass
class AccuracyReport:
    by_entity: dict[str, Precision] = field(default_factory=dict)
    by_month: list[tuple[str, Precision]] = field(default_factory=list)
    overall: Precision = field(default_factory=lambda: precision(0, 0))
    pending: int = 0


def accuracy_report() -> AccuracyReport:
    """Estimated precision of automatic links from stewards' confirmations: per entity type,
    overall, and per month the links were made (two queries)."""
    report = AccuracyReport()
    counts = (
        AutoLinkSample.objects.order_by()
        .values("entity_type")
        .annotate(
            confirmed=Count("pk", filter=Q(verdict=SampleVerdict.CONFIRMED)),
            rejected=Count("pk", filter=Q(verdict=SampleVerdict.REJECTED)),
            pending=Count("pk", filter=Q(verdict=SampleVerdict.PENDING)),
        )
    )
    total_confirmed = total_reviewed = 0
    for row in counts:
        reviewed = row["confirmed"] + row["rejected"]
        report.by_entity[row["entity_type"]] = precision(row["confirmed"], reviewed)
        report.pending += row["pending"]
        total_confirmed += row["confirmed"]
        total_reviewed += reviewed
    report.overall = precision(total_confirmed, total_reviewed)
    monthly: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    reviewed_rows = AutoLinkSample.objects.exclude(verdict=SampleVerdict.PENDING).values_list(
        "verdict", "linked_at", "drawn_at"
    )
    for verdict, linked_at, drawn_at in reviewed_rows:
        month = (linked_at or drawn_at).strftime("%Y-%m")
        monthly[month][1] += 1
        monthly[month][0] += verdict == SampleVerdict.CONFIRMED
    report.by_month = [(month, precision(*monthly[month])) for month in sorted(monthly)]
    return report


@dataclass
class RecordSummary:
    """A source record as one line of values: its entity's `summary` fields, in order."""

    record: SourceRecord
    values: list[Any]


@dataclass
class SampleRow:
    """A sampled automatic link as a steward judges it: the sampled record beside the other
    live members of the golden record it was linked to."""

    sample: AutoLinkSample
    labels: list[str]
    sampled: RecordSummary
    others: list[RecordSummary]
    more: int = 0


SAMPLE_OTHERS = 3


def summarized(record: SourceRecord) -> RecordSummary:
    entity = ENTITIES[record.entity_type]
    values = {**record.references, **record.attributes}
    return RecordSummary(record, [values.get(name) for name in entity.summary])


def sample_rows(samples: Sequence[AutoLinkSample]) -> list[SampleRow]:
    """Each sample with both sides' key values (one query for every golden record's members;
    `samples` come with `record__source_system` joined)."""
    members = golden_members({s.golden_id for s in samples})
    rows = []
    for sample in samples:
        entity = ENTITIES[sample.entity_type]
        others = [
            m
            for m in members.get(sample.golden_id, [])
            if m.pk != sample.record_id and not m.deleted
        ]
        rows.append(
            SampleRow(
                sample=sample,
                labels=[entity.field_label(name) for name in entity.summary],
                sampled=summarized(sample.record),
                others=[summarized(m) for m in others[:SAMPLE_OTHERS]],
                more=max(0, len(others) - SAMPLE_OTHERS),
            )
        )
    return rows


# ------------------------------------------------------------------------------ teamwork


@dataclass
class CandidateWork:
    """Who works on a candidate: an unexpired claim, an assignment."""

    claimed_by: str = ""
    claimed_until: datetime | None = None
    assigned_to: str = ""


def work_on(candidate_ids: Sequence[int]) -> dict[int, CandidateWork]:
    """Claims and assignments of these candidates (two queries, whatever the page size)."""
    work: dict[int, CandidateWork] = defaultdict(CandidateWork)
    if not candidate_ids:
        return work
    ids = list(candidate_ids)
    claims = CandidateClaim.objects.filter(
        candidate_id__in=ids, expires_at__gt=timezone.now()
    ).values_list("candidate_id", "steward__username", "expires_at")
    for candidate_id, username, until in claims:
        work[candidate_id].claimed_by, work[candidate_id].claimed_until = username, until
    assignments = CandidateAssignment.objects.filter(candidate_id__in=ids).values_list(
        "candidate_id", "assignee__username"
    )
    for candidate_id, username in assignments:
        work[candidate_id].assigned_to = username
    return work


def stewards() -> QuerySet[User]:
    """People who may decide candidates (the steward group, and superusers)."""
    users = get_user_model().objects.filter(is_active=True)
    return (
        users.filter(
            Q(is_superuser=True)
            | Q(groups__permissions__codename="decide_candidate")
            | Q(user_permissions__codename="decide_candidate")
        )
        .distinct()
        .order_by("username")
    )


def my_queue_count(user: User) -> int:
    return MatchCandidate.objects.filter(
        status=CandidateStatus.OPEN,
        pk__in=CandidateAssignment.objects.filter(assignee=user).values("candidate_id"),
    ).count()


def approvals_waiting() -> int:
    return ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).count()


# ----------------------------------------------------------------------------- dashboard


@dataclass
class EntityFigures:
    entity_type: str
    active_goldens: int = 0
    records: int = 0
    auto_linked: int = 0
    steward_linked: int = 0
    conflicts: int = 0

    @property
    def auto_link_rate(self) -> float | None:
        """Share of records joined to another record's golden record that the matcher
        joined on its own (auto vs steward links)."""
        linked = self.auto_linked + self.steward_linked
        return self.auto_linked / linked if linked else None


def entity_figures() -> list[EntityFigures]:
    figures = {name: EntityFigures(name) for name in ENTITIES}
    goldens = (
        GoldenRecord.objects.filter(status=GoldenStatus.ACTIVE)
        .order_by()
        .values("entity_type")
        .annotate(n=Count("pk"))
    )
    for row in goldens:
        figures[row["entity_type"]].active_goldens = row["n"]
    records = (
        SourceRecord.objects.filter(deleted=False)
        .order_by()
        .values("entity_type")
        .annotate(
            n=Count("pk"),
            auto=Count("pk", filter=Q(link_method=LinkMethod.AUTO)),
            steward=Count("pk", filter=Q(link_method=LinkMethod.STEWARD)),
        )
    )
    for row in records:
        entry = figures[row["entity_type"]]
        entry.records, entry.auto_linked, entry.steward_linked = (
            row["n"],
            row["auto"],
            row["steward"],
        )
    for row in with_conflicts().order_by().values("entity_type").annotate(n=Count("pk")):
        figures[row["entity_type"]].conflicts = row["n"]
    return list(figures.values())


def with_conflicts() -> QuerySet[GoldenRecord]:
    """Active golden records where some field's lineage shows a runner-up value: the sources
    disagree and a rule (not agreement) decided. Survivorship stores the answer in
    `has_conflicts`; a partial index holds exactly these records."""
    return GoldenRecord.objects.filter(status=GoldenStatus.ACTIVE, has_conflicts=True)


def last_match_runs(limit: int = 8) -> list[MatchRun]:
    """The latest runs (each says its `seconds`, None while running)."""
    return list(MatchRun.objects.select_related("model").order_by("-started_at", "-id")[:limit])


RUN_EXAMPLES = 50


@dataclass
class RunMerge:
    survivor_id: str
    survivor_name: str
    loser_id: str
    loser_name: str  # as it was named before the run merged it


@dataclass
class RunAudit:
    """What a finished match run did against the state before it: the golden records it
    merged (and into which), the ones it created (splits), and the candidates it queued."""

    run: MatchRun
    previous: MatchRun | None
    merges: list[RunMerge]
    merge_count: int
    created: list[GoldenRecord]
    created_count: int
    queued: list[MatchCandidate]
    queued_count: int


def run_audit(run: MatchRun) -> RunAudit:
    """A fixed number of queries, whatever the run's size: history rows of the run's window
    (the indexed history date) carrying its reason, and the candidates it stored."""
    finished = run.finished_at or timezone.now()
    reason = f"match run #{run.pk}:"
    window = GoldenRecord.history.filter(
        history_date__gte=run.started_at,
        history_date__lte=finished,
        history_change_reason__startswith=reason,
    )
    merged = window.filter(history_type="~", status=GoldenStatus.MERGED).order_by("history_id")
    created = window.filter(history_type="+").order_by("history_id")
    merge_rows = list(merged.values_list("id", "display_name", "merged_into_id")[:RUN_EXAMPLES])
    survivors = dict(
        GoldenRecord.objects.filter(pk__in={s for _, _, s in merge_rows}).values_list(
            "id", "display_name"
        )
    )
    queued = MatchCandidate.objects.filter(run=run, created_at__gte=run.started_at)
    previous = (
        MatchRun.objects.filter(entity_type=run.entity_type, started_at__lt=run.started_at)
        .order_by("-started_at", "-id")
        .first()
    )
    return RunAudit(
        run=run,
        previous=previous,
        merges=[
            RunMerge(survivor or "", survivors.get(survivor, ""), loser, name)
            for loser, name, survivor in merge_rows
        ],
        merge_count=merged.count(),
        created=[row.instance for row in created[:RUN_EXAMPLES]],
        created_count=created.count(),
        queued=list(
            queued.select_related(
                "left__source_system", "right__source_system", "left__golden", "right__golden"
            ).order_by("-probability", "id")[:RUN_EXAMPLES]
        ),
        queued_count=queued.count(),
    )


def open_rejections() -> int:
    return IngestRejection.objects.filter(status=RejectionStatus.OPEN).count()


# ---------------------------------------------------------------------------- golden page


RELATED_LIMIT = 50


@dataclass
class LineageRow:
    field: str
    label: str
    value: Any
    rule: str
    system: str | None
    source_key: str | None
    record_id: int | None
    runner_ups: list[dict]
    pinned: bool
    pin_reason: str = ""
    pinned_by: str = ""
    group: str = ""  # survived with its group from one record ("address block, by address line1")


@dataclass
class GoldenPage:
    golden: GoldenRecord
    lineage: list[LineageRow]
    members: list[SourceRecord]
    pins: list[StewardOverride]
    related: dict[str, list[GoldenRecord]]
    related_counts: dict[str, int]
    events: list[OutboxEvent]
    merged_from: list[str]


RELATED_LABELS = INVERSE_LABELS  # (relation, referrer entity) -> label, from mdm.entities


def _group_text(entity: EntityType, group: Any) -> str:
    """A grouped field's lineage in words: "address block, chosen by address line1"."""
    if not isinstance(group, dict) or not group.get("name"):
        return ""
    by = str(group.get("by") or "")
    chosen = f", chosen by {entity.field_label(by)}" if by in entity.survived_fields else ""
    return f"{group['name']} block{chosen}"


def golden_page(golden_id: str) -> GoldenPage:
    """Everything the golden record page shows, in a fixed number of queries."""
    golden = GoldenRecord.objects.select_related(*GoldenRecord.RELATION_FIELDS, "merged_into").get(
        pk=golden_id
    )
    members = list(
        SourceRecord.objects.filter(golden=golden)
        .select_related("source_system")
        .order_by("deleted", "source_system__trust_rank", "source_system__code", "source_key")
    )
    pins = list(StewardOverride.objects.filter(golden=golden).select_related("pinned_by"))
    pinned = {p.attribute: p for p in pins}
    entity = golden.entity
    lineage = []
    for name in entity.survived_fields:
        entry = golden.lineage.get(name, {})
        pin = pinned.get(name)
        label = entity.attribute(name).verbose_name if name in entity.attribute_names else name
        lineage.append(
            LineageRow(
                field=name,
                label=label,
                value=entry.get("value"),
                rule=entry.get("rule", ""),
                system=entry.get("system"),
                source_key=entry.get("source_key"),
                record_id=entry.get("record_id"),
                runner_ups=entry.get("runner_ups", []),
                pinned=pin is not None,
                pin_reason=pin.reason if pin else "",
                pinned_by=pin.pinned_by.get_username() if pin and pin.pinned_by else "",
                group=_group_text(entity, entry.get("group")),
            )
        )
    pointing = Q()
    for relation in GoldenRecord.RELATION_FIELDS:
        pointing |= Q(**{relation: golden})
    related_rows = list(
        GoldenRecord.objects.filter(pointing)
        .exclude(status=GoldenStatus.MERGED)
        .order_by("entity_type", "display_name", "id")[: RELATED_LIMIT * 4]
    )
    related: dict[str, list[GoldenRecord]] = defaultdict(list)
    for row in related_rows:
        for relation in GoldenRecord.RELATION_FIELDS:
            if getattr(row, f"{relation}_id") == golden.pk:
                label = RELATED_LABELS.get((relation, row.entity_type), row.entity_type)
                if len(related[label]) < RELATED_LIMIT:
                    related[label].append(row)
    related_counts: dict[str, int] = defaultdict(int)
    count_rows = (
        GoldenRecord.objects.filter(pointing)
        .exclude(status=GoldenStatus.MERGED)
        .order_by()
        .values("entity_type")
        .annotate(
            **{
                f"by_{relation}": Count("pk", filter=Q(**{f"{relation}_id": golden.pk}))
                for relation in GoldenRecord.RELATION_FIELDS
            }
        )
    )
    for counts in cast(Iterable[dict[str, Any]], count_rows):
        for relation in GoldenRecord.RELATION_FIELDS:
            if counts[f"by_{relation}"]:
                entity_type = counts["entity_type"]
                related_counts[RELATED_LABELS.get((relation, entity_type), entity_type)] += counts[
                    f"by_{relation}"
                ]
    events = list(OutboxEvent.objects.filter(golden_id=golden.pk).order_by("-id")[:15])
    merged_from = list(golden.merged_from.order_by("id").values_list("id", flat=True)[:50])
    return GoldenPage(
        golden=golden,
        lineage=lineage,
        members=members,
        pins=pins,
        related=dict(related),
        related_counts=dict(related_counts),
        events=events,
        merged_from=merged_from,
    )


@dataclass
class PreviewRow:
    """One field of a previewed golden record beside what the records say now."""

    field: str
    label: str
    now: list[Any]  # each current golden record's value, in the order given
    value: Any  # what the previewed record would say
    source: str  # system:key it would come from ("pin" for a pin)
    runner_ups: list[dict]
    changed: bool  # differs from the first record's value now

    @property
    def conflict(self) -> bool:
        return bool(self.runner_ups)


def preview_rows(entity_type: str, preview: Preview, *now: GoldenRecord) -> list[PreviewRow]:
    """A preview's fields (filled ones, and those filled now) beside the current values."""
    entity = ENTITIES[entity_type]
    rows = []
    for name in entity.attribute_names:
        entry = preview.lineage.get(name, {})
        current = [(g.values or {}).get(name) for g in now]
        value = preview.values.get(name)
        if value is None and all(v is None for v in current):
            continue
        source = "pin" if entry.get("rule") == "pin" else ""
        if entry.get("system"):
            source = f"{entry['system']}:{entry.get('source_key', '')}"
        rows.append(
            PreviewRow(
                field=name,
                label=entity.field_label(name),
                now=current,
                value=value,
                source=source,
                runner_ups=entry.get("runner_ups", []),
                changed=bool(now) and value != current[0],
            )
        )
    return rows


# --------------------------------------------------------------------------- candidate page

CANDIDATE_RELATED_LIMIT = 8


@dataclass
class Related:
    """What points at a golden record, by label ("contracts"): how many, and the first few."""

    counts: dict[str, int] = field(default_factory=dict)
    shown: dict[str, list[GoldenRecord]] = field(default_factory=dict)
    refers_to: list[tuple[str, GoldenRecord]] = field(default_factory=list)  # its own relations


def related_of(goldens: Sequence[GoldenRecord]) -> dict[str, Related]:
    """For each golden record: the records whose relations point at it (counted, the first
    few shown) and the records it points at — a fixed number of queries for any number of
    related records (one per declared relation for the counts, one for those shown, the
    targets joined)."""
    ids = [g.pk for g in goldens]
    found = {golden_id: Related() for golden_id in ids}
    for relation in GoldenRecord.RELATION_FIELDS:
        rows = (
            GoldenRecord.objects.filter(**{f"{relation}_id__in": ids})
            .exclude(status=GoldenStatus.MERGED)
            .order_by()
            .values(f"{relation}_id", "entity_type")
            .annotate(n=Count("pk"))
        )
        for row in rows:
            label = RELATED_LABELS.get((relation, row["entity_type"]), row["entity_type"])
            counts = found[row[f"{relation}_id"]].counts
            counts[label] = counts.get(label, 0) + row["n"]
    pointing = Q()
    for relation in GoldenRecord.RELATION_FIELDS:
        pointing |= Q(**{f"{relation}_id__in": ids})
    rows = (
        GoldenRecord.objects.filter(pointing)
        .exclude(status=GoldenStatus.MERGED)
        .only("id", "entity_type", "display_name", "status", *GoldenRecord.RELATION_FIELDS)
        .order_by("entity_type", "display_name", "id")[
            : CANDIDATE_RELATED_LIMIT * len(GoldenRecord.RELATION_FIELDS) * max(len(ids), 1)
        ]
    )
    for row in rows:
        for relation in GoldenRecord.RELATION_FIELDS:
            target = getattr(row, f"{relation}_id")
            if target in found:
                label = RELATED_LABELS.get((relation, row.entity_type), row.entity_type)
                shown = found[target].shown.setdefault(label, [])
                if len(shown) < CANDIDATE_RELATED_LIMIT:
                    shown.append(row)
    for golden in goldens:
        for relation in GoldenRecord.RELATION_FIELDS:
            target = getattr(golden, relation, None)
            if target is not None:
                found[golden.pk].refers_to.append((relation, target))
    return found


@dataclass
class Side:
    """One golden record of a candidate: the record, its members (each with its summary
    values), what it relates to, and the member in the candidate's best pair."""

    golden: GoldenRecord
    members: list[RecordSummary]
    related: Related
    trigger_id: int


@dataclass
class SideBySideRow:
    field: str
    label: str
    left: Any
    left_source: str
    right: Any
    right_source: str
    merged: Any
    merged_source: str
    conflict: bool
    runner_ups: list[dict]
    tone: str  # how the model read the best pair's values of this field ("" when not read)


@dataclass
class CandidatePage:
    left: Side
    right: Side
    survivor: GoldenRecord
    loser: GoldenRecord
    preview: Preview
    rows: list[SideBySideRow]
    summary_labels: list[str]


def _source(entry: dict) -> str:
    if entry.get("rule") == "pin":
        return "pin"
    if entry.get("system"):
        return f"{entry['system']}:{entry.get('source_key', '')}"
    return ""


def candidate_page(candidate: MatchCandidate, tones: dict[str, str]) -> CandidatePage:
    """Both golden records of a candidate side by side — survived values with lineage, every
    member, relations — and the record a merge would make (`mdm.selectors.merge_preview`,
    the older record surviving, as a steward's merge does). `tones`: field → how the model
    read the best pair. A fixed number of queries, whatever the number of members or
    related records."""
    left_golden, right_golden = candidate.left_golden, candidate.right_golden
    entity = ENTITIES[candidate.entity_type]
    members = golden_members([left_golden.pk, right_golden.pk])
    related = related_of([left_golden, right_golden])
    survivor, loser = sorted((left_golden, right_golden), key=lambda g: (g.created_at, g.pk))
    preview = merge_preview(survivor, loser)
    rows = []
    for name in entity.survived_fields:
        left_entry = (left_golden.lineage or {}).get(name, {})
        right_entry = (right_golden.lineage or {}).get(name, {})
        merged_entry = preview.lineage.get(name, {})
        values = (left_entry.get("value"), right_entry.get("value"), merged_entry.get("value"))
        if all(v is None for v in values):
            continue
        rows.append(
            SideBySideRow(
                field=name,
                label=entity.field_label(name),
                left=values[0],
                left_source=_source(left_entry),
                right=values[1],
                right_source=_source(right_entry),
                merged=values[2],
                merged_source=_source(merged_entry),
                conflict=bool(merged_entry.get("runner_ups")),
                runner_ups=merged_entry.get("runner_ups", []),
                tone=tones.get(name, ""),
            )
        )

    def side(golden: GoldenRecord, trigger_id: int) -> Side:
        ordered = sorted(members.get(golden.pk, []), key=lambda m: (m.pk != trigger_id, m.pk))
        return Side(golden, [summarized(m) for m in ordered], related[golden.pk], trigger_id)

    return CandidatePage(
        left=side(left_golden, candidate.left_id),
        right=side(right_golden, candidate.right_id),
        survivor=survivor,
        loser=loser,
        preview=preview,
        rows=rows,
        summary_labels=[entity.field_label(name) for name in entity.summary],
    )


def merge_targets(golden: GoldenRecord, query: str, limit: int = 10) -> list[GoldenRecord]:
    """Active golden records of the same entity matching `query` by ID or name."""
    query = query.strip()
    if not query:
        return []
    return list(
        GoldenRecord.objects.filter(entity_type=golden.entity_type, status=GoldenStatus.ACTIVE)
        .filter(Q(pk__iexact=query) | Q(display_name__icontains=query) | Q(pk__istartswith=query))
        .exclude(pk=golden.pk)
        .order_by("display_name", "id")[:limit]
    )


def golden_members(golden_ids: Iterable[str]) -> dict[str, list[SourceRecord]]:
    members: dict[str, list[SourceRecord]] = defaultdict(list)
    rows = (
        SourceRecord.objects.filter(golden_id__in=list(golden_ids))
        .select_related("source_system")
        .order_by("source_system__code", "source_key")
    )
    for record in rows:
        members[cast(str, record.golden_id)].append(record)  # filtered on it: never None
    return members


# ------------------------------------------------------------------------------- history


@dataclass
class Change:
    field: str
    old: Any
    new: Any


@dataclass
class HistoryEntry:
    when: datetime
    kind: str
    object_label: str
    action: str
    who: str
    why: str
    correlation_id: str
    changes: list[Change]


ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
HistoryRow = Any  # a row of a simple-history table (its models are untyped)
SKIPPED_FIELDS = {"updated_at", "lineage", "match_keys", "payload_hash", "raw"}


def _tracked_fields(history_model: type[HistoryRow]) -> list[str]:
    model = history_model.instance_type
    return [f.attname for f in model._meta.concrete_fields if f.attname not in SKIPPED_FIELDS]


def _changes(fields: Sequence[str], old: HistoryRow | None, new: HistoryRow) -> list[Change]:
    changes = []
    for name in fields:
        before = getattr(old, name, None) if old is not None else None
        after = getattr(new, name, None)
        if before == after:
            continue
        if isinstance(before, dict) or isinstance(after, dict):
            before, after = before or {}, after or {}
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    changes.append(Change(f"{name}.{key}", before.get(key), after.get(key)))
        else:
            changes.append(Change(name, before, after))
    return changes


def _entry(
    row: HistoryRow,
    before: HistoryRow | None,
    fields: Sequence[str],
    kind: str,
    label: Callable[[HistoryRow], str],
) -> HistoryEntry:
    """One history row as an entry, with its field diff against `before` (None: first row)."""
    user = row.history_user.get_username() if row.history_user_id else ""
    return HistoryEntry(
        when=row.history_date,
        kind=kind,
        object_label=label(row),
        action=ACTIONS.get(row.history_type, row.history_type),
        who=getattr(row, "actor", "") or user,
        why=row.history_change_reason or "",
        correlation_id=getattr(row, "correlation_id", ""),
        changes=_changes(fields, before, row) if row.history_type != "-" else [],
    )


def history_entries(
    rows: Iterable[HistoryRow], kind: str, label: Callable[[HistoryRow], str]
) -> list[HistoryEntry]:
    """History rows (any tracked model) → entries with field diffs against the previous row
    of the same object. `rows` must hold every earlier row of each object it holds."""
    entries = []
    previous: dict[Any, Any] = {}
    fields = None
    for row in sorted(rows, key=lambda r: (r.history_date, r.history_id)):
        fields = fields or _tracked_fields(type(row))
        key = row.id
        before = previous.get(key)
        previous[key] = row
        entries.append(_entry(row, before, fields, kind, label))
    return entries


def golden_timeline(golden_id: str) -> list[HistoryEntry]:
    """Who changed what and why, for a golden record, its members (links), its pins and the
    steward decisions on its members — newest first."""
    member_ids = set(
        SourceRecord.history.filter(golden_id=golden_id).values_list("id", flat=True).distinct()
    )
    systems = dict(
        SourceRecord.objects.filter(pk__in=member_ids).values_list("pk", "source_system__code")
    )
    entries = history_entries(
        GoldenRecord.history.filter(id=golden_id).select_related("history_user"),
        "golden record",
        lambda r: r.id,
    )
    entries += history_entries(
        SourceRecord.history.filter(id__in=member_ids).select_related("history_user"),
        "source record",
        lambda r: f"{systems.get(r.id, '?')}:{r.source_key}",
    )
    entries += history_entries(
        StewardOverride.history.filter(golden_id=golden_id).select_related("history_user"),
        "pin",
        lambda r: f"pin {r.attribute}",
    )
    entries += history_entries(
        MatchDecision.history.filter(
            Q(left_id__in=member_ids)
            | Q(right_id__in=member_ids)
            | Q(left_golden_id=golden_id)
            | Q(right_golden_id=golden_id)
        ).select_related("history_user"),
        "decision",
        lambda r: f"pair {r.left_id}~{r.right_id}: {r.verdict}",
    )
    return sorted(entries, key=lambda e: e.when, reverse=True)


# Audit log: kind -> (history manager, label of a row)
def audit_sources() -> dict[str, tuple[Any, Any]]:
    return {
        "golden": (GoldenRecord.history, lambda r: f"{r.id} {r.display_name}"),
        "source": (SourceRecord.history, lambda r: f"{r.entity_type} {r.source_key}"),
        "decision": (
            MatchDecision.history,
            lambda r: f"{r.entity_type} pair {r.left_id}~{r.right_id}: {r.verdict}",
        ),
        "rule": (SurvivorshipRule.history, lambda r: f"{r.entity_type}.{r.attribute}"),
        "pin": (StewardOverride.history, lambda r: f"{r.golden_id}.{r.attribute}"),
        "sample": (AutoLinkSample.history, lambda r: f"sample #{r.id}: {r.verdict}"),
    }


def audit_page(kind: str, page_rows: Sequence) -> list[HistoryEntry]:
    """Entries for one page of history rows, each diffed against its object's previous row
    (one extra query for the whole page)."""
    manager, label = audit_sources()[kind]
    if not page_rows:
        return []
    ids = {r.id for r in page_rows}
    latest = max(r.history_date for r in page_rows)
    earlier = manager.filter(id__in=ids, history_date__lte=latest).order_by(
        "id", "history_date", "history_id"
    )
    by_object: dict[Any, list] = defaultdict(list)
    for row in earlier:
        by_object[row.id].append(row)
    fields = _tracked_fields(type(page_rows[0]))
    entries = []
    for row in page_rows:
        chain = by_object.get(row.id, [])
        position = next((i for i, r in enumerate(chain) if r.history_id == row.history_id), 0)
        before = chain[position - 1] if position > 0 else None
        entries.append(_entry(row, before, fields, kind, label))
    return entries


# ---------------------------------------------------------------------------- integrations


def mapping_versions() -> dict[str, str]:
    """MAPPING VERSION SLOT: source system code -> its active canonical mappings' versions in
    words ("customer v3 · product v1"), for the Integrations page. Read from
    `mdm.selectors.mapping_versions()` ({(system code, entity type): version}) once source
    mappings (issue 16, item 1) are there; until then every system shows "—"."""
    from mdm import selectors as mdm_selectors

    reader = getattr(mdm_selectors, "mapping_versions", None)
    if reader is None:
        return {}
    by_system: dict[str, list[str]] = defaultdict(list)
    for (system_code, entity_type), version in sorted(reader().items()):
        by_system[system_code].append(f"{entity_type} v{version}")
    return {code: " · ".join(parts) for code, parts in by_system.items()}


@dataclass
class IntegrationRow:
    """One source system on the Integrations page."""

    activity: SourceActivity
    open_rejections: int
    mapping_version: str | None
    token_last_used: datetime | None
    has_token: bool
    subscriptions: list[SubscriptionLag] = field(default_factory=list)

    @property
    def system(self) -> SourceSystem:
        return self.activity.system

    @property
    def dead_letters(self) -> int:
        return sum(lag.dead_letters for lag in self.subscriptions)


@dataclass
class IntegrationsOverview:
    rows: list[IntegrationRow]
    subscriptions: list[SubscriptionLag]


def integrations_overview(*, now: datetime | None = None) -> IntegrationsOverview:
    """Every source system with its last day of ingest, open rejections, mapping version,
    token use and subscriptions; and every subscription's lag. A fixed number of queries
    plus two per subscription with an undispatched backlog (`api.selectors.subscription_lags`)."""
    now = now or timezone.now()
    rejections: dict[str, int] = defaultdict(int)
    for group in open_rejections_by_source():
        rejections[group.source_system] += group.count
    lags = subscription_lags(now=now)
    tokens = tokens_last_used()
    versions = mapping_versions()
    rows = [
        IntegrationRow(
            activity=activity,
            open_rejections=rejections.get(activity.system.code, 0),
            mapping_version=versions.get(activity.system.code),
            token_last_used=tokens.get(activity.system.pk),
            has_token=activity.system.pk in tokens,
            subscriptions=[lag for lag in lags if lag.subscription.owner_id == activity.system.pk],
        )
        for activity in source_activity(now=now)
    ]
    return IntegrationsOverview(rows=rows, subscriptions=lags)
