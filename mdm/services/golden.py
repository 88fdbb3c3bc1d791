"""Recomputing golden records: survivorship, relations, status — and writing the result with
history and events. Every service that changes membership (ingest, link, merge, split, pin)
ends here, so there is one place that decides what a golden record says.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db import transaction

from mdm.entities import ENTITIES, EntityType, get_entity
from mdm.models import (
    GoldenRecord,
    GoldenStatus,
    SourceRecord,
    SourceReference,
    SourceSystem,
    StewardOverride,
    SurvivorshipRule,
)
from mdm.services import events
from mdm.services.audit import Actor, bulk_create_tracked, bulk_update_tracked
from mdm.survivorship import Candidate, Pin, Rule, survive

# (target entity, source system code, source key) -> golden id
XrefKey = tuple[str, str, str]

GOLDEN_FIELDS = ("status", "display_name", "values", "lineage", *GoldenRecord.RELATION_FIELDS)
# The same, as attributes that never touch the database (relations by id).
_STATE = (
    "status",
    "display_name",
    "values",
    "lineage",
    *(f"{r}_id" for r in GoldenRecord.RELATION_FIELDS),
)


@dataclass
class SurvivorshipInputs:
    """Rules and rankings loaded once per operation, shared by every golden record it touches."""

    rules: dict[str, dict[str, Rule]] = field(default_factory=dict)
    system_rank: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, entity_types: Iterable[str]) -> SurvivorshipInputs:
        inputs = cls(system_rank=dict(SourceSystem.objects.values_list("code", "trust_rank")))
        stored = defaultdict(dict)
        for rule in SurvivorshipRule.objects.filter(entity_type__in=set(entity_types)):
            stored[rule.entity_type][rule.attribute] = Rule(rule.strategy, tuple(rule.system_order))
        for name in set(entity_types):
            entity = get_entity(name)
            inputs.rules[name] = {
                f: stored[name].get(f) or Rule(entity.default_strategy(f))
                for f in entity.survived_fields
            }
        return inputs


def candidate_for(record: SourceRecord) -> Candidate:
    return Candidate(
        record_id=record.pk,
        system=record.source_system.code,
        source_key=record.source_key,
        observed_at=record.observed_at,
        values={**record.attributes, **record.references},
    )


def apply_survivorship(
    goldens: Sequence[GoldenRecord],
    members: Mapping[str, Sequence[SourceRecord]],
    *,
    inputs: SurvivorshipInputs,
    pins: Mapping[str, Mapping[str, Pin]] | None = None,
    pending_xref: Mapping[XrefKey, str] | None = None,
) -> list[GoldenRecord]:
    """Set values, lineage, display name, relations and status of `goldens` from their live
    `members`; return those whose stored state changed. Writes nothing."""
    pins = pins or {}
    survived = {}
    for golden in goldens:
        entity = get_entity(golden.entity_type)
        live = [m for m in members.get(golden.id, ()) if not m.deleted]
        survived[golden.id] = survive(
            fields=entity.survived_fields,
            candidates=[candidate_for(m) for m in live],
            rules=inputs.rules[golden.entity_type],
            pins=pins.get(golden.id, {}),
            system_rank=inputs.system_rank,
        )
    targets = _resolve_references(goldens, survived, pending_xref or {})
    changed = []
    for golden in goldens:
        entity = get_entity(golden.entity_type)
        result = survived[golden.id]
        before = tuple(getattr(golden, f) for f in _STATE)
        golden.values = {k: v for k, v in result.values.items() if k in entity.attribute_names}
        golden.lineage = result.lineage
        golden.display_name = entity.display_name(golden.values)
        for reference in entity.references:
            setattr(golden, f"{reference.relation}_id", targets.get((golden.id, reference.column)))
        has_live = any(not m.deleted for m in members.get(golden.id, ()))
        if golden.status == GoldenStatus.ACTIVE and not has_live:
            golden.status = GoldenStatus.RETIRED
        elif golden.status == GoldenStatus.RETIRED and has_live:
            golden.status = GoldenStatus.ACTIVE
        if tuple(getattr(golden, f) for f in _STATE) != before or golden._state.adding:
            changed.append(golden)
    return changed


def _resolve_references(goldens, survived, pending_xref) -> dict[tuple[str, str], str | None]:
    """Map (golden id, reference column) to the golden id the survived key points at."""
    wanted: dict[tuple[str, str], XrefKey] = {}
    for golden in goldens:
        for reference in get_entity(golden.entity_type).references:
            lineage = survived[golden.id].lineage.get(reference.column)
            if lineage and lineage.get("system"):
                wanted[(golden.id, reference.column)] = (
                    reference.target,
                    lineage["system"],
                    str(lineage["value"]),
                )
    found = dict(pending_xref)
    missing = defaultdict(set)
    for key in wanted.values():
        if key not in found:
            missing[(key[0], key[1])].add(key[2])
    for (target, system), keys in missing.items():
        rows = SourceRecord.objects.filter(
            entity_type=target, source_system__code=system, source_key__in=keys
        ).values_list("source_key", "golden_id")
        for source_key, golden_id in rows:
            found[(target, system, source_key)] = golden_id
    return {slot: found.get(key) for slot, key in wanted.items()}


def load_members(golden_ids: Iterable[str]) -> dict[str, list[SourceRecord]]:
    members = defaultdict(list)
    records = SourceRecord.objects.filter(golden_id__in=list(golden_ids)).select_related(
        "source_system"
    )
    for record in records.order_by("pk"):
        members[record.golden_id].append(record)
    return members


def load_pins(golden_ids: Iterable[str]) -> dict[str, dict[str, Pin]]:
    pins: dict[str, dict[str, Pin]] = defaultdict(dict)
    for pin in StewardOverride.objects.filter(golden_id__in=list(golden_ids)).select_related(
        "pinned_by"
    ):
        who = pin.pinned_by.get_username() if pin.pinned_by else ""
        pins[pin.golden_id][pin.attribute] = Pin(pin.value, pin.reason, who)
    return pins


def lock_goldens(golden_ids: Iterable[str]) -> list[GoldenRecord]:
    """Lock golden records in id order (a fixed order, so concurrent services never deadlock)."""
    return list(
        GoldenRecord.objects.select_for_update().filter(id__in=set(golden_ids)).order_by("id")
    )


def recompute_goldens(
    *, golden_ids: Iterable[str], actor: Actor, reason: str
) -> list[GoldenRecord]:
    """Recompute and store the given golden records (merged ones are skipped: they have no
    members). Returns the records that changed; each change gets a history row and an event."""
    golden_ids = set(golden_ids)
    if not golden_ids:
        return []
    with transaction.atomic():
        goldens = [g for g in lock_goldens(golden_ids) if g.status != GoldenStatus.MERGED]
        if not goldens:
            return []
        inputs = SurvivorshipInputs.load({g.entity_type for g in goldens})
        ids = [g.id for g in goldens]
        before = {g.id: _snapshot(g) for g in goldens}
        changed = apply_survivorship(goldens, load_members(ids), inputs=inputs, pins=load_pins(ids))
        bulk_update_tracked(GoldenRecord, changed, GOLDEN_FIELDS, actor=actor, reason=reason)
        events.emit_many(
            [events.golden_updated(g, before=before[g.id]) for g in changed], actor=actor
        )
    return changed


def create_goldens(
    goldens: Sequence[GoldenRecord],
    members: Mapping[str, Sequence[SourceRecord]],
    *,
    inputs: SurvivorshipInputs,
    pending_xref: Mapping[XrefKey, str],
    actor: Actor,
    reason: str,
) -> None:
    """Survive and insert new golden records (ids already assigned) in bulk, with events."""
    apply_survivorship(goldens, members, inputs=inputs, pending_xref=pending_xref)
    bulk_create_tracked(GoldenRecord, goldens, actor=actor, reason=reason)
    events.emit_many(
        [events.golden_created(g, members.get(g.id, ())) for g in goldens], actor=actor
    )


def referrer_goldens(entity_type: str, system_id: int, keys: Iterable[str]) -> set[str]:
    """Golden records whose members reference any of these (entity, system, key)."""
    rows = SourceReference.objects.filter(
        target_entity=entity_type, source_system_id=system_id, target_key__in=list(keys)
    ).values_list("referrer__golden_id", flat=True)
    return {golden_id for golden_id in rows if golden_id}


def dependents_of(golden_ids: Iterable[str]) -> set[str]:
    """Golden records with a relation pointing at any of `golden_ids`."""
    golden_ids = list(golden_ids)
    found: set[str] = set()
    for relation in GoldenRecord.RELATION_FIELDS:
        found.update(
            GoldenRecord.objects.filter(**{f"{relation}_id__in": golden_ids}).values_list(
                "id", flat=True
            )
        )
    return found


def _snapshot(golden: GoldenRecord) -> dict:
    return {"status": golden.status, "values": dict(golden.values)}


def entity_of(golden: GoldenRecord) -> EntityType:
    return ENTITIES[golden.entity_type]
