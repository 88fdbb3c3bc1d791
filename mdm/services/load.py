"""Loading a source file: `ingest_records` over its rows, in parallel worker processes on
PostgreSQL when the file is large.

Rows are split by a hash of their source key, so every key (and every repeat of it in the
file) is handled by one worker, in file order: idempotency, staleness and in-file updates work
exactly as in one process. Each worker commits chunk by chunk like a single load does. The
first worker that fails stops the others at their next chunk; the chunks committed stay in
place, as a single load stopped at that chunk would, and the load raises LoadFailed. The
workers come from the one fork pool (`mdm.db.pool`), so a file loads in parallel inside a
Celery prefork worker too.

One thing needs the finished load: a record whose reference (e.g. `parent_key`) points at a
record loaded at the same moment by another worker may have found no target yet. After all
workers end, the golden records referring to keys of this load and missing a relation are
recomputed once (a recompute that finds nothing new writes nothing).

SQLite allows one writer at a time, so there a file always loads in this process.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from django.db import connection

from mdm.context import correlated
from mdm.db.pool import Worker, run_workers
from mdm.entities import get_entity
from mdm.errors import MdmError
from mdm.models import GoldenRecord
from mdm.services.audit import Actor
from mdm.services.golden import recompute_goldens, referrer_goldens
from mdm.services.ingest import (
    LOADED,
    IngestSummary,
    Row,
    get_source_system,
    ingest_records,
)
from mdm.source_files import count_records, read_rows

PARALLEL_MIN_RECORDS = 10_000  # below this, starting workers costs more than it saves
MAX_AUTO_JOBS = 4
REFERRER_BATCH = 5_000


class LoadFailed(MdmError):
    """A worker of a parallel load failed; chunks it and the others committed stay loaded."""


def load_jobs(requested: int | None, records: int) -> int:
    """How many worker processes load a file of `records` rows: `requested` if given, else one
    per CPU (at most MAX_AUTO_JOBS) for files of PARALLEL_MIN_RECORDS or more; always one on
    SQLite or inside a transaction (workers cannot see its uncommitted writes)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    if requested is not None:
        return max(1, requested)
    if records < PARALLEL_MIN_RECORDS:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_JOBS))


def partition_of(row: Any, jobs: int) -> int:
    """The worker that handles `row`: a stable hash of its stripped source key. Rows without a
    readable key (rejected anyway) go to worker 0."""
    if not isinstance(row, Mapping):
        return 0
    key = row.get("source_key")
    if key is None or isinstance(key, dict | list):
        return 0
    return zlib.crc32(str(key).strip().encode()) % jobs


@correlated
def load_file(
    path: Path,
    *,
    entity_type: str,
    system_code: str,
    actor: Actor,
    reason: str,
    jobs: int | None = None,
    chunk_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Load the CSV / NDJSON / JSON file at `path` (what `load_source` runs); the counts and
    the rejected and flagged rows (in line order) come back as one summary."""
    get_entity(entity_type)
    system = get_source_system(system_code, create=True)
    options: dict[str, Any] = {
        "entity_type": entity_type,
        "system_code": system.code,
        "actor": actor,
        "reason": reason,
        "origin": path.name,
        "chunk_size": chunk_size,
    }
    jobs = load_jobs(jobs, count_records(path) if jobs is None else 0)
    if jobs == 1:
        return ingest_records(rows=read_rows(path), on_progress=on_progress, **options)
    summary, loaded_keys = _run_workers(path, jobs, options, on_progress)
    _resolve_late_relations(entity_type, system.pk, loaded_keys, actor=actor, reason=reason)
    return summary


def _rows_of(path: Path, part: int, jobs: int) -> Iterator[Row]:
    return ((line, row) for line, row in read_rows(path) if partition_of(row, jobs) == part)


def _run_workers(
    path: Path, jobs: int, options: dict[str, Any], on_progress: Callable[[int], None] | None
) -> tuple[IngestSummary, set[str]]:
    try:
        results = run_workers(
            partial(_load_part, path=path, options=options), workers=jobs, on_report=on_progress
        )
    except Exception as error:
        raise LoadFailed(f"{path.name}: a load worker failed: {error}") from error
    return _merge([summary for summary, _ in results]), {key for _, keys in results for key in keys}


def _load_part(
    worker: Worker, *, path: Path, options: dict[str, Any]
) -> tuple[IngestSummary, list[str]]:
    """One worker's share of the file: its summary and the keys it loaded. It stops between
    chunks when another worker failed or the parent is gone."""

    def progress(records: int) -> None:
        worker.report(records)
        worker.checkpoint()

    summary = ingest_records(
        rows=_rows_of(path, worker.index, worker.count),
        collect_results=True,
        on_progress=progress,
        **options,
    )
    loaded = [r.source_key for r in summary.results if r.outcome == LOADED]
    summary.results = []
    return summary, loaded


def _merge(summaries: list[IngestSummary]) -> IngestSummary:
    merged = IngestSummary()
    for summary in summaries:
        for outcome, count in summary.counts.items():
            merged.counts[outcome] += count
        merged.rejections.extend(summary.rejections)
        merged.flagged.extend(summary.flagged)
    merged.rejections.sort(key=lambda item: (item[0] is None, item[0] or 0))
    merged.flagged.sort(key=lambda item: (item[0] is None, item[0] or 0))
    return merged


def _resolve_late_relations(
    entity_type: str, system_id: int, keys: set[str], *, actor: Actor, reason: str
) -> None:
    """Recompute golden records that refer to keys of this load but lack a relation: their
    target may have been committed by another worker after they looked."""
    ordered = sorted(keys)
    for start in range(0, len(ordered), REFERRER_BATCH):
        referrers = referrer_goldens(
            entity_type, system_id, ordered[start : start + REFERRER_BATCH]
        )
        missing = [
            golden.id
            for golden in GoldenRecord.objects.filter(id__in=referrers).only(
                "id", "entity_type", "lineage", *GoldenRecord.RELATION_FIELDS
            )
            if any(
                reference.column in golden.lineage
                and getattr(golden, f"{reference.relation}_id") is None
                for reference in get_entity(golden.entity_type).references
            )
        ]
        recompute_goldens(golden_ids=missing, actor=actor, reason=reason)
