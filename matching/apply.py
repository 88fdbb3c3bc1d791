"""Applying a batch run's planned merges: batches of whole clusters, each one `merge_many`
(one transaction), in this process or spread over worker processes.

A batch holds whole clusters (every merge into one survivor), so no two batches touch the same
golden record and they can commit in any order. A run killed midway leaves whole batches only;
the re-run's clustering plans just the rest.

On PostgreSQL, outside a transaction, a run with many batches forks worker processes
(`KEYSTONE_MATCH_APPLY_WORKERS`, default: up to 2, one per CPU): a merge batch is about two
thirds Python and one third PostgreSQL, so one process keeps one CPU busy at best. Workers come
from the one fork pool (`mdm.db.pool`, usable inside a Celery prefork worker): each takes its
fixed share of batches in turn and reports each batch; a worker stops before its next batch
when another failed or its parent is gone (a killed run leaves no worker behind for longer than
one batch). The first failure is raised here, after every worker has exited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from django.conf import settings
from django.db import connection

from matching.clustering import Merge
from mdm.db.pool import Worker, run_workers
from mdm.models import LinkMethod
from mdm.services.audit import Actor
from mdm.services.resolution import merge_many


def batches_of_clusters(merges: Sequence[Merge], size: int | None = None) -> list[list[Merge]]:
    """Pure: `merges` in batches of about `size` (`KEYSTONE_MATCH_APPLY_BATCH`), never splitting one
    survivor's merges (a cluster bigger than `size` is a batch of its own). Survivors keep
    their first-seen order."""
    size = size or settings.KEYSTONE_MATCH_APPLY_BATCH
    by_survivor: dict[str, list[Merge]] = {}
    for merge in merges:
        by_survivor.setdefault(merge.survivor, []).append(merge)
    batches: list[list[Merge]] = []
    current: list[Merge] = []
    for cluster in by_survivor.values():
        if current and len(current) + len(cluster) > size:
            batches.append(current)
            current = []
        current.extend(cluster)
    if current:
        batches.append(current)
    return batches


def apply_workers(batches: int) -> int:
    """How many processes apply `batches` batches: 1 unless PostgreSQL, outside a transaction
    (workers could not see its rows), with enough batches to be worth a fork."""
    wanted = settings.KEYSTONE_MATCH_APPLY_WORKERS
    fewest = settings.KEYSTONE_MATCH_APPLY_MIN_BATCHES
    if (
        wanted <= 1
        or batches < fewest
        or connection.vendor != "postgresql"
        or connection.in_atomic_block
    ):
        return 1
    return min(wanted, batches)


def apply_merges(
    merges: Sequence[Merge],
    *,
    actor: Actor,
    reason: str,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Apply `merges` (auto-links) in batches of whole clusters; returns how many were applied.
    `on_progress(done)` is called with the merges applied so far after each batch."""
    batches = batches_of_clusters(merges)
    workers = apply_workers(len(batches))
    if workers == 1:
        done = 0
        for batch in batches:
            _merge_batch(batch, actor, reason)
            done += len(batch)
            if on_progress is not None:
                on_progress(done)
        return done
    return _apply_in_processes(
        batches, workers, actor=actor, reason=reason, on_progress=on_progress
    )


def _merge_batch(batch: Sequence[Merge], actor: Actor, reason: str) -> None:
    merge_many(
        merges=[(m.survivor, m.loser, m.probability) for m in batch],
        actor=actor,
        reason=reason,
        method=LinkMethod.AUTO,
    )


def _apply_in_processes(
    batches: Sequence[Sequence[Merge]],
    workers: int,
    *,
    actor: Actor,
    reason: str,
    on_progress: Callable[[int], None] | None,
) -> int:
    done = 0

    def applied(merges: int) -> None:
        nonlocal done
        done += merges
        if on_progress is not None:
            on_progress(done)

    run_workers(
        partial(_apply_share, batches=batches, actor=actor, reason=reason),
        workers=workers,
        on_report=applied,
    )
    return done


def _apply_share(
    worker: Worker, *, batches: Sequence[Sequence[Merge]], actor: Actor, reason: str
) -> None:
    """A worker's share of the batches (every `count`-th from its index), one transaction
    each, reported one by one; it stops before its next batch when the pool stops."""
    for batch in batches[worker.index :: worker.count]:
        worker.checkpoint()
        _merge_batch(batch, actor, reason)
        worker.report(len(batch))
