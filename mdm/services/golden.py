"""Recomputing golden records: survivorship, relations, status — and writing the result with
history and events. Every service that changes membership (ingest, link, merge, split, pin)
ends here, so there is one place that decides what a golden record says.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from mdm.db.copy import insert_history_of_rows
from mdm.db.fields import column_field
from mdm.db.ids import ids_in
from mdm.db.update import update_values
from mdm.entities import ENTITIES, NAMED_AFTER, EntityType, get_entity
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
from mdm.services.audit import Actor, _history_meta, bulk_create_tracked
from mdm.survivorship import Candidate, Pin, Rule, Survived, survive

# (target entity, source system code, source key) -> golden id
XrefKey = tuple[str, str, str]

# What a recompute writes. `updated_at` moves with every write: a bulk UPDATE does not fire
# `auto_now`, and `updated_since` readers rely on it seeing every change.
GOLDEN_FIELDS = (
    "status",
    "display_name",
    "values",
    "lineage",
    "has_conflicts",
    *GoldenRecord.RELATION_FIELDS,
    "updated_at",
)
# What survivorship decides, as attributes that never touch the database (relations by id).
_STATE = (
    "status",
    "display_name",
    "values",
    "lineage",
    "has_conflicts",
    *(f"{r}_id" for r in GoldenRecord.RELATION_FIELDS),
)


# The primary key and GOLDEN_FIELDS as attributes: a changed golden record as an update row.
_ROW = ("id", *(column_field(GoldenRecord, f).attname for f in GOLDEN_FIELDS))


@dataclass
class SurvivorshipInputs:
    """Rules and rankings loaded once per operation, shared by every golden record it touches."""

    rules: dict[str, dict[str, Rule]] = field(default_factory=dict)
    system_rank: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, entity_types: Iterable[str]) -> SurvivorshipInputs:
        inputs = cls(system_rank=dict(SourceSystem.objects.values_list("code", "trust_rank")))
        stored: defaultdict[str, dict[str, Rule]] = defaultdict(dict)
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
    live = {
        golden.id: [candidate_for(m) for m in members.get(golden.id, ()) if not m.deleted]
        for golden in goldens
    }
    return survive_goldens(goldens, live, inputs=inputs, pins=pins, pending_xref=pending_xref)


def survive_goldens(
    goldens: Sequence[GoldenRecord],
    live: Mapping[str, Sequence[Candidate]],
    *,
    inputs: SurvivorshipInputs,
    pins: Mapping[str, Mapping[str, Pin]] | None = None,
    pending_xref: Mapping[XrefKey, str] | None = None,
) -> list[GoldenRecord]:
    """`apply_survivorship` over candidates already reduced from the live members (in record
    id order). Writes nothing."""
    pins = pins or {}
    survived = {}
    for golden in goldens:
        entity = get_entity(golden.entity_type)
        survived[golden.id] = survive(
            fields=entity.survived_fields,
            candidates=live.get(golden.id, ()),
            rules=inputs.rules[golden.entity_type],
            pins=pins.get(golden.id, {}),
            system_rank=inputs.system_rank,
            groups=entity.survivorship_groups,
        )
    targets = _resolve_references(goldens, survived, pending_xref or {})
    names = _display_names(goldens, targets)
    changed = []
    for golden in goldens:
        entity = get_entity(golden.entity_type)
        result = survived[golden.id]
        before = tuple(getattr(golden, f) for f in _STATE)
        golden.values = {k: v for k, v in result.values.items() if k in entity.attribute_names}
        golden.lineage = result.lineage
        golden.has_conflicts = any(entry.get("runner_ups") for entry in result.lineage.values())
        for reference in entity.references:
            setattr(golden, f"{reference.relation}_id", targets.get((golden.id, reference.column)))
        related = {r: names.get(getattr(golden, f"{r}_id")) for r in entity.display_relations}
        golden.display_name = entity.display_name(golden.values, related)
        has_live = bool(live.get(golden.id))
        if golden.status == GoldenStatus.ACTIVE and not has_live:
            golden.status = GoldenStatus.RETIRED
        elif golden.status == GoldenStatus.RETIRED and has_live:
            golden.status = GoldenStatus.ACTIVE
        if tuple(getattr(golden, f) for f in _STATE) != before or golden._state.adding:
            changed.append(golden)
    return changed


def _display_names(
    goldens: Sequence[GoldenRecord], targets: Mapping[tuple[str, str], str | None]
) -> dict[str, str]:
    """Display names of the golden records that `goldens` are named after (an entitlement
    after its product and customer): one query, none when no entity names a relation."""
    wanted = set()
    for golden in goldens:
        entity = get_entity(golden.entity_type)
        for reference in entity.references:
            if reference.relation in entity.display_relations:
                wanted.add(targets.get((golden.id, reference.column)))
    wanted.discard(None)
    if not wanted:
        return {}
    rows = GoldenRecord.objects.filter(ids_in(GoldenRecord, "id", wanted))
    return dict(rows.values_list("id", "display_name"))


def _resolve_references(
    goldens: Sequence[GoldenRecord],
    survived: Mapping[str, Survived],
    pending_xref: Mapping[XrefKey, str],
) -> dict[tuple[str, str], str | None]:
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
    members: defaultdict[str, list[SourceRecord]] = defaultdict(list)
    records = SourceRecord.objects.filter(
        ids_in(SourceRecord, "golden", golden_ids)
    ).select_related("source_system")
    for record in records.order_by("pk"):
        members[cast(str, record.golden_id)].append(record)  # filtered on it: never None
    return members


def load_live_candidates(golden_ids: Iterable[str]) -> dict[str, list[Candidate]]:
    """The live members of these golden records as survivorship candidates, in record id
    order — the same as `candidate_for` over `load_members`, reading only the columns
    survivorship uses (not the raw payload, match keys or extras)."""
    live: dict[str, list[Candidate]] = defaultdict(list)
    rows = (
        SourceRecord.objects.filter(ids_in(SourceRecord, "golden", golden_ids), deleted=False)
        .order_by("pk")
        .values_list(
            "pk",
            "golden_id",
            "source_system__code",
            "source_key",
            "source_updated_at",
            "updated_at",
            "received_at",
            "attributes",
            "references",
        )
    )
    for pk, golden_id, system, key, source_updated, updated, received, attrs, refs in rows:
        live[golden_id].append(
            Candidate(
                record_id=pk,
                system=system,
                source_key=key,
                observed_at=source_updated or updated or received,
                values={**attrs, **refs},
            )
        )
    return live


def load_pins(golden_ids: Iterable[str]) -> dict[str, dict[str, Pin]]:
    pins: dict[str, dict[str, Pin]] = defaultdict(dict)
    for pin in StewardOverride.objects.filter(
        ids_in(StewardOverride, "golden", golden_ids)
    ).select_related("pinned_by"):
        who = pin.pinned_by.get_username() if pin.pinned_by else ""
        pins[pin.golden_id][pin.attribute] = Pin(pin.value, pin.reason, who)
    return pins


def lock_goldens(golden_ids: Iterable[str]) -> list[GoldenRecord]:
    """Lock golden records in id order (a fixed order, so concurrent services never deadlock)."""
    return list(
        GoldenRecord.objects.select_for_update()
        .filter(ids_in(GoldenRecord, "id", set(golden_ids)))
        .order_by("id")
    )


@dataclass
class Recomputed:
    """What `recompute` did: every golden record it recomputed (merged ones are skipped), the
    ones whose stored state changed, and the live members it survived them from."""

    goldens: dict[str, GoldenRecord] = field(default_factory=dict)
    changed: list[GoldenRecord] = field(default_factory=list)
    live: dict[str, list[Candidate]] = field(default_factory=dict)


def recompute(
    *,
    golden_ids: Iterable[str],
    actor: Actor,
    reason: str,
    members_changed: Iterable[str] = (),
) -> Recomputed:
    """Recompute and store the given golden records (merged ones are skipped: they have no
    members). A record is written when survivorship changed what it says (values, lineage,
    relations, status) or when it is in `members_changed` (its live members changed: a merge,
    link, split, tombstone or revival, even when the survived values stay the same). Each
    written record gets `updated_at` = now, a history row and a `golden.updated` event
    (`changed` names the values that changed, possibly none); all are written with one
    UPDATE (`update_with_history`)."""
    golden_ids = set(golden_ids) | set(members_changed)
    if not golden_ids:
        return Recomputed()
    members_changed = set(members_changed)
    with transaction.atomic():
        goldens = [g for g in lock_goldens(golden_ids) if g.status != GoldenStatus.MERGED]
        if not goldens:
            return Recomputed()
        inputs = SurvivorshipInputs.load({g.entity_type for g in goldens})
        ids = [g.id for g in goldens]
        before = {g.id: _snapshot(g) for g in goldens}
        live = load_live_candidates(ids)
        changed = survive_goldens(goldens, live, inputs=inputs, pins=load_pins(ids))
        written = {g.id for g in changed}
        changed += [g for g in goldens if g.id in members_changed and g.id not in written]
        now = timezone.now()
        for golden in changed:
            golden.updated_at = now
        update_with_history(
            GoldenRecord,
            GOLDEN_FIELDS,
            [tuple(getattr(g, a) for a in _ROW) for g in changed],
            actor=actor,
            reason=reason,
        )
        events.emit_many(
            [events.golden_updated(g, before=before[g.id]) for g in changed], actor=actor
        )
        renamed = [g.id for g in changed if g.display_name != before[g.id]["display_name"]]
        named_after = named_after_any(renamed) - set(ids)
        if named_after:  # their display names read the renamed ones
            recompute(golden_ids=named_after, actor=actor, reason=reason)
    return Recomputed(goldens={g.id: g for g in goldens}, changed=changed, live=live)


def recompute_goldens(
    *,
    golden_ids: Iterable[str],
    actor: Actor,
    reason: str,
    members_changed: Iterable[str] = (),
) -> list[GoldenRecord]:
    """`recompute`, returning the records it wrote."""
    return recompute(
        golden_ids=golden_ids, actor=actor, reason=reason, members_changed=members_changed
    ).changed


def update_with_history(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[tuple],
    *,
    actor: Actor,
    reason: str,
) -> None:
    """What `bulk_update_tracked` does, for rows given as (primary key, *values of `fields`):
    one UPDATE, then one "~" history row per row, stamped the same way, copied from the
    updated rows (INSERT ... SELECT) instead of encoded again from Python."""
    if not rows:
        return
    update_values(model, fields, rows)
    insert_history_of_rows(model, [row[0] for row in rows], meta=_history_meta(actor, reason, "~"))


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
    """Golden records with a relation pointing at any of `golden_ids` (one query)."""
    golden_ids = list(golden_ids)
    if not golden_ids:
        return set()
    related = Q()
    for relation in GoldenRecord.RELATION_FIELDS:
        related |= ids_in(GoldenRecord, relation, golden_ids)
    return set(GoldenRecord.objects.filter(related).values_list("id", flat=True))


def named_after_any(golden_ids: Iterable[str]) -> set[str]:
    """Active golden records whose display names include one of `golden_ids`' (an
    entitlement names its product and customer): one query, none when nothing is named."""
    golden_ids = list(golden_ids)
    if not golden_ids:
        return set()
    named = Q()
    for relation, entity_types in NAMED_AFTER.items():
        if entity_types:
            named |= Q(entity_type__in=entity_types) & ids_in(GoldenRecord, relation, golden_ids)
    if not named:
        return set()
    rows = GoldenRecord.objects.filter(named, status=GoldenStatus.ACTIVE)
    return set(rows.values_list("id", flat=True))


def _snapshot(golden: GoldenRecord) -> dict:
    return {
        "status": golden.status,
        "values": dict(golden.values),
        "display_name": golden.display_name,
    }


def entity_of(golden: GoldenRecord) -> EntityType:
    return ENTITIES[golden.entity_type]
