"""Resolution: link, merge and split — the only ways membership of a golden record changes.

Only this module writes a source record's golden record, link method and link time (ingest
sets them when it inserts a new record, and calls `link_new_goldens` for a revived tombstone
that never had one). Each service locks the golden records it changes (in id order), moves
source records, recomputes survivorship of every record involved and of the records whose
relations point at them, writes history with actor and reason, and writes outbox events — all
in one transaction. Before that transaction commits it sends `goldens_merged`, `golden_split`
or `record_linked` (`mdm.signals`), so the rows other apps keep about golden records (match
candidates, steward decisions) change in the same transaction. Matching and stewardship call
these; nothing else changes a golden record's members.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from mdm.db.ids import ids_in
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
    recompute,
    recompute_goldens,
    referrer_goldens,
    update_with_history,
)
from mdm.signals import golden_split, goldens_merged, record_linked

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

    A batch of one for `merge_many`, which holds the rule.
    """
    merge_many(
        merges=[(survivor.pk, loser.pk, probability)], actor=actor, reason=reason, method=method
    )
    return type(survivor)._default_manager.get(pk=survivor.pk)


def merge_many(
    *,
    merges: Sequence[tuple[str, str, float | None]],
    actor: Actor,
    reason: str,
    method: str = LinkMethod.AUTO,
) -> list[str]:
    """Apply many (survivor id, loser id, probability) merges in one transaction, set-based.

    Per loser, the same as one merge: the survivor keeps its ID and the loser redirects to it;
    the loser's source records move (with `method` and that merge's probability); its pins
    move unless the survivor pins the same field; records that redirected to the loser now
    redirect to the survivor; relations pointing at the loser follow by recomputing their
    owners; one `golden.merged` event per loser. Chains inside the batch (A<-B, B<-C) resolve
    to the final survivor (C ends in A). The number of statements does not grow per merge:
    rows are moved and redirected by primary key in one UPDATE per table (their history rows
    copied from the updated rows), and only the survivors and the records related to the
    losers are survived again.

    Refused as a whole (nothing written) on a self-merge, a cycle, a loser given two
    survivors, different entity types, an unknown ID or a record merged before the batch.
    Returns the final survivor of each merge, in input order.
    """
    if not merges:
        return []
    final, probability, depth = _plan(merges)
    losers = list(probability)
    survivors = sorted(set(final.values()))
    involved = set(losers) | set(survivors)
    with transaction.atomic():
        locked = _lock_states(involved)
        for golden_id in sorted(involved - set(locked)):
            raise InvalidResolution(f"no golden record {golden_id}")
        for golden_id, (_, status, merged_into) in locked.items():
            if status == GoldenStatus.MERGED:
                raise InvalidResolution(f"{golden_id} was merged into {merged_into}")
        for loser_id in losers:
            survivor_type, loser_type = locked[final[loser_id]][0], locked[loser_id][0]
            if survivor_type != loser_type:
                raise InvalidResolution(f"cannot merge a {loser_type} into a {survivor_type}")
        members = _member_keys(involved)
        before = {g: _xrefs(members.get(g, ())) for g in involved}
        now = timezone.now()
        moving = [
            (record_id, final[loser_id], method, probability[loser_id], now, now)
            for loser_id in losers
            for record_id, *_ in members.get(loser_id, ())
        ]
        update_with_history(SourceRecord, LINK_FIELDS, moving, actor=actor, reason=reason)
        _move_pins_many(final, depth, actor=actor, reason=reason)
        _redirect_many(final, now=now, actor=actor, reason=reason)
        recomputed = recompute(
            golden_ids=dependents_of(losers),
            members_changed=survivors,
            actor=actor,
            reason=reason,
        )
        goldens_merged.send(
            sender=GoldenRecord,
            merged={loser_id: final[loser_id] for loser_id in losers},
            method=method,
            actor=actor,
            reason=reason,
        )
        after = {
            survivor_id: _xrefs(
                (c.record_id, c.system, c.source_key, False)
                for c in recomputed.live.get(survivor_id, ())
            )
            for survivor_id in survivors
        }
        events.emit_many(
            [
                events.event(
                    events.GOLDEN_MERGED,
                    recomputed.goldens[final[loser_id]],
                    {
                        "survivor": final[loser_id],
                        "merged": [loser_id],
                        "xrefs_before": {
                            final[loser_id]: before[final[loser_id]],
                            loser_id: before[loser_id],
                        },
                        "xrefs_after": {final[loser_id]: after[final[loser_id]]},
                        "reason": reason,
                    },
                )
                for loser_id in losers
            ],
            actor=actor,
        )
    return [final[loser_id] for _, loser_id, _ in merges]


