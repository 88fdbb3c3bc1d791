"""Resolution: link, merge and split — the only ways membership of a golden record changes.

Each service locks the golden records it changes (in id order), moves source records,
recomputes survivorship of every record involved and of the records whose relations point at
them, writes history with actor and reason, and writes outbox events — all in one transaction.
Matching and stewardship call these; nothing else changes a golden record's members.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from mdm.errors import InvalidResolution
from mdm.models import (
    GoldenRecord,
    GoldenStatus,
    LinkMethod,
    SourceRecord,
    StewardOverride,
    new_golden_id,
)
from mdm.services import events
from mdm.services.audit import (
    Actor,
    bulk_update_tracked,
    delete_with_history,
    save_with_history,
)
from mdm.services.golden import (
    SurvivorshipInputs,
    apply_survivorship,
    dependents_of,
    load_members,
    lock_goldens,
    recompute_goldens,
    referrer_goldens,
)

LINK_FIELDS = ("golden", "link_method", "link_probability", "linked_at", "updated_at")


def _locked(*golden_ids: str) -> dict[str, GoldenRecord]:
    locked = {g.id: g for g in lock_goldens(golden_ids)}
    for golden_id in golden_ids:
        if golden_id not in locked:
            raise InvalidResolution(f"no golden record {golden_id}")
    return locked


def _require_active(*goldens: GoldenRecord) -> None:
    for golden in goldens:
        if golden.status == GoldenStatus.MERGED:
            raise InvalidResolution(f"{golden.id} was merged into {golden.merged_into_id}")


def _move(
    records: Sequence[SourceRecord],
    target: GoldenRecord,
    *,
    method: str,
    probability: float | None,
    actor: Actor,
    reason: str,
) -> None:
    now = timezone.now()
    for record in records:
        record.golden = target
        record.link_method = method
        record.link_probability = probability
        record.linked_at = now
        record.updated_at = now
    bulk_update_tracked(SourceRecord, records, LINK_FIELDS, actor=actor, reason=reason)


def _xref_snapshot(*golden_ids: str) -> dict[str, list[dict[str, str]]]:
    members = load_members(golden_ids)
    return {golden_id: events.xrefs(members.get(golden_id, ())) for golden_id in golden_ids}


def merge(
    *,
    survivor: GoldenRecord,
    loser: GoldenRecord,
    actor: Actor,
    reason: str,
    method: str = LinkMethod.STEWARD,
    probability: float | None = None,
) -> GoldenRecord:
    """Merge `loser` into `survivor`: the survivor keeps its ID, the loser redirects to it.

    All the loser's source records move to the survivor; its pins move too unless the
    survivor pins the same field; records that redirected to the loser now redirect to the
    survivor; relations pointing at the loser are re-pointed by recomputing their owners.
    """
    if survivor.pk == loser.pk:
        raise InvalidResolution("cannot merge a golden record with itself")
    with transaction.atomic():
        locked = _locked(survivor.pk, loser.pk)
        survivor, loser = locked[survivor.pk], locked[loser.pk]
        if survivor.entity_type != loser.entity_type:
            raise InvalidResolution(
                f"cannot merge a {loser.entity_type} into a {survivor.entity_type}"
            )
        _require_active(survivor, loser)
        before = _xref_snapshot(survivor.pk, loser.pk)
        moving = list(SourceRecord.objects.filter(golden=loser).select_related("source_system"))
        _move(moving, survivor, method=method, probability=probability, actor=actor, reason=reason)
        _move_pins(loser, survivor, actor=actor, reason=reason)
        _redirect(loser, survivor, actor=actor, reason=reason)
        recompute_goldens(golden_ids=[survivor.pk], actor=actor, reason=reason)
        recompute_goldens(golden_ids=dependents_of([loser.pk]), actor=actor, reason=reason)
        survivor.refresh_from_db()
        events.emit(
            events.GOLDEN_MERGED,
            survivor,
            {
                "survivor": survivor.pk,
                "merged": [loser.pk],
                "xrefs_before": before,
                "xrefs_after": _xref_snapshot(survivor.pk),
                "reason": reason,
            },
            actor=actor,
        )
    return survivor


def _move_pins(loser: GoldenRecord, survivor: GoldenRecord, *, actor: Actor, reason: str) -> None:
    kept = set(StewardOverride.objects.filter(golden=survivor).values_list("attribute", flat=True))
    for pin in StewardOverride.objects.filter(golden=loser):
        if pin.attribute in kept:
            delete_with_history(pin, actor=actor, reason=f"{reason} (survivor's pin kept)")
        else:
            pin.golden = survivor
            save_with_history(pin, actor=actor, reason=reason)


def _redirect(loser: GoldenRecord, survivor: GoldenRecord, *, actor: Actor, reason: str) -> None:
    """Mark the loser merged; flatten chains so every old ID resolves in one hop."""
    earlier = list(GoldenRecord.objects.filter(merged_into=loser))
    for golden in earlier:
        golden.merged_into = survivor
    bulk_update_tracked(GoldenRecord, earlier, ["merged_into"], actor=actor, reason=reason)
    loser.status = GoldenStatus.MERGED
    loser.merged_into = survivor
    save_with_history(loser, actor=actor, reason=reason)


def link(
    *,
    record: SourceRecord,
    golden: GoldenRecord,
    actor: Actor,
    reason: str,
    method: str = LinkMethod.STEWARD,
    probability: float | None = None,
) -> GoldenRecord:
    """Move one source record to `golden`.

    When the record was the last live member of its old golden record, that record is
    merged into `golden` (its ID was handed out, so it must keep resolving).
    """
    with transaction.atomic():
        record = (
            SourceRecord.objects.select_for_update()
            .select_related("source_system")
            .get(pk=record.pk)
        )
        old_id = record.golden_id
        if old_id == golden.pk:
            return golden
        locked = _locked(*(i for i in (old_id, golden.pk) if i))
        target = locked[golden.pk]
        if record.entity_type != target.entity_type:
            raise InvalidResolution(
                f"cannot link a {record.entity_type} record to a {target.entity_type}"
            )
        _require_active(target)
        if old_id:
            others = SourceRecord.objects.filter(golden_id=old_id, deleted=False).exclude(
                pk=record.pk
            )
            if not others.exists():
                return merge(
                    survivor=target,
                    loser=locked[old_id],
                    actor=actor,
                    reason=reason,
                    method=method,
                    probability=probability,
                )
        before = _xref_snapshot(*(i for i in (old_id, target.pk) if i))
        _move([record], target, method=method, probability=probability, actor=actor, reason=reason)
        touched = [i for i in (old_id, target.pk) if i]
        recompute_goldens(golden_ids=touched, actor=actor, reason=reason)
        recompute_goldens(golden_ids=_referrers_of([record]), actor=actor, reason=reason)
        target.refresh_from_db()
        events.emit(
            events.XREF_CHANGED,
            target,
            {
                "record": {"system": record.source_system.code, "source_key": record.source_key},
                "from": old_id,
                "to": target.pk,
                "xrefs_before": before,
                "xrefs_after": _xref_snapshot(*touched),
            },
            actor=actor,
        )
    return target


def split(
    *,
    golden: GoldenRecord,
    records: Sequence[SourceRecord],
    actor: Actor,
    reason: str,
) -> GoldenRecord:
    """Move `records` out of `golden` into a new golden record (a new ID); both recompute.

    Pins stay with the original. Relations that now resolve to the new record follow.
    """
    if not records:
        raise InvalidResolution("choose at least one source record to split out")
    with transaction.atomic():
        original = _locked(golden.pk)[golden.pk]
        _require_active(original)
        ids = {r.pk for r in records}
        members = list(
            SourceRecord.objects.select_for_update()
            .filter(golden=original)
            .select_related("source_system")
        )
        moving = [m for m in members if m.pk in ids]
        if len(moving) != len(ids):
            raise InvalidResolution(f"only members of {original.pk} can be split out of it")
        if not [m for m in members if m.pk not in ids and not m.deleted]:
            raise InvalidResolution("a split must leave at least one live member behind")
        before = _xref_snapshot(original.pk)
        created = GoldenRecord(
            id=new_golden_id(original.entity_type), entity_type=original.entity_type
        )
        apply_survivorship(
            [created],
            {created.id: moving},
            inputs=SurvivorshipInputs.load({created.entity_type}),
        )
        save_with_history(created, actor=actor, reason=reason)
        events.emit_many([events.golden_created(created, moving)], actor=actor)
        _move(
            moving, created, method=LinkMethod.STEWARD, probability=None, actor=actor, reason=reason
        )
        recompute_goldens(golden_ids=[original.pk, created.pk], actor=actor, reason=reason)
        recompute_goldens(
            golden_ids=_referrers_of(moving) | dependents_of([original.pk]),
            actor=actor,
            reason=reason,
        )
        original.refresh_from_db()
        events.emit(
            events.GOLDEN_SPLIT,
            original,
            {
                "original": original.pk,
                "created": [created.pk],
                "xrefs_before": before,
                "xrefs_after": _xref_snapshot(original.pk, created.pk),
                "reason": reason,
            },
            actor=actor,
        )
    created.refresh_from_db()
    return created


def _referrers_of(records: Sequence[SourceRecord]) -> set[str]:
    found: set[str] = set()
    for record in records:
        found |= referrer_goldens(record.entity_type, record.source_system_id, [record.source_key])
    return found
