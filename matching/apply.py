"""Applying a batch run's planned merges: batches of whole clusters, each one `merge_many`
(one transaction), in this process or spread over worker processes.

A batch holds whole clusters (every merge into one survivor), so no two batches touch the same
golden record and they can commit in any order. A run killed midway leaves whole batches only;
the re-run's clustering plans just the rest.

On PostgreSQL, outside a transaction, a run with many batches forks worker processes
(`KEYSTONE_MATCH_APPLY_WORKERS`, default: up to 2, one per CPU): a merge batch is about two
thirds Python and one third PostgreSQL, so one process keeps one CPU busy at best. Workers take
batches in turn from a fixed share, stop at their next batch when asked to or when their parent
is gone (a killed run leaves no worker behind for longer than one batch), and report each batch
over a pipe. The first failure stops the others and is raised here, after the workers exit.
Workers are plain `os.fork` children, not `multiprocessing` processes: a Celery prefork worker
is itself a daemonic process, which `multiprocessing` refuses to give children.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import traceback
from collections.abc import Callable, Sequence

from django.conf import settings
from django.db import connection, connections

from matching.clustering import Merge
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


class ApplyWorkerFailed(RuntimeError):
    """A worker process died without reporting (killed, or out of memory)."""


def _apply_in_processes(batches, workers: int, *, actor, reason, on_progress) -> int:
    stop = multiprocessing.get_context("fork").Event()
    connections.close_all()  # a forked child must open its own connection, never share ours
    parent = os.getpid()
    children: dict[object, int] = {}  # the pipe a child reports on -> its process id
    for index in range(workers):
        receiver, sender = multiprocessing.Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:  # the child: its share of the batches, then gone without cleanup
            code = 1
            try:
                receiver.close()
                _worker(batches[index::workers], actor, reason, sender, stop, parent)
                code = 0
            finally:
                os._exit(code)
        sender.close()
        children[receiver] = pid
    done, failure, finished = 0, None, set()
    try:
        while children:
            for receiver in multiprocessing.connection.wait(list(children)):
                try:
                    kind, value = receiver.recv()
                except EOFError:  # the child exited: finished, stopped, or died
                    pid = children.pop(receiver)
                    _reap(pid)
                    if receiver not in finished and failure is None and not stop.is_set():
                        failure = ApplyWorkerFailed(f"apply worker {pid} died without a report")
                        stop.set()
                    continue
                if kind == "batch":
                    done += value
                    if on_progress is not None:
                        on_progress(done)
                    continue
                finished.add(receiver)
                if kind == "error" and failure is None:
                    failure = value
                    stop.set()
    finally:
        stop.set()
        for pid in children.values():
            _reap(pid)
    if failure is not None:
        raise failure
    return done


def _reap(pid: int) -> None:
    # ChildProcessError: already reaped (by a SIGCHLD handler of the host process)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _worker(batches, actor, reason, pipe, stop, parent: int) -> None:
    """A forked worker: its share of batches, one transaction each, reported one by one;
    "done" at the end. It stops before its next batch when told to or when its parent is
    gone."""
    try:
        for batch in batches:
            if stop.is_set() or os.getppid() != parent:
                return
            _merge_batch(batch, actor, reason)
            pipe.send(("batch", len(batch)))
        pipe.send(("done", None))
    except BaseException as error:  # reported to the parent, which raises it
        try:
            pipe.send(("error", error))
        except Exception:  # not picklable: send what it said
            pipe.send(("error", RuntimeError("".join(traceback.format_exception(error)))))
    finally:
        connections.close_all()
        pipe.close()