# (source record id, system code, source key, deleted)
MemberKey = tuple[int, str, str, bool]


def _lock_states(golden_ids: set[str]) -> dict[str, tuple[str, str, str | None]]:
    """Lock golden records in id order (as `lock_goldens`); id -> (entity type, status,
    merged into), without loading their values."""
    rows = (
        GoldenRecord.objects.select_for_update()
        .filter(ids_in(GoldenRecord, "id", golden_ids))
        .order_by("id")
        .values_list("id", "entity_type", "status", "merged_into_id")
    )
    return {golden_id: (entity_type, status, into) for golden_id, entity_type, status, into in rows}


def _member_keys(golden_ids: set[str]) -> dict[str, list[MemberKey]]:
    """Every member (live or deleted) of these golden records, in record id order."""
    members: dict[str, list[MemberKey]] = {}
    rows = (
        SourceRecord.objects.filter(ids_in(SourceRecord, "golden", golden_ids))
        .order_by("pk")
        .values_list("golden_id", "pk", "source_system__code", "source_key", "deleted")
    )
    for golden_id, pk, system, source_key, deleted in rows:
        members.setdefault(golden_id, []).append((pk, system, source_key, deleted))
    return members


def _xrefs(members: Iterable[MemberKey]) -> list[dict[str, str]]:
    """`events.xrefs` over member keys: the live members' (system, key), sorted."""
    return sorted(
        (
            {"system": system, "source_key": source_key}
            for _, system, source_key, deleted in members
            if not deleted
        ),
        key=lambda x: (x["system"], x["source_key"]),
    )


def _plan(
    merges: Sequence[tuple[str, str, float | None]],
) -> tuple[dict[str, str], dict[str, float | None], dict[str, int]]:
    """Check the batch's shape and follow chains: loser -> final survivor, probability, hops.

    Pure; losers keep their input order (first occurrence)."""
    direct: dict[str, str] = {}
    probability: dict[str, float | None] = {}
    for survivor_id, loser_id, p in merges:
        if survivor_id == loser_id:
            raise InvalidResolution(f"cannot merge a golden record with itself ({loser_id})")
        if direct.get(loser_id, survivor_id) != survivor_id:
            raise InvalidResolution(
                f"{loser_id} cannot merge into both {direct[loser_id]} and {survivor_id}"
            )
        if loser_id not in direct:
            direct[loser_id], probability[loser_id] = survivor_id, p
    final: dict[str, str] = {}
    depth: dict[str, int] = {}
    for loser_id in direct:
        path, seen, current = [], set(), loser_id
        while current in direct and current not in final:
            if current in seen:
                raise InvalidResolution(f"merges form a cycle through {current}")
            path.append(current)
            seen.add(current)
            current = direct[current]
        root = final.get(current, current)
        base = depth.get(current, 0)
        for hops, golden_id in enumerate(reversed(path), start=1):
            final[golden_id], depth[golden_id] = root, base + hops
    return final, probability, depth


def _move_pins_many(
    final: dict[str, str], depth: dict[str, int], *, actor: Actor, reason: str
) -> None:
    """Move losers' pins to their survivors. A field the survivor pins keeps the survivor's
    pin; among losers, the one closest to the survivor (then first in the batch) wins."""
    order = {loser_id: (depth[loser_id], n) for n, loser_id in enumerate(final)}
    pins = list(
        StewardOverride.objects.filter(ids_in(StewardOverride, "golden", {*final, *final.values()}))
    )
    taken = {(p.golden_id, p.attribute) for p in pins if p.golden_id not in final}
    moved = []
    for pin in sorted((p for p in pins if p.golden_id in final), key=lambda p: order[p.golden_id]):
        target = (final[pin.golden_id], pin.attribute)
        if target in taken:
            delete_with_history(pin, actor=actor, reason=f"{reason} (survivor's pin kept)")
        else:
            taken.add(target)
            pin.golden_id = target[0]
            moved.append(pin)
    bulk_update_tracked(StewardOverride, moved, ["golden"], actor=actor, reason=reason)


