"""Ingest: validate, normalize and upsert source records, idempotently and in bulk.

Rows are processed in chunks; each chunk is one transaction (all or nothing) with a bounded
number of queries whatever its size. Per record:

- unusable (no source_key, wrong entity or system, a non-scalar value, a bad timestamp)
  → an IngestRejection with the line and reason; the rest of the chunk loads;
- a value that fails normalization → kept raw in `invalid`, the record still loads;
- unchanged payload → no write at all (no history row);
- older `source_updated_at` than stored → ignored and counted as stale;
- `deleted` → tombstone; the golden record is recomputed without it (retired when empty);
- new → its own new golden record (matching links and merges later).

Ingest changes what a record says, never which golden record it belongs to: only
`mdm.services.resolution` writes an existing record's golden record, link method and link
time. Concurrent writers are safe: the records a chunk updates are locked (their golden
records first, in ID order, as the resolution services lock; then the source records, in key
order) and classified again against what is stored under the lock, so an older update that
waited never overwrites a newer one and a merge that committed meanwhile is kept. Two chunks
inserting the same new key (or deadlocking) lose nothing either: the loser runs again from a
fresh read and finds the winner's record (`CHUNK_ATTEMPTS`). A chunk whose PostgreSQL
connection is lost mid-way rolled back whole as well: it runs again on a new connection, and
is reported (`IngestInterrupted`, naming its lines) if that keeps happening.

The chunk's transaction also writes a request to match the changed records
(`mdm.services.match_requests`); after it commits, `mdm.signals.source_records_changed` fires.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from itertools import islice
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from mdm import metrics
from mdm.context import audit_context
from mdm.db.conflicts import lost_race
from mdm.db.connection import connection_lost
from mdm.db.ids import ids_in
from mdm.entities import EntityType, get_entity
from mdm.errors import ConcurrentChange, IngestInterrupted, UnknownSourceSystem
from mdm.mappings import CompiledMapping, UnmappableRecord
from mdm.models import (
    GoldenRecord,
    IngestRejection,
    LinkMethod,
    SourceRecord,
    SourceReference,
    SourceSystem,
    new_golden_id,
)
from mdm.normalize import NormalizedRecord, normalize_record
from mdm.services.audit import Actor, actor_label, bulk_create_tracked, bulk_update_tracked
from mdm.services.golden import (
    SurvivorshipInputs,
    create_goldens,
    recompute_goldens,
    referrer_goldens,
)
from mdm.services.ingest_volumes import OUTCOMES as VOLUME_COLUMNS
from mdm.services.ingest_volumes import record_volume
from mdm.services.match_requests import request_matching
from mdm.services.resolution import link_new_goldens
from mdm.signals import source_records_changed
from mdm.source_files import Unparseable

META_COLUMNS = ("source_key", "source_updated_at", "entity", "source_system", "deleted")
_META = frozenset(META_COLUMNS)
TRUE_WORDS = {"1", "true", "yes", "y", "t", "deleted"}
FALSE_WORDS = {"", "0", "false", "no", "n", "f"}
SCALARS = (str, int, float, bool, date)
_JSON_SCALARS = (str, int, bool)  # floats may be NaN/inf, which JSON cannot hold
KEY_MAX_LENGTH = 255  # source keys and reference keys: what their columns hold

LOADED, UPDATED, UNCHANGED, STALE, DELETED, REJECTED = (
    "loaded",
    "updated",
    "unchanged",
    "stale",
    "deleted",
    "rejected",
)
OUTCOMES = (LOADED, UPDATED, UNCHANGED, STALE, DELETED, REJECTED)
assert OUTCOMES == VOLUME_COLUMNS, "each outcome has its column in IngestVolume"

UPDATE_FIELDS = (
    "raw",
    "attributes",
    "match_keys",
    "invalid",
    "extra",
    "references",
    "payload_hash",
    "source_updated_at",
    "updated_at",
    "deleted",
    "deleted_at",
)
CHUNK_ATTEMPTS = 5  # a chunk that lost a race with a concurrent one runs again, this often
CHUNK_RETRY_SECONDS = 0.2  # after a lost connection: this long times the attempt, then again
UNIQUE_KEY = "uniq_source_record"  # (entity, system, key): what concurrent first inserts hit


# Why a record was rejected, as a code a machine can branch on (the message says it to people).
REJECTION_CODES: dict[str, str] = {
    "unparseable": "the line or row could not be parsed",
    "not_an_object": "the record is not an object with named fields",
    "extra_cells": "a CSV row has more cells than the header",
    "misaddressed": "the row names another entity type or source system",
    "missing_source_key": "no source_key",
    "source_key_too_long": "source_key over 255 characters",
    "not_a_single_value": "an attribute or reference holds a list or an object",
    "nul_character": "a value or column holds the NUL character",
    "not_valid_unicode": "a value or column holds text that is not Unicode (bytes that are "
    "not UTF-8, a lone surrogate)",
    "nested_too_deep": "values nested deeper than KEYSTONE_INGEST_MAX_DEPTH levels",
    "record_too_large": "the record is larger than KEYSTONE_INGEST_MAX_RECORD_BYTES as JSON",
    "reference_too_long": "a reference key (parent_key, ...) over 255 characters",
    "invalid_deleted_flag": "deleted is not true or false",
    "invalid_timestamp": "source_updated_at is not an ISO 8601 date-time",
    "unmappable": "the system's source mapping cannot map the payload (target, path, reason)",
    "invalid_record": "anything else that makes the record unusable",
}


class RecordRejected(Exception):
    """A record that cannot be loaded; the message is the reason an operator reads, `code`
    (one of REJECTION_CODES) the same for a machine."""

    def __init__(self, message: str, code: str = "invalid_record") -> None:
        assert code in REJECTION_CODES, code
        super().__init__(message)
        self.code = code


@dataclass
class IncomingRecord:
    """A row checked and fingerprinted (`payload_hash`); its normalization (`values`, `keys`,
    `invalid`) is made when first read, so a row found unchanged is never normalized."""

    line: int | None
    source_key: str
    raw: dict[str, Any]
    extra: dict[str, Any]
    references: dict[str, str]
    source_updated_at: datetime | None
    deleted: bool
    payload_hash: str
    entity: EntityType
    canonical: Mapping[str, Any]  # the row as normalization reads it (mapped, if mapped)
    _normalized: NormalizedRecord | None = field(default=None, init=False, repr=False)

    @property
    def normalized(self) -> NormalizedRecord:
        # not functools.cached_property: on Python 3.11 it takes a lock on every first read
        if self._normalized is None:
            self._normalized = normalize_record(self.entity, self.canonical)
        return self._normalized

    @property
    def values(self) -> dict[str, Any]:
        return self.normalized.values

    @property
    def keys(self) -> dict[str, str]:
        return self.normalized.keys

    @property
    def invalid(self) -> dict[str, dict[str, str]]:
        return self.normalized.invalid


@dataclass(frozen=True)
class _Stored:
    """What classifying a row needs of the stored record (or of its last change), and what
    normalization flagged in it (the flags of a row found unchanged against it)."""

    pk: int | None
    golden_id: str | None
    payload_hash: str
    source_updated_at: datetime | None
    invalid: Mapping[str, Mapping[str, str]]


@dataclass
class RecordOutcome:
    line: int | None
    source_key: str
    outcome: str
    golden_id: str | None = None
    reason: str = ""
    reason_code: str | None = None


@dataclass
class IngestSummary:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    rejections: list[tuple[int | None, str]] = field(default_factory=list)
    flagged: list[tuple[int | None, str, str]] = field(default_factory=list)
    results: list[RecordOutcome] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, other: IngestSummary) -> None:
        for name, count in other.counts.items():
            self.counts[name] += count
        self.rejections.extend(other.rejections)
        self.flagged.extend(other.flagged)
        self.results.extend(other.results)

    def line(self) -> str:
        return ", ".join(f"{name} {self.counts[name]}" for name in OUTCOMES)


Row = tuple[int | None, Any]  # (line number or None, the record as parsed)


@dataclass(frozen=True)
class Addressed:
    """A record sent to its own URL: the payload, the source key the URL names, and whether it
    is a tombstone. Without a mapping the key (and the flag) join the payload's columns; with
    one, the mapped key must be the URL's (or blank) and the payload is kept as sent."""

    payload: Any
    source_key: str
    deleted: bool = False

    def as_row(self) -> Any:
        if not isinstance(self.payload, Mapping):
            return self.payload
        row = {**self.payload, "source_key": self.source_key}
        if self.deleted:
            row["deleted"] = True
        return row


