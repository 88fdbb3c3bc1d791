"""Reads: golden records (following merges), cross-references, "as of" history, and the
previews of a merge or a split (what survivorship would produce; nothing written)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, Sum

from mdm.entities import get_entity
from mdm.errors import GoldenRecordNotFound, InvalidResolution
from mdm.mappings import CompiledMapping, compile_mapping
from mdm.models import (
    GoldenRecord,
    GoldenStatus,
    IngestRejection,
    IngestVolume,
    MatchRequest,
    RejectionStatus,
    SourceMapping,
    SourceRecord,
    SourceSystem,
)
from mdm.services.golden import (
    SurvivorshipInputs,
    load_live_candidates,
    load_pins,
    survive_goldens,
)
from mdm.survivorship import Candidate, Pin

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


# ---------------------------------------------------------------------------------- previews


@dataclass
class Preview:
    """The golden record survivorship would produce: values, lineage (runner-ups mark the
    fields whose sources disagree), display name and relations, from `record_ids`."""

    golden_id: str
    display_name: str
    values: dict
    lineage: dict
    relations: dict[str, str | None]
    record_ids: list[int]

    @property
    def conflicts(self) -> list[str]:
        """Fields whose sources disagree (a rule, not agreement, picked the value)."""
        return [name for name, entry in self.lineage.items() if entry.get("runner_ups")]


def _preview(
    golden_id: str,
    entity_type: str,
    candidates: list[Candidate],
    pins: dict[str, Pin],
    inputs: SurvivorshipInputs,
) -> Preview:
    draft = GoldenRecord(id=golden_id, entity_type=entity_type, status=GoldenStatus.ACTIVE)
    survive_goldens([draft], {golden_id: candidates}, inputs=inputs, pins={golden_id: pins})
    return Preview(
        golden_id=golden_id,
        display_name=draft.display_name,
        values=draft.values,
        lineage=draft.lineage,
        relations={r: getattr(draft, f"{r}_id") for r in GoldenRecord.RELATION_FIELDS},
        record_ids=[c.record_id for c in candidates],
    )


def merge_preview(survivor: GoldenRecord, loser: GoldenRecord) -> Preview:
    """What `loser` merged into `survivor` would say: survivorship over both records' live
    members, the survivor's pins beating the loser's (as a merge moves them). Writes nothing;
    a fixed number of queries."""
    if survivor.entity_type != loser.entity_type:
        raise InvalidResolution(f"cannot merge a {loser.entity_type} into a {survivor.entity_type}")
    ids = [survivor.pk, loser.pk]
    live = load_live_candidates(ids)
    pins = load_pins(ids)
    candidates = sorted(live.get(survivor.pk, []) + live.get(loser.pk, []), key=_record_id)
    return _preview(
        survivor.pk,
        survivor.entity_type,
        candidates,
        {**pins.get(loser.pk, {}), **pins.get(survivor.pk, {})},
        SurvivorshipInputs.load({survivor.entity_type}),
    )


def split_preview(golden: GoldenRecord, record_ids: Iterable[int]) -> tuple[Preview, Preview]:
    """What splitting `record_ids` out of `golden` would leave (pins stay with it) and create.
    Writes nothing; a fixed number of queries."""
    moving = set(record_ids)
    live = load_live_candidates([golden.pk]).get(golden.pk, [])
    inputs = SurvivorshipInputs.load({golden.entity_type})
    staying = [c for c in live if c.record_id not in moving]
    leaving = [c for c in live if c.record_id in moving]
    pins = load_pins([golden.pk]).get(golden.pk, {})
    return (
        _preview(golden.pk, golden.entity_type, staying, pins, inputs),
        _preview("(new)", golden.entity_type, leaving, {}, inputs),
    )


def _record_id(candidate: Candidate) -> int:
    return candidate.record_id


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


@dataclass(frozen=True)
class ConflictingGolden:
    """An active golden record whose live members hold two different valid identifiers of
    one kind (kind → the values, sorted): from before the constraint, or a steward's merge."""

    golden_id: str
    conflicts: dict[str, tuple[str, ...]]