def _redirect_many(final: dict[str, str], *, now: datetime, actor: Actor, reason: str) -> None:
    """Mark losers merged; flatten chains so every old ID resolves in one hop."""
    redirected = GoldenRecord.objects.filter(
        ids_in(GoldenRecord, "merged_into", final)
    ).values_list("id", "status", "merged_into_id")
    changed = [(golden_id, status, final[into], now) for golden_id, status, into in redirected]
    changed += [
        (loser_id, GoldenStatus.MERGED, survivor_id, now) for loser_id, survivor_id in final.items()
    ]
    update_with_history(
        GoldenRecord, ("status", "merged_into", "updated_at"), changed, actor=actor, reason=reason
    )


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
        recompute_goldens(golden_ids=(), members_changed=touched, actor=actor, reason=reason)
        recompute_goldens(golden_ids=_referrers_of([record]), actor=actor, reason=reason)
        record_linked.send(
            sender=GoldenRecord,
            entity_type=record.entity_type,
            record_id=record.pk,
            source=old_id,
            target=target.pk,
            method=method,
            actor=actor,
            reason=reason,
        )
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

    Pins stay with the original. Relations that now resolve to the new record follow. An ID
    merged into `golden` earlier redirects to the new record when most of the records it
    stood for moved there. Matching is told (`golden_split`, in this transaction) and keeps
    the two groups apart from now on: a split is a steward's decision.
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
        recompute_goldens(
            golden_ids=[created.pk], members_changed=[original.pk], actor=actor, reason=reason
        )
        recompute_goldens(
            golden_ids=_referrers_of(moving) | dependents_of([original.pk]),
            actor=actor,
            reason=reason,
        )
        kept = [m.pk for m in members if m.pk not in ids]
        redirected = _redirect_split_off(
            original.pk, created.pk, moved=ids, kept=set(kept), actor=actor, reason=reason
        )
        golden_split.send(
            sender=GoldenRecord,
            entity_type=original.entity_type,
            original=original.pk,
            created=created.pk,
            moved=sorted(ids),
            kept=kept,
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
                "redirected": {golden_id: created.pk for golden_id in redirected},
                "xrefs_before": before,
                "xrefs_after": _xref_snapshot(original.pk, created.pk),
                "reason": reason,
            },
            actor=actor,
        )
    created.refresh_from_db()
    return created


def _redirect_split_off(
    original_id: str, created_id: str, *, moved: set[int], kept: set[int], actor: Actor, reason: str
) -> list[str]:
    """Point the IDs merged into `original_id` whose records now mostly live in `created_id`
    at it. The records an ID stood for are those that were ever its members (its members'
    history says which), counted among the two sides of the split; a tie stays. Returns the
    IDs redirected."""
    merged = list(
        GoldenRecord.objects.filter(merged_into_id=original_id, status=GoldenStatus.MERGED)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if not merged:
        return []
    history = SourceRecord.history.model
    stood_for: dict[str, set[int]] = defaultdict(set)
    rows = (
        history.objects.filter(ids_in(history, "golden", merged))
        .order_by()
        .values_list("golden_id", "id")
        .distinct()
    )
    for golden_id, record_id in rows:
        stood_for[golden_id].add(record_id)
    follow = [g for g in merged if len(stood_for[g] & moved) > len(stood_for[g] & kept)]
    now = timezone.now()
    update_with_history(
        GoldenRecord,
        ("merged_into", "updated_at"),
        [(golden_id, created_id, now) for golden_id in follow],
        actor=actor,
        reason=reason,
    )
    return follow


def link_new_goldens(*, links: Mapping[int, str], actor: Actor, reason: str) -> None:
    """Make each source record (id -> golden ID) the first member of its new golden record:
    for a tombstone that never had a golden record and is sent again live (ingest creates
    the golden records and calls this inside its transaction, the rows already locked). A
    record that has a golden record by now keeps it."""
    if not links:
        return
    now = timezone.now()
    unlinked = SourceRecord.objects.filter(
        ids_in(SourceRecord, "id", list(links)), golden__isnull=True
    ).values_list("pk", flat=True)
    update_with_history(
        SourceRecord,
        LINK_FIELDS,
        [(pk, links[pk], LinkMethod.NEW, None, now, now) for pk in unlinked],
        actor=actor,
        reason=reason,
    )


def _referrers_of(records: Sequence[SourceRecord]) -> set[str]:
    found: set[str] = set()
    for record in records:
        found |= referrer_goldens(record.entity_type, record.source_system_id, [record.source_key])
    return found