class _Active:
    """`ingest_records(mapping=ACTIVE_MAPPING)`: the system's active mapping, if it has one."""


ACTIVE_MAPPING: Any = _Active()


def get_source_system(code: str, *, create: bool = False) -> SourceSystem:
    code = (code or "").strip().lower()
    if not code:
        raise UnknownSourceSystem(code)
    system = SourceSystem.objects.filter(code=code).first()
    if system is None:
        if not create:
            raise UnknownSourceSystem(code)
        system, _ = SourceSystem.objects.get_or_create(code=code, defaults={"name": code.upper()})
    return system


def ingest_records(
    *,
    entity_type: str,
    system_code: str,
    rows: Iterable[Row],
    actor: Actor,
    reason: str = "ingest",
    origin: str = "",
    create_system: bool = False,
    chunk_size: int | None = None,
    collect_results: bool = False,
    store_rejections: bool = True,
    on_progress: Callable[[int], None] | None = None,
    mapping: CompiledMapping | None = ACTIVE_MAPPING,
) -> IngestSummary:
    """Upsert `rows` of one entity type from one source system; returns the counts.

    Raises UnknownEntity / UnknownSourceSystem before writing anything when the whole load is
    misaddressed; everything wrong with a single row becomes a rejection instead.

    `mapping`: by default the system's active source mapping for the entity (none: rows are
    canonical); a compiled mapping (`load_source --mapping`) or None (canonical) to choose.
    A mapped row's payload is stored as sent (`raw`); the mapped record is what is
    normalized; a payload the mapping cannot map is rejected (`unmappable`).
    """
    entity = get_entity(entity_type)
    system = get_source_system(system_code, create=create_system)
    if mapping is ACTIVE_MAPPING:
        from mdm.selectors import active_mapping  # selectors read services: imported late

        mapping = active_mapping(system_code=system.code, entity_type=entity.name)
    chunk_size = chunk_size or settings.KEYSTONE_INGEST_CHUNK_SIZE
    summary = IngestSummary()
    with audit_context(actor=actor_label(actor)), _collector_paused():
        for chunk in _chunks(rows, chunk_size):
            summary.add(
                _commit_chunk(
                    entity,
                    system,
                    chunk,
                    actor=actor,
                    reason=reason,
                    origin=origin,
                    collect_results=collect_results,
                    store_rejections=store_rejections,
                    mapping=mapping,
                )
            )
            collect_chunk_garbage()
            if on_progress:
                on_progress(len(chunk))
    return summary