def conflicting_identifier_goldens(entity: str) -> list[ConflictingGolden]:
    """Every active golden record of `entity` holding conflicting hard identifiers, by ID.
    One pass over the live members that carry an identifier attribute."""
    from mdm import identifiers

    declared = get_entity(entity).identifiers
    if not declared:
        return []
    names = sorted({i.attribute for i in declared})
    rows = (
        SourceRecord.objects.filter(
            entity_type=entity,
            deleted=False,
            golden__status=GoldenStatus.ACTIVE,
            attributes__has_any_keys=names,
        )
        .values_list("golden_id", "source_system__code", "attributes")
        .order_by()
        .iterator(chunk_size=5000)
    )
    held: dict[str, dict[str, set[str]]] = {}
    for golden_id, system, attributes in rows:
        for kind, value in identifiers.identifiers(
            entity, attributes, source_system=system
        ).items():
            held.setdefault(golden_id, {}).setdefault(kind, set()).add(value)
    found = []
    for golden_id in sorted(held):
        conflicts = {k: tuple(sorted(v)) for k, v in held[golden_id].items() if len(v) > 1}
        if conflicts:
            found.append(ConflictingGolden(golden_id, conflicts))
    return found


STREAMED_MEMBERS = 10_000  # `held_identifiers` streams the rows of more members than this


def _members_with(
    entity: str,
    membership: Mapping[int, str],
    golden_ids: Collection[str],
    *,
    present: Collection[str],
    read: Collection[str],
) -> Iterator[tuple[int, str, str, list[Any]]]:
    """(record id, source system, golden ID, the values of `read` in order) of the members of
    golden records `golden_ids` as `membership` (record id → golden ID) says that carry any
    attribute of `present`: one query, only those attributes read, streamed (a server-side
    cursor) past STREAMED_MEMBERS members — a batch run; a neighbourhood is one round trip."""
    from django.db.models.fields.json import KT

    from mdm.db.ids import narrowed

    wanted = set(golden_ids)
    members = [pk for pk, golden_id in membership.items() if golden_id in wanted]
    records, keep = narrowed(
        SourceRecord.objects.filter(entity_type=entity, attributes__has_any_keys=sorted(present)),
        "id",
        members,
    )
    columns = {f"member_{name}": KT(f"attributes__{name}") for name in read}
    rows = records.annotate(**columns).values_list("pk", "source_system__code", *columns)
    if len(members) > STREAMED_MEMBERS:
        rows = rows.order_by().iterator(chunk_size=10_000)
    else:
        rows = rows.order_by()
    for pk, system, *values in rows:
        golden_id = membership.get(pk)
        if (keep is None or pk in keep) and golden_id in wanted:
            yield pk, system, golden_id, values


def held_identifiers(
    entity: str, membership: Mapping[int, str], golden_ids: Collection[str]
) -> dict[str, dict[str, set[str]]]:
    """Golden ID → identifier kind → the valid values its records hold, for the golden
    records `golden_ids` and their members as `membership` (record id → golden ID) says —
    what clustering's identifier constraint reads (`_members_with`)."""
    from mdm import identifiers

    declared = get_entity(entity).identifiers
    if not declared or not golden_ids:
        return {}
    names = sorted({i.attribute for i in declared} | {i.country for i in declared if i.country})
    present = {i.attribute for i in declared}
    held: dict[str, dict[str, set[str]]] = {}
    for _pk, system, golden_id, values in _members_with(
        entity, membership, golden_ids, present=present, read=names
    ):
        attributes = dict(zip(names, values, strict=True))
        for kind, value in identifiers.identifiers(
            entity, attributes, source_system=system
        ).items():
            held.setdefault(golden_id, {}).setdefault(kind, set()).add(value)
    return held


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def held_dates(
    entity: str, membership: Mapping[int, str], golden_ids: Collection[str]
) -> dict[int, str]:
    """Record id → its date of birth (the entity's `birth_date`, a valid ISO date), for the
    members of golden records `golden_ids` as `membership` says — what clustering's date
    constraint reads (`_members_with`). Records without one (or with a value kept raw as no
    date) are left out."""
    attribute = get_entity(entity).birth_date
    if not attribute or not golden_ids:
        return {}
    return {
        pk: value
        for pk, _system, _golden_id, (value,) in _members_with(
            entity, membership, golden_ids, present=[attribute], read=[attribute]
        )
        if isinstance(value, str) and _ISO_DAY.fullmatch(value)
    }


