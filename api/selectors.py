"""API reads that must stay set-based: batch cross-reference lookups (now and "as of"),
and the events feed's high-water mark.

Every function here issues a fixed number of queries whatever the number of keys.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from api.models import DeliveryStatus, IntegrationToken, WebhookDelivery, WebhookSubscription
from mdm.db.prepared import prepared_cursor
from mdm.db.watermark import id_high_water_mark
from mdm.entities import get_entity
from mdm.models import GoldenRecord, OutboxEvent, SourceRecord, SourceSystem

Key = tuple[str, str]  # (system code, source key)


def _can_exist(system: str, source_key: str, *, postgresql: bool) -> bool:
    """False for a key no record can have: one with a lone surrogate (not Unicode text, no
    driver encodes it) or, on PostgreSQL, a NUL (its text cannot hold one). Ingest rejects
    such keys, and a driver refuses to send them: an error, where the answer is "not found"."""
    if not (system.isascii() and source_key.isascii()) and not _encodable(system + source_key):
        return False
    return not postgresql or "\x00" not in system and "\x00" not in source_key


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _not_found(system: str, source_key: str) -> dict:
    return {"system": system, "source_key": source_key, "found": False}


def _found(
    system: str,
    source_key: str,
    golden_id: str,
    status: str,
    deleted: bool,
    keys: list[dict[str, str]],
) -> dict:
    return {
        "system": system,
        "source_key": source_key,
        "found": True,
        "golden_id": golden_id,
        "status": status,
        "deleted": deleted,
        "keys": keys,
    }


def lookup_xrefs(entity_type: str, keys: Sequence[Key]) -> list[dict]:
    """For each (system, key), in order: its golden ID and status and every live key the
    golden record has in every system. One query on PostgreSQL (the keys travel as two
    arrays), two elsewhere — for any number of keys."""
    get_entity(entity_type)
    if connection.vendor == "postgresql":
        return _lookup_xrefs_postgresql(entity_type, keys)
    by_system: dict[str, set[str]] = defaultdict(set)
    for system, source_key in keys:
        if _can_exist(system, source_key, postgresql=False):
            by_system[system].add(source_key)
    condition = Q()
    for system, wanted in by_system.items():
        condition |= Q(source_system__code=system, source_key__in=wanted)
    found: dict[tuple[str, str], list[Any]] = {}  # (system, key) -> [golden id, status, deleted]
    if by_system:
        rows = SourceRecord.objects.filter(condition, entity_type=entity_type).values_list(
            "source_system__code", "source_key", "golden_id", "golden__status", "deleted"
        )
        found = {(system, key): rest for system, key, *rest in rows}
    golden_ids = {golden_id for golden_id, _, _ in found.values() if golden_id}
    members: dict[str, list[dict]] = defaultdict(list)
    if golden_ids:
        member_rows = (
            SourceRecord.objects.filter(golden_id__in=golden_ids, deleted=False)
            .order_by("source_system__code", "source_key")
            .values_list("golden_id", "source_system__code", "source_key")
        )
        for golden_id, system, source_key in member_rows:
            members[golden_id].append({"system": system, "source_key": source_key})
    results = []
    for system, source_key in keys:
        hit = found.get((system, source_key))
        if hit is None or hit[0] is None:
            results.append(_not_found(system, source_key))
            continue
        golden_id, status, deleted = hit
        results.append(_found(system, source_key, golden_id, status, deleted, members[golden_id]))
    return results


def _lookup_xrefs_postgresql(entity_type: str, keys: Sequence[Key]) -> list[dict]:
    """The keys travel as two arrays (one statement text for any number of keys, prepared;
    binary, which spares quoting every element); each distinct key once, so a repeated key
    does not repeat its siblings."""
    record, systems = SourceRecord._meta.db_table, SourceSystem._meta.db_table
    golden = GoldenRecord._meta.db_table
    sql = f"""
        SELECT k.code, k.key, r.golden_id, g.status, r.deleted, ms.code, m.source_key
        FROM unnest(%b::text[], %b::text[]) AS k(code, key)
        JOIN {systems} rs ON rs.code = k.code
        JOIN {record} r
          ON r.entity_type = %s AND r.source_system_id = rs.id AND r.source_key = k.key
        LEFT JOIN {golden} g ON g.id = r.golden_id
        LEFT JOIN {record} m ON m.golden_id = r.golden_id AND NOT m.deleted
        LEFT JOIN {systems} ms ON ms.id = m.source_system_id
        ORDER BY ms.code, m.source_key
    """
    found: dict[Key, tuple] = {}
    members: dict[Key, list[dict]] = defaultdict(list)
    distinct = [key for key in dict.fromkeys(keys) if _can_exist(*key, postgresql=True)]
    if distinct:
        with prepared_cursor() as cursor:
            cursor.execute(sql, [[s for s, _ in distinct], [k for _, k in distinct], entity_type])
            rows = cursor.fetchall()
        for system, key, golden_id, status, deleted, code, member_key in rows:
            found[(system, key)] = (golden_id, status, deleted)
            if code is not None:
                members[(system, key)].append({"system": code, "source_key": member_key})
    results = []
    for key in keys:
        hit = found.get(key)
        if hit is None or hit[0] is None:
            results.append(_not_found(*key))
            continue
        golden_id, status, deleted = hit
        results.append(_found(*key, golden_id, status, deleted, members[key]))
    return results


def lookup_xref(entity_type: str, system: str, source_key: str) -> dict:
    """`lookup_xrefs` for one key in one query: the record, its golden record's status and
    its live siblings joined in a single statement (the hot path of integrations; prepared
    on PostgreSQL)."""
    get_entity(entity_type)
    postgresql = connection.vendor == "postgresql"
    if not _can_exist(system, source_key, postgresql=postgresql):
        return _not_found(system, source_key)
    record, systems = SourceRecord._meta.db_table, SourceSystem._meta.db_table
    golden = GoldenRecord._meta.db_table
    sql = f"""
        SELECT r.golden_id, g.status, r.deleted, ms.code, m.source_key
        FROM {record} r
        JOIN {systems} rs ON rs.id = r.source_system_id
        LEFT JOIN {golden} g ON g.id = r.golden_id
        LEFT JOIN {record} m ON m.golden_id = r.golden_id AND NOT m.deleted
        LEFT JOIN {systems} ms ON ms.id = m.source_system_id
        WHERE r.entity_type = %s AND rs.code = %s AND r.source_key = %s
        ORDER BY ms.code, m.source_key
    """
    with prepared_cursor() if postgresql else connection.cursor() as cursor:
        cursor.execute(sql, [entity_type, system, source_key])
        rows = cursor.fetchall()
    if not rows or rows[0][0] is None:
        return _not_found(system, source_key)
    golden_id, status, deleted = rows[0][:3]
    keys = [{"system": code, "source_key": key} for *_, code, key in rows if code is not None]
    return _found(system, source_key, golden_id, status, bool(deleted), keys)


def _latest(rows: Iterable[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """The last row per `id` from rows ordered by (id, history_date, history_id)."""
    latest = {}
    for row in rows:
        latest[row["id"]] = row
    return latest


def lookup_xrefs_as_of(entity_type: str, keys: Sequence[Key], when: datetime) -> list[dict]:
    """`lookup_xrefs` as the cross-reference stood at `when`, from history. Five queries for
    any number of keys. A key whose record did not exist yet at `when` is not found."""
    get_entity(entity_type)
    codes = dict(SourceSystem.objects.values_list("id", "code"))
    ids_by_code = {code: pk for pk, code in codes.items()}
    condition = Q()
    postgresql = connection.vendor == "postgresql"
    for system, source_key in keys:
        if system in ids_by_code and _can_exist(system, source_key, postgresql=postgresql):
            condition |= Q(source_system_id=ids_by_code[system], source_key=source_key)
    if not condition:
        return [_not_found(s, k) for s, k in keys]
    record_ids = {
        (codes[system_id], key): pk
        for pk, system_id, key in SourceRecord.objects.filter(
            condition, entity_type=entity_type
        ).values_list("id", "source_system_id", "source_key")
    }
    order = ("id", "history_date", "history_id")
    fields = ("id", "golden_id", "deleted", "history_type", "source_key", "source_system_id")
    history = SourceRecord.history.filter(history_date__lte=when)
    then = _latest(history.filter(id__in=record_ids.values()).order_by(*order).values(*fields))
    golden_ids = {
        row["golden_id"] for row in then.values() if row["golden_id"] and row["history_type"] != "-"
    }
    ever_members = history.filter(golden_id__in=golden_ids).values("id")
    members: dict[str, list[dict]] = defaultdict(list)
    for row in _latest(
        history.filter(id__in=ever_members).order_by(*order).values(*fields)
    ).values():
        if row["golden_id"] in golden_ids and not row["deleted"] and row["history_type"] != "-":
            members[row["golden_id"]].append(
                {"system": codes[row["source_system_id"]], "source_key": row["source_key"]}
            )
    statuses = {
        row["id"]: row["status"]
        for row in _latest(
            GoldenRecord.history.filter(id__in=golden_ids, history_date__lte=when)
            .order_by(*order)
            .values("id", "status")
        ).values()
    }
    results = []
    for system, source_key in keys:
        found: dict[str, Any] | None = then.get(record_ids.get((system, source_key)))
        if found is None or found["history_type"] == "-" or not found["golden_id"]:
            results.append(_not_found(system, source_key))
            continue
        golden_id = found["golden_id"]
        keys_then = sorted(members[golden_id], key=lambda k: (k["system"], k["source_key"]))
        results.append(
            _found(
                system,
                source_key,
                golden_id,
                statuses.get(golden_id, "active"),
                found["deleted"],
                keys_then,
            )
        )
    return results


def event_high_water_mark() -> int:
    """The highest event sequence number below which no event can still appear: the feed and
    the webhook dispatcher never pass it, so they never skip an event that commits late
    (`mdm.db.watermark`: no lock taken, writers never wait for a reader)."""
    return id_high_water_mark(OutboxEvent)


def events_after(after: int, limit: int, *, event_types: Sequence[str] = ()) -> tuple[list, int]:
    """Up to `limit` events with `after` < id <= high-water mark, in order; and the mark."""
    mark = event_high_water_mark()
    events = OutboxEvent.objects.filter(id__gt=after, id__lte=mark).order_by("id")
    if event_types:
        events = events.filter(event_type__in=event_types)
    return list(events[:limit]), mark


# ------------------------------------------------------------------ subscribers' lag (ops)

EVENTS_BEHIND_CAP = 100_000  # events not yet dispatched are counted up to this many
UNDELIVERED = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


@dataclass(frozen=True)
class SubscriptionLag:
    """How far one subscription is behind the feed, and what it has in dead letters.

    `events_behind`: events it wants that it has not received — deliveries pending or
    failed (to be retried), plus events up to the high-water mark not yet dispatched to it
    (counted up to EVENTS_BEHIND_CAP). `seconds_behind`: how old the oldest of those is (0
    when none). `dead_letters`: deliveries dead-lettered after the last attempt."""

    subscription: WebhookSubscription
    events_behind: int
    seconds_behind: float
    dead_letters: int


def subscription_lags(*, now: datetime | None = None) -> list[SubscriptionLag]:
    """Every subscription's lag and dead letters. Queries: the mark, the subscriptions, two
    grouped counts over the undelivered and dead deliveries (the status index), then per
    subscription with a dispatch backlog one bounded count and one first-event probe, and
    one read of the oldest undelivered events' times — bounded by the number of
    subscriptions, not by the number of events or deliveries."""
    now = now or timezone.now()
    mark = event_high_water_mark()
    subscriptions = list(WebhookSubscription.objects.select_related("owner").order_by("id"))
    undelivered: dict[int, dict[str, Any]] = {
        row["subscription_id"]: dict(row)
        for row in WebhookDelivery.objects.filter(status__in=UNDELIVERED)
        .order_by()
        .values("subscription_id")
        .annotate(count=Count("id"), first=Min("event_id"))
    }
    dead = dict(
        WebhookDelivery.objects.filter(status=DeliveryStatus.DEAD)
        .order_by()
        .values("subscription_id")
        .annotate(count=Count("id"))
        .values_list("subscription_id", "count")
    )
    behind: dict[int, int] = {}
    oldest_event: dict[int, int] = {}
    for subscription in subscriptions:
        pending = undelivered.get(subscription.pk, {"count": 0, "first": None})
        behind[subscription.pk] = pending["count"]
        if pending["first"] is not None:
            oldest_event[subscription.pk] = pending["first"]
        if subscription.active and subscription.last_event_id < mark:
            backlog = OutboxEvent.objects.filter(id__gt=subscription.last_event_id, id__lte=mark)
            if subscription.event_types:
                backlog = backlog.filter(event_type__in=subscription.event_types)
            ids = backlog.order_by("id").values_list("id", flat=True)
            first: int | None = ids.first()
            if first is not None:
                behind[subscription.pk] += ids[:EVENTS_BEHIND_CAP].count()
                oldest_event[subscription.pk] = min(oldest_event.get(subscription.pk, first), first)
    created = dict(
        OutboxEvent.objects.filter(id__in=set(oldest_event.values())).values_list(
            "id", "created_at"
        )
    )
    return [
        SubscriptionLag(
            subscription=subscription,
            events_behind=behind[subscription.pk],
            seconds_behind=(
                max((now - created[oldest_event[subscription.pk]]).total_seconds(), 0.0)
                if oldest_event.get(subscription.pk) in created
                else 0.0
            ),
            dead_letters=dead.get(subscription.pk, 0),
        )
        for subscription in subscriptions
    ]


def tokens_last_used() -> dict[int, datetime | None]:
    """Source system id -> when one of its live integration tokens was last used (None:
    issued, never used). Systems without a live token are absent."""
    return dict(
        IntegrationToken.objects.filter(revoked=False)
        .order_by()
        .values("source_system_id")
        .annotate(last=Max("last_used_at"))
        .values_list("source_system_id", "last")
    )
