"""The one pool of forked worker processes (parallel loading, batch apply).

`run_workers(work, workers=n)` forks `n` children; each runs `work(worker)` with its own
`Worker` (its index, the count, a way to report progress and a place to stop) and sends back
what `work` returns; the parent gets the results in worker order. The contract:

- **Usable anywhere**: workers are plain `os.fork` children, not `multiprocessing` processes.
  A Celery prefork worker is itself a daemonic process, which `multiprocessing` refuses to give
  children; `os.fork` has no such rule.
- **Connections closed around the fork**: the parent closes its database connections before
  forking (a child must never share its parent's socket) and every child closes its own before
  it exits; the parent opens a new one on its next query.
- **Progress**: `worker.report(value)` reaches the parent's `on_report(value)` as it happens,
  in the parent process.
- **First failure stops the others**: the first exception a worker raises is sent to the
  parent (with the worker's traceback as a note), the other workers stop at their next
  `worker.checkpoint()`, and the parent raises it once all have exited. A worker that dies
  without a word (killed, out of memory) is a `WorkerDied`.
- **No orphans**: the parent waits for every child before it returns or raises, whatever
  happened (an exception in `on_report`, an interrupt).
- **Parent death stops workers**: `worker.checkpoint()` also stops a worker whose parent is
  gone, so a killed run leaves no worker behind for longer than one unit of work.

`work` calls `checkpoint()` between its units of work (a chunk, a batch: each its own
transaction), where stopping leaves nothing half done. Children end with `os._exit`: they never
run the parent's exit handlers or flush its buffers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any, TypeVar, cast

from django.db import connections

R = TypeVar("R")


class WorkerDied(RuntimeError):
    """A worker process ended without reporting its result or its error (killed, out of
    memory)."""


class WorkerStopped(Exception):
    """Raised by `Worker.checkpoint` in a worker the pool stops; the pool ends it quietly."""


class Worker:
    """What a worker process knows of its pool: which worker it is and how to talk to the
    parent."""

    def __init__(self, index: int, count: int, pipe: Connection, stop: Event, parent: int):
        self.index = index
        self.count = count
        self._pipe = pipe
        self._stop = stop
        self._parent = parent

    def report(self, value: Any) -> None:
        """Send `value` to the parent's `on_report`."""
        self._pipe.send(("report", value))

    def checkpoint(self) -> None:
        """Raise WorkerStopped when another worker failed or the parent is gone."""
        if self._stop.is_set() or os.getppid() != self._parent:
            raise WorkerStopped


def run_workers(
    work: Callable[[Worker], R],
    *,
    workers: int,
    on_report: Callable[[Any], None] | None = None,
) -> list[R]:
    """Run `work` in `workers` forked processes; their results in worker order. Raises the
    first worker's exception (or WorkerDied) after every worker has exited. Not inside a
    transaction: the workers could not see its writes, and its connection is closed here."""
    if any(alias.in_atomic_block for alias in connections.all(initialized_only=True)):
        raise RuntimeError("run_workers inside a transaction: workers would not see its writes")
    stop = multiprocessing.get_context("fork").Event()
    connections.close_all()
    parent = os.getpid()
    children: dict[Connection, tuple[int, int]] = {}  # a child's pipe -> (index, process id)
    results: dict[int, R] = {}
    failure: BaseException | None = None
    try:
        for index in range(workers):
            receiver, sender = multiprocessing.Pipe(duplex=False)
            pid = os.fork()
            if pid == 0:
                receiver.close()
                _child(work, Worker(index, workers, sender, stop, parent))
            sender.close()
            children[receiver] = (index, pid)
        while children:
            for receiver in cast(list[Connection], multiprocessing.connection.wait(list(children))):
                index, pid = children[receiver]
                try:
                    kind, value = receiver.recv()
                except EOFError:  # the child exited: after its last message, or died
                    del children[receiver]
                    _reap(pid)
                    if index not in results and failure is None and not stop.is_set():
                        failure = WorkerDied(
                            f"worker {index} (process {pid}) ended without a report"
                        )
                        stop.set()
                    continue
                if kind == "report":
                    if on_report is not None:
                        on_report(value)
                elif kind == "result":
                    results[index] = value
                elif kind == "error" and failure is None:
                    failure = value
                    stop.set()
    finally:
        stop.set()
        for _, pid in children.values():
            _reap(pid)
    if failure is not None:
        raise failure
    return [results[index] for index in range(workers)]


def _child(work: Callable[[Worker], Any], worker: Worker) -> None:
    """The forked process: `work`, its result or error sent to the parent, then gone."""
    code = 1
    try:
        result = work(worker)
        worker._pipe.send(("result", result))
        code = 0
    except WorkerStopped:
        code = 0
    except BaseException as error:
        error.add_note(
            f"in worker {worker.index} (process {os.getpid()}):\n"
            + "".join(traceback.format_exception(error)).rstrip()
        )
        with contextlib.suppress(BaseException):
            _send_error(worker._pipe, error)
    finally:
        with contextlib.suppress(BaseException):
            connections.close_all()
            worker._pipe.close()
        os._exit(code)


def _send_error(pipe: Connection, error: BaseException) -> None:
    """Send `error` as it is if the parent can rebuild it, else what it said."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        error = RuntimeError("\n".join(getattr(error, "__notes__", [repr(error)])))
    pipe.send(("error", error))


def _reap(pid: int) -> None:
    # ChildProcessError: already reaped (by a SIGCHLD handler of the host process)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