class _Raced(Exception):
    """A record the chunk updates moved to another golden record between the chunk's read and
    its locks (a merge committed meanwhile): the chunk runs again from a fresh read."""


def _commit_chunk(
    entity: EntityType, system: SourceSystem, chunk: list[Row], **options: Any
) -> IngestSummary:
    """One chunk in one transaction; run again from a fresh read when it lost a race with a
    concurrent transaction (the same new key inserted, a deadlock, a record merged away under
    it), or lost its connection. Returns what this chunk did."""
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        part = IngestSummary()
        started = time.monotonic()
        try:
            with transaction.atomic():
                changed_ids = _ingest_chunk(entity, system, chunk, part, **options)
                # before matching's: in eager mode matching runs in a later on-commit callback
                transaction.on_commit(
                    partial(_chunk_committed, entity, system, part, started), robust=True
                )
                if changed_ids:
                    _request_matching(entity, system, changed_ids)
        except _Raced:
            continue
        except DatabaseError as error:
            if attempt < CHUNK_ATTEMPTS and lost_race(error, unique=(UNIQUE_KEY,)):
                continue
            if _connection_was_lost(chunk, attempt, error):
                continue
            raise
        return part
    raise ConcurrentChange(
        f"{entity.name} records of {system.code} kept changing under this load "
        f"({CHUNK_ATTEMPTS} attempts); nothing of this chunk was written"
    )


def _chunk_committed(
    entity: EntityType, system: SourceSystem, part: IngestSummary, started: float
) -> None:
    """Telemetry of a committed chunk (never of an attempt that rolled back): the counters
    and latency of `mdm.metrics`, and the hour's volumes. Robust on commit: a failure here is
    logged, never raised into the load."""
    metrics.record_ingest(
        system=system.code,
        entity=entity.name,
        counts=part.counts,
        seconds=time.monotonic() - started,
    )
    record_volume(system=system, entity_type=entity.name, counts=part.counts, at=timezone.now())


def _connection_was_lost(chunk: list[Row], attempt: int, error: DatabaseError) -> bool:
    """True (after a short wait) when `error` means the PostgreSQL connection was lost, so the
    chunk's transaction is gone whole and the chunk may run again on a new connection; then
    IngestInterrupted, on the last attempt, says which lines were not loaded. False for any
    other error, and inside a caller's transaction (nothing left to run again in)."""
    connection = transaction.get_connection()
    if connection.in_atomic_block or not connection_lost(error):
        return False
    connection.close()
    if attempt == CHUNK_ATTEMPTS:
        lines = [line for line, _ in chunk if line is not None]
        raise IngestInterrupted(
            first_line=lines[0] if lines else None,
            last_line=lines[-1] if lines else None,
            attempts=attempt,
        ) from error
    time.sleep(CHUNK_RETRY_SECONDS * attempt)
    return True