def identifier_conflict(entity: str, left_id: str, right_id: str) -> str:
    """What merging golden records `left_id` and `right_id` would override: "conflicting tax
    IDs: DE136695976 / GB980780684" (`mdm.identifiers.conflicts` over the identifiers their
    live members hold), or "" when nothing conflicts. A steward's merge over it needs a
    reason and a second steward (`stewardship.teamwork`)."""
    from mdm import identifiers

    membership = dict(
        SourceRecord.objects.filter(golden_id__in=(left_id, right_id), deleted=False).values_list(
            "pk", "golden_id"
        )
    )
    held = held_identifiers(entity, membership, (left_id, right_id))
    left, right = held.get(left_id, {}), held.get(right_id, {})
    kinds = sorted(k for k in left.keys() & right.keys() if len(left[k] | right[k]) > 1)
    return "; ".join(
        f"conflicting {identifiers.label(entity, k)}: " + " / ".join(sorted(left[k] | right[k]))
        for k in kinds
    )


@dataclass(frozen=True)
class OpenRejections:
    """Rejections waiting for an operator, per source system and entity type."""

    source_system: str
    entity_type: str
    count: int
    oldest: datetime


def open_rejections_by_source() -> list[OpenRejections]:
    """Open rejections per (system, entity type): one grouped query over the open ones."""
    rows = (
        IngestRejection.objects.filter(status=RejectionStatus.OPEN)
        .order_by()
        .values("source_system", "entity_type")
        .annotate(count=Count("id"), oldest=Min("created_at"))
    )
    return [
        OpenRejections(row["source_system"], row["entity_type"], row["count"], row["oldest"])
        for row in rows
    ]


def open_rejections_of(system_code: str, *, limit: int = 20) -> list[IngestRejection]:
    """The latest open rejections of one source system (newest first)."""
    return list(
        IngestRejection.objects.filter(
            status=RejectionStatus.OPEN, source_system=system_code
        ).order_by("-created_at", "-id")[:limit]
    )


@dataclass
class SourceActivity:
    """One source system's ingest over a window: per hour (oldest first) what arrived and
    what was rejected, and when a record of it was last seen (ever)."""

    system: SourceSystem
    hours: list[datetime]
    received: list[int]
    rejected: list[int]
    last_seen_at: datetime | None

    @property
    def received_total(self) -> int:
        return sum(self.received)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected)


def source_activity(*, now: datetime, hours: int = 24) -> list[SourceActivity]:
    """Every source system's hourly volumes over the last `hours` hours (the current hour
    included) from the hourly tallies: three queries whatever the volumes."""
    current = now.replace(minute=0, second=0, microsecond=0)
    window = [current - timedelta(hours=back) for back in range(hours - 1, -1, -1)]
    systems = list(SourceSystem.objects.order_by("trust_rank", "code"))
    received: dict[tuple[int, datetime], int] = defaultdict(int)
    rejected: dict[tuple[int, datetime], int] = defaultdict(int)
    for row in IngestVolume.objects.filter(hour__gte=window[0]).values(
        "source_system_id", "hour", "loaded", "updated", "unchanged", "stale", "deleted", "rejected"
    ):
        key = (row["source_system_id"], row["hour"])
        received[key] += sum(row[n] for n in ("loaded", "updated", "unchanged", "stale", "deleted"))
        received[key] += row["rejected"]
        rejected[key] += row["rejected"]
    last_seen = dict(
        IngestVolume.objects.order_by()
        .values("source_system_id")
        .annotate(last=Max("last_seen_at"))
        .values_list("source_system_id", "last")
    )
    return [
        SourceActivity(
            system=system,
            hours=window,
            received=[received[(system.pk, hour)] for hour in window],
            rejected=[rejected[(system.pk, hour)] for hour in window],
            last_seen_at=last_seen.get(system.pk),
        )
        for system in systems
    ]


def active_mapping(*, system_code: str, entity_type: str) -> CompiledMapping | None:
    """The mapping ingest applies to the system's records of this entity type, or None when
    the system sends canonical records. A stored version was checked when it was saved."""
    stored = (
        SourceMapping.objects.filter(
            source_system__code=system_code, entity_type=entity_type, active=True
        )
        .only("spec", "version", "entity_type")
        .first()
    )
    if stored is None:
        return None
    return compile_mapping(stored.spec, entity_type=entity_type, version=stored.version)


def mapping_versions() -> dict[tuple[str, str], int]:
    """{(system code, entity type): active mapping version}, for the Integrations page."""
    return {
        (code, entity_type): version
        for code, entity_type, version in SourceMapping.objects.filter(active=True).values_list(
            "source_system__code", "entity_type", "version"
        )
    }
