"""Outbox events, written in the transaction of the change they describe.

Event types: golden.created, golden.updated, golden.merged, golden.split, xref.changed.
Merge and split events carry the cross-reference sets before and after, so a consumer can
re-key without a second call. Each event's payload follows its type's published schema
(`mdm.contracts`) and says which version (`schema_version`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import partial

from django.db import router, transaction

from mdm import metrics
from mdm.context import correlation_id
from mdm.contracts import (
    EVENT_VERSIONS,
    GOLDEN_CREATED,
    GOLDEN_MERGED,
    GOLDEN_SPLIT,
    GOLDEN_UPDATED,
    XREF_CHANGED,
)
from mdm.db.copy import insert_rows
from mdm.db.watermark import hold_id_floor
from mdm.models import GoldenRecord, OutboxEvent, SourceRecord
from mdm.services.audit import Actor, actor_label
from mdm.signals import events_committed

__all__ = [
    "GOLDEN_CREATED",
    "GOLDEN_MERGED",
    "GOLDEN_SPLIT",
    "GOLDEN_UPDATED",
    "XREF_CHANGED",
    "emit",
    "emit_many",
    "event",
]


def xrefs(records: Iterable[SourceRecord]) -> list[dict[str, str]]:
    return sorted(
        (
            {"system": r.source_system.code, "source_key": r.source_key}
            for r in records
            if not r.deleted
        ),
        key=lambda x: (x["system"], x["source_key"]),
    )


def event(event_type: str, golden: GoldenRecord, payload: dict) -> OutboxEvent:
    return OutboxEvent(
        event_type=event_type,
        entity_type=golden.entity_type,
        golden_id=golden.id,
        payload={
            "id": golden.id,
            "entity": golden.entity_type,
            "status": golden.status,
            "schema_version": EVENT_VERSIONS[event_type],
            **payload,
        },
    )


def golden_created(golden: GoldenRecord, members: Sequence[SourceRecord]) -> OutboxEvent:
    return event(GOLDEN_CREATED, golden, {"values": golden.values, "xrefs": xrefs(members)})


def golden_updated(golden: GoldenRecord, *, before: dict) -> OutboxEvent:
    changed = sorted(
        k
        for k in set(before["values"]) | set(golden.values)
        if before["values"].get(k) != golden.values.get(k)
    )
    return event(
        GOLDEN_UPDATED,
        golden,
        {"values": golden.values, "changed": changed, "previous_status": before["status"]},
    )


def emit_many(outbox: Sequence[OutboxEvent], *, actor: Actor) -> None:
    """Write events in the caller's transaction. The only writer of the outbox: it holds the
    id floor (`mdm.db.watermark`) before taking ids, which is what lets the feed and the
    webhook dispatcher serve every committed event exactly once, in order, without a lock."""
    if not outbox:
        return
    label, correlation = actor_label(actor), correlation_id()
    for item in outbox:
        item.actor, item.correlation_id = label, correlation
    written_before = _written_in_this_transaction()
    if not written_before:  # an earlier write's floor is still held, and below these ids
        hold_id_floor(OutboxEvent)
    insert_rows(OutboxEvent, outbox)
    counts = Counter(item.event_type for item in outbox)
    transaction.on_commit(partial(metrics.record_events, counts), robust=True)
    if not written_before:  # one `events_committed` per transaction, however many writes
        transaction.on_commit(_events_committed)


def _written_in_this_transaction() -> bool:
    """Whether this transaction wrote events before (and did not roll that write back): its
    `events_committed` callback is pending. A callback registered in a savepoint that rolled
    back is gone from the list, as is the id floor taken there (PostgreSQL releases the locks
    of a rolled-back savepoint); in autocommit nothing is pending."""
    pending = transaction.get_connection(router.db_for_write(OutboxEvent)).run_on_commit
    return any(callback is _events_committed for _, callback, _ in pending)


def _events_committed() -> None:
    events_committed.send(sender=OutboxEvent)


def emit(event_type: str, golden: GoldenRecord, payload: dict, *, actor: Actor) -> None:
    emit_many([event(event_type, golden, payload)], actor=actor)