def _request_matching(entity: EntityType, system: SourceSystem, record_ids: list[int]) -> None:
    """Matching of the changed records is requested in the chunk's transaction (a row, so a
    broker outage cannot lose it); on commit, the signal lets `matching` start on it now."""
    requests = request_matching(
        entity_type=entity.name, source_system=system, record_ids=record_ids
    )
    transaction.on_commit(
        partial(
            source_records_changed.send,
            sender=SourceRecord,
            entity_type=entity.name,
            source_record_ids=record_ids,
            match_request_ids=requests,
        )
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the load, run once after each chunk instead.

    A chunk allocates hundreds of thousands of containers that stay alive until it ends; each
    collection they triggered re-scanned them, and the older generations also re-scanned what
    existed before the load (modules, caches, the app) — together a fifth to a third of
    ingest's CPU time (measured in docs/bench-log/2026-11-26.md). Freezing what exists takes it
    out of every scan; `collect_chunk_garbage` after each chunk frees the chunk's reference
    cycles, so memory stays bounded by the chunk size. Nothing is leaked: what existed returns
    to the collector when the load ends."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()


def collect_chunk_garbage() -> None:
    """Free the reference cycles a finished chunk left (its objects are all still young)."""
    gc.collect(0)


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _ingest_chunk(
    entity: EntityType,
    system: SourceSystem,
    chunk: list[Row],
    summary: IngestSummary,
    *,
    actor: Actor,
    reason: str,
    origin: str,
    collect_results: bool,
    store_rejections: bool,
    mapping: CompiledMapping | None,
) -> list[int]:
    now = timezone.now()
    incoming: list[tuple[int, IncomingRecord]] = []
    rejections: list[IngestRejection] = []
    outcomes: dict[int, RecordOutcome] = {}  # by position in the chunk: results in input order
    for position, (line, row) in enumerate(chunk):
        try:
            record = prepare_record(entity, system, row, line=line, mapping=mapping)
        except RecordRejected as rejected:
            if isinstance(row, Addressed):  # kept as it would be sent again for a replay
                row = row.payload if mapping is not None else row.as_row()
            key = _rejected_key(row, mapping)
            rejections.append(
                IngestRejection(
                    entity_type=entity.name,
                    source_system=system.code,
                    source_key=key,
                    origin=origin[:255],
                    line_number=line,
                    reason=str(rejected),
                    payload=_rejected_payload(row),
                )
            )
            summary.rejections.append((line, str(rejected)))
            outcomes[position] = RecordOutcome(
                line, key, REJECTED, reason=str(rejected), reason_code=rejected.code
            )
            continue
        incoming.append((position, record))

    # What the stored records say, without loading them: most rows of a reload are unchanged.
    known = {
        key: _Stored(pk, golden_id, payload_hash, source_updated_at, invalid)
        for key, pk, golden_id, payload_hash, source_updated_at, invalid in (
            SourceRecord.objects.filter(
                entity_type=entity.name,
                source_system=system,
                source_key__in={r.source_key for _, r in incoming},
            ).values_list(
                "source_key", "pk", "golden_id", "payload_hash", "source_updated_at", "invalid"
            )
        )
    }
    flags: dict[int, Mapping[str, Mapping[str, str]]] = {}
    changes = _classify_chunk(incoming, known, outcomes, flags)
    # Lock what is about to change and classify again against what is stored under the lock:
    # a concurrent update of the same key may have committed since the read above.
    locking = [known[r.source_key] for r in changes if r.source_key in known]
    stored = _lock_stored(
        {s.pk for s in locking if s.pk is not None}, {s.golden_id for s in locking}
    )
    now_stored = {
        key: _Stored(r.pk, r.golden_id, r.payload_hash, r.source_updated_at, r.invalid)
        for key, r in stored.items()
    }
    if any(known[key] != current for key, current in now_stored.items()):
        known.update(now_stored)
        changes = _classify_chunk(incoming, known, outcomes, flags)
        if any(r.source_key in known and r.source_key not in stored for r in changes):
            raise _Raced  # a row that was unchanged now changes: lock it too, from the start
    to_create: dict[str, SourceRecord] = {}
    to_update: dict[str, SourceRecord] = {}
    was_live = {record.pk: not record.deleted for record in stored.values()}
    for record in changes:
        key = record.source_key
        if key in known:
            target = to_update.setdefault(key, stored[key])
        else:
            target = to_create.get(key) or SourceRecord(
                entity_type=entity.name, source_system=system, source_key=key
            )
            to_create[key] = target
        _apply(target, record, now)

    # New live records get a new golden record each; a revived tombstone that never had one too
    # (linked by the resolution service once the golden record exists: ingest writes no
    # existing record's membership).
    new_goldens: dict[str, GoldenRecord] = {}
    revived: dict[int, str] = {}
    for written in [*to_create.values(), *to_update.values()]:
        if not written.deleted and written.golden_id is None:
            golden = GoldenRecord(id=new_golden_id(entity.name), entity_type=entity.name)
            new_goldens[written.source_key] = golden
            written.golden_id = golden.id
            written.link_method = LinkMethod.NEW
            written.linked_at = now
            if written.pk is not None:
                revived[written.pk] = golden.id
    affected = {
        r.golden_id for r in to_update.values() if r.golden_id and r.source_key not in new_goldens
    }
    # A tombstone or a revival changes its golden record's live members.
    members_changed = {
        r.golden_id
        for r in to_update.values()
        if r.golden_id in affected and r.deleted == was_live[r.pk]
    }

    bulk_create_tracked(SourceRecord, list(to_create.values()), actor=actor, reason=reason)
    bulk_update_tracked(
        SourceRecord, list(to_update.values()), UPDATE_FIELDS, actor=actor, reason=reason
    )
    _store_references(entity, system, [*to_create.values(), *to_update.values()], to_update)
    if new_goldens:
        members = {
            golden.id: [_by_key(to_create, to_update, key)] for key, golden in new_goldens.items()
        }
        pending = {(entity.name, system.code, key): g.id for key, g in new_goldens.items()}
        create_goldens(
            list(new_goldens.values()),
            members,
            inputs=SurvivorshipInputs.load({entity.name}),
            pending_xref=pending,
            actor=actor,
            reason=reason,
        )
        link_new_goldens(links=revived, actor=actor, reason=reason)
        affected |= referrer_goldens(entity.name, system.pk, new_goldens) - {
            g.id for g in new_goldens.values()
        }
    recompute_goldens(
        golden_ids=affected, members_changed=members_changed, actor=actor, reason=reason
    )
    if store_rejections:
        bulk_create_tracked(
            IngestRejection,
            _not_yet_recorded(rejections),
            actor=actor,
            reason=f"rejected: {reason}",
        )

    for position, record in incoming:
        for attribute, problem in flags[position].items():
            summary.flagged.append((record.line, attribute, problem["reason"]))
    ordered = [outcomes[position] for position in sorted(outcomes)]
    for result in ordered:
        summary.counts[result.outcome] += 1
    if collect_results:
        golden_by_key = {key: row.golden_id for key, row in known.items()}
        golden_by_key.update((key, r.golden_id) for key, r in {**to_create, **to_update}.items())
        for result in ordered:
            result.golden_id = golden_by_key.get(result.source_key)
        summary.results.extend(ordered)
    return [r.pk for r in [*to_create.values(), *to_update.values()]]


def _classify_chunk(
    incoming: list[tuple[int, IncomingRecord]],
    known: Mapping[str, _Stored],
    outcomes: dict[int, RecordOutcome],
    flags: dict[int, Mapping[str, Mapping[str, str]]],
) -> list[IncomingRecord]:
    """Set each row's outcome against `known`, and the values normalization flags in it;
    return the rows that change something, in order. A key repeated in the chunk is compared
    with its last change. An unchanged row is not normalized: its flags are those of the
    record it equals (same payload, same normalization)."""
    changes: list[IncomingRecord] = []
    latest: dict[str, _Stored] = {}
    for position, record in incoming:
        current = latest.get(record.source_key) or known.get(record.source_key)
        outcome = _classify(current, record)
        outcomes[position] = RecordOutcome(record.line, record.source_key, outcome)
        if outcome == UNCHANGED:
            assert current is not None
            flags[position] = current.invalid
            continue
        flags[position] = record.invalid
        if outcome == STALE:
            continue
        latest[record.source_key] = _Stored(
            None,
            None,
            record.payload_hash,
            record.source_updated_at or (current.source_updated_at if current else None),
            record.invalid,
        )
        changes.append(record)
    return changes


def _lock_stored(pks: set[int], golden_ids: set[str | None]) -> dict[str, SourceRecord]:
    """Lock the stored records a chunk updates, as the resolution services lock: their golden
    records first (ID order), then the records (key order) — one statement each; returns them
    by source key. Raises `_Raced` when a record's golden record is not among those locked (it
    was merged away after the chunk read it)."""
    if not pks:
        return {}
    wanted = {g for g in golden_ids if g}
    locked = set(
        GoldenRecord.objects.select_for_update()
        .filter(ids_in(GoldenRecord, "id", wanted))
        .order_by("id")
        .values_list("id", flat=True)
    )
    records = {
        record.source_key: record
        for record in SourceRecord.objects.select_for_update()
        .filter(ids_in(SourceRecord, "id", pks))
        .order_by("source_key")
    }
    if any(r.golden_id is not None and r.golden_id not in locked for r in records.values()):
        raise _Raced
    return records


def _not_yet_recorded(rejections: list[IngestRejection]) -> list[IngestRejection]:
    """Loading the same bad file twice lists each bad row once, not once per load."""
    if not rejections:
        return []
    first = rejections[0]
    open_rows = IngestRejection.objects.filter(
        status="open",
        entity_type=first.entity_type,
        source_system=first.source_system,
        origin=first.origin,
        line_number__in=[r.line_number for r in rejections],
    ).values_list("line_number", "reason", "payload")
    seen = {
        (line, reason, json.dumps(payload, sort_keys=True)) for line, reason, payload in open_rows
    }
    return [
        r
        for r in rejections
        if (r.line_number, r.reason, json.dumps(r.payload, sort_keys=True)) not in seen
    ]


def _by_key(
    to_create: Mapping[str, SourceRecord], to_update: Mapping[str, SourceRecord], key: str
) -> SourceRecord:
    return to_create.get(key) or to_update[key]


def _classify(current: _Stored | None, record: IncomingRecord) -> str:
    if current is None:
        return DELETED if record.deleted else LOADED
    if (
        record.source_updated_at
        and current.source_updated_at
        and record.source_updated_at < current.source_updated_at
    ):
        return STALE
    if current.payload_hash == record.payload_hash:
        return UNCHANGED
    return DELETED if record.deleted else UPDATED


def _apply(target: SourceRecord, record: IncomingRecord, now: datetime) -> None:
    target.raw = record.raw
    target.attributes = record.values
    target.match_keys = record.keys
    target.invalid = record.invalid
    target.extra = record.extra
    target.references = record.references
    target.payload_hash = record.payload_hash
    target.source_updated_at = record.source_updated_at or target.source_updated_at
    target.updated_at = now
    if record.deleted and not target.deleted:
        target.deleted_at = now
    if not record.deleted:
        target.deleted_at = None
    target.deleted = record.deleted


def _store_references(
    entity: EntityType,
    system: SourceSystem,
    records: Iterable[SourceRecord],
    updated: Mapping[str, SourceRecord],
) -> None:
    if not entity.references:
        return
    SourceReference.objects.filter(referrer__in=[r.pk for r in updated.values()]).delete()
    SourceReference.objects.bulk_create(
        [
            SourceReference(
                referrer=r,
                column=ref.column,
                target_entity=ref.target,
                source_system=system,
                target_key=r.references[ref.column],
            )
            for r in records
            for ref in entity.references
            if r.references.get(ref.column)
        ],
        batch_size=1000,
    )


def prepare_record(
    entity: EntityType,
    system: SourceSystem,
    row: Any,
    *,
    line: int | None = None,
    mapping: CompiledMapping | None = None,
) -> IncomingRecord:
    """Validate and fingerprint one row; raise RecordRejected with the reason if unusable.
    The record normalizes it when its values are first read (`IncomingRecord`).

    With a `mapping`, the row is the system's native payload: checked as storable, mapped
    (UnmappableRecord → rejected `unmappable`, with target, path and reason), and the mapped
    record goes on from here as a canonical row would; the payload is what `raw` keeps, and
    its top-level fields no rule reads are kept as `extra`.

    Whatever a row holds, it is either prepared or rejected here, never left to fail its
    chunk in the database: text PostgreSQL cannot store (NUL, lone surrogates), values nested
    deeper than KEYSTONE_INGEST_MAX_DEPTH, records over KEYSTONE_INGEST_MAX_RECORD_BYTES,
    keys and reference keys over 255 characters, timestamps outside years 1-9999 in UTC."""
    addressed = row if isinstance(row, Addressed) else None
    if addressed is not None:
        row = addressed.payload if mapping is not None else addressed.as_row()
    if isinstance(row, Unparseable):
        raise RecordRejected(row.reason, "unparseable")
    if not isinstance(row, Mapping):
        raise RecordRejected(
            f"expected an object with named fields, got {_type_name(row)}", "not_an_object"
        )
    if None in row:
        raise RecordRejected("row has more cells than the header", "extra_cells")
    row = {str(k).strip(): v for k, v in row.items()}
    _refuse_unstorable(row)
    native: dict[str, Any] | None = None
    if mapping is not None:
        native, row = row, _mapped_row(entity, mapping, row, addressed)
    for column, expected in (("entity", entity.name), ("source_system", system.code)):
        given = _text(row.get(column))
        if given and given.lower() != expected:
            raise RecordRejected(
                f"{column}: row says {given!r} but this load is {expected!r}", "misaddressed"
            )
    source_key = _text(row.get("source_key"))
    if not source_key:
        raise RecordRejected("source_key: missing", "missing_source_key")
    if len(source_key) > KEY_MAX_LENGTH:
        raise RecordRejected(
            f"source_key: longer than {KEY_MAX_LENGTH} characters", "source_key_too_long"
        )
    declared = entity.declared_columns
    for column in declared:
        value = row.get(column)
        if value is not None and not isinstance(value, SCALARS):
            raise RecordRejected(
                f"{column}: expected a single value, got {_type_name(value)}",
                "not_a_single_value",
            )
    deleted = _flag(row.get("deleted"))
    source_updated_at = _timestamp(row.get("source_updated_at"))
    references = {}
    for column in entity.reference_columns:
        if text := _text(row.get(column)):
            if len(text) > KEY_MAX_LENGTH:
                raise RecordRejected(
                    f"{column}: longer than {KEY_MAX_LENGTH} characters", "reference_too_long"
                )
            references[column] = text
    not_extra = declared | _META
    extra = {k: v for k, v in row.items() if k not in not_extra and not _blank(v)}
    attributes = {}  # the given values, stripped; blanks left out (what the digest covers)
    for column in entity.attribute_names:
        value = row.get(column)
        if isinstance(value, str):
            value = value.strip()
            if value:
                attributes[column] = value
        elif value is not None:
            attributes[column] = value
    content = {
        "attributes": attributes,
        "references": references,
        "extra": {k: _canonical(v) for k, v in extra.items()},
        "deleted": deleted,
    }
    if native is not None:  # a change anywhere in the payload as sent is a change to keep
        content["payload"] = native
    encoded = json.dumps(content, sort_keys=True, default=str)
    if len(encoded) > settings.KEYSTONE_INGEST_MAX_RECORD_BYTES:
        raise RecordRejected(
            f"record larger than {settings.KEYSTONE_INGEST_MAX_RECORD_BYTES:,} bytes as JSON",
            "record_too_large",
        )
    digest = hashlib.sha256(encoded.encode()).hexdigest()
    return IncomingRecord(
        line=line,
        source_key=source_key,
        raw=_jsonable(row if native is None else native),
        extra=_jsonable(extra),
        references=references,
        source_updated_at=source_updated_at,
        deleted=deleted,
        payload_hash=digest,
        entity=entity,
        canonical=row,
    )


def _mapped_row(
    entity: EntityType,
    mapping: CompiledMapping,
    payload: dict[str, Any],
    addressed: Addressed | None,
) -> dict[str, Any]:
    """The canonical row `mapping` makes of `payload`, with the payload's unread top-level
    fields as extra columns (those named like a canonical column stay in `raw` only)."""
    try:
        mapped = mapping.apply(payload)
    except UnmappableRecord as error:
        raise RecordRejected(str(error), "unmappable") from None
    if addressed is not None:
        given = _text(mapped.get("source_key"))
        if given and given != addressed.source_key:
            raise RecordRejected(
                f"source_key: the payload says {given!r}, the URL {addressed.source_key!r}",
                "misaddressed",
            )
        mapped["source_key"] = addressed.source_key
        if addressed.deleted:
            mapped["deleted"] = True
    reserved = entity.declared_columns | _META
    unread = {k: v for k, v in payload.items() if k not in mapping.read_roots and k not in reserved}
    return {**unread, **mapped}


# What PostgreSQL text and JSON cannot hold: NUL, and lone surrogates (what a JSON "\ud800"
# escape gives, and what bytes that are not UTF-8 become when a file is read).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_NUL = ("contains a NUL character (\\u0000)", "nul_character")
Problem = tuple[str, str]  # (reason, rejection code)


def _refuse_unstorable(row: dict[str, Any]) -> None:
    """Every column name and value, nested ones included, must be storable text, nested at
    most KEYSTONE_INGEST_MAX_DEPTH levels: say which column is not, instead of failing."""
    try:  # a row of text (every CSV row): one search over all of it
        if not _text_problem("".join(row) + "".join(row.values())):
            return
    except TypeError:  # numbers, lists, None: look at each value
        pass
    levels = settings.KEYSTONE_INGEST_MAX_DEPTH
    for column, value in row.items():
        if problem := _text_problem(column):
            raise RecordRejected(f"column {_storable(column, levels)!r}: {problem[0]}", problem[1])
        if problem := _value_problem(value, levels):
            raise RecordRejected(f"{column}: {problem[0]}", problem[1])


def unstorable_reason(text: str) -> str | None:
    """Why `text` cannot be stored (a NUL, a lone surrogate), or None when it can."""
    problem = _text_problem(text)
    return problem[0] if problem else None


def _text_problem(text: str) -> Problem | None:
    if text.isascii():
        return _NUL if "\x00" in text else None
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return _NUL
    return (
        f"not valid Unicode: invalid UTF-8 or a lone surrogate (U+{ord(found.group()):04X})",
        "not_valid_unicode",
    )


def _value_problem(value: Any, levels: int) -> Problem | None:
    """What makes `value` unstorable, if anything; a list or object takes one of `levels`."""
    if isinstance(value, str):
        return _text_problem(value)
    if not isinstance(value, dict | list):
        return None
    if levels == 0:
        return f"nested deeper than {settings.KEYSTONE_INGEST_MAX_DEPTH} levels", "nested_too_deep"
    if isinstance(value, dict):
        for key, inner in value.items():
            if problem := _text_problem(key) or _value_problem(inner, levels - 1):
                return problem
        return None
    for inner in value:
        if problem := _value_problem(inner, levels - 1):
            return problem
    return None


def _rejected_key(row: Any, mapping: CompiledMapping | None = None) -> str:
    if mapping is not None:
        return _storable(mapping.source_key_of(row), 0)[:KEY_MAX_LENGTH]
    key = row.get("source_key") if isinstance(row, Mapping) else None
    if key is None or isinstance(key, dict | list):
        return ""
    return _storable(str(key), 0)[:KEY_MAX_LENGTH]


def _rejected_payload(row: Any) -> Any:
    """The rejected row as it can be stored and shown: unstorable characters written out
    (NUL as \\u0000, a lone surrogate as \\udXXX), nesting past the limit and the text of
    an unreadable line past the record size cut (and said so)."""
    if isinstance(row, Unparseable):
        limit = settings.KEYSTONE_INGEST_MAX_RECORD_BYTES
        text = row.text if len(row.text) <= limit else f"{row.text[:limit]}… (cut at {limit:,})"
        return {"unparsed_line": _storable(text, 0)}
    return _storable(row, settings.KEYSTONE_INGEST_MAX_DEPTH + 1)


def _storable(value: Any, levels: int) -> Any:
    """`value` as JSON a database can store, for a rejection: see `_rejected_payload`."""
    if isinstance(value, str):
        if value.isascii() and "\x00" not in value:
            return value
        value = value.replace("\x00", "\\u0000")
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bool | int | None):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict | list | tuple):
        if levels <= 0:
            return f"(nested deeper than {settings.KEYSTONE_INGEST_MAX_DEPTH} levels: not kept)"
        if isinstance(value, dict):
            return {_storable(str(k), 0): _storable(v, levels - 1) for k, v in value.items()}
        return [_storable(v, levels - 1) for v in value]
    return _storable(str(value), 0)


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _canonical(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = _text(value).lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RecordRejected(f"deleted: expected true or false, got {value!r}", "invalid_deleted_flag")


def _timestamp(value: Any) -> datetime | None:
    if _blank(value):
        return None
    parsed: datetime | None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = _text(value)
        try:
            parsed = parse_datetime(text.replace("Z", "+00:00"))
            if parsed is None and (day := parse_date(text)):
                parsed = datetime(day.year, day.month, day.day)
        except ValueError:
            parsed = None
        if parsed is None:
            raise RecordRejected(
                f"source_updated_at: not an ISO 8601 date-time: {text!r}", "invalid_timestamp"
            )
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        raise RecordRejected(
            f"source_updated_at: outside years 1-9999 once in UTC: {_text(value)!r}",
            "invalid_timestamp",
        ) from None
    return parsed


_JSON_TYPE_NAMES: dict[type, str] = {dict: "object", list: "list"}


def _type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _jsonable(value: Any) -> Any:
    """The row as JSON: values that JSON cannot hold become their text, nothing is dropped."""
    if isinstance(value, Unparseable):
        return {"unparsed_line": value.text}
    if isinstance(value, dict) and all(
        isinstance(k, str) and (v is None or type(v) in _JSON_SCALARS) for k, v in value.items()
    ):
        return dict(value)  # a CSV row or a flat JSON object: already JSON, nothing to convert
    return json.loads(json.dumps(_finite(value), default=str))


def _finite(value: Any) -> Any:
    """NaN and infinities (which JSON parsers accept but JSON columns refuse) as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
