"""The fork pool: results in worker order, progress as it happens, the first failure stops the
others and is raised, no child outlives the pool, a worker whose parent is gone stops, and it
works from a daemonic process (a Celery prefork worker) — with real forked processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
from django.db import connections

from mdm.db.pool import Worker, WorkerDied, run_workers
from tests.processes import alive, child_processes

BOUND_SECONDS = 30  # a worker that is never stopped gives up after this long


def _wait_until(condition, seconds: float = BOUND_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _loop_until_stopped(worker: Worker, beat: Path | None = None) -> str:
    deadline = time.monotonic() + BOUND_SECONDS
    while time.monotonic() < deadline:
        worker.checkpoint()
        if beat is not None:
            beat.write_text(str(os.getpid()))
        time.sleep(0.02)
    return "never stopped"


def _square_and_report(worker: Worker) -> int:
    for step in range(3):
        worker.checkpoint()
        worker.report((worker.index, step))
    return worker.index**2


def test_results_come_in_worker_order_and_every_report_reaches_the_parent():
    reports = []

    results = run_workers(_square_and_report, workers=3, on_report=reports.append)

    assert results == [0, 1, 4]
    assert sorted(reports) == [(index, step) for index in range(3) for step in range(3)]
    for index in range(3):  # each worker's reports in its order
        assert [s for i, s in reports if i == index] == [0, 1, 2]
    assert child_processes() == []


class BatchRejected(Exception):
    pass


def _fail_first_loop_others(worker: Worker) -> str:
    if worker.index == 0:
        time.sleep(0.2)
        raise BatchRejected("batch 7 names no golden record")
    return _loop_until_stopped(worker)


def test_the_first_failure_stops_the_others_and_is_raised_with_the_workers_traceback():
    started = time.monotonic()

    with pytest.raises(BatchRejected, match="batch 7") as raised:
        run_workers(_fail_first_loop_others, workers=3)

    assert time.monotonic() - started < BOUND_SECONDS / 2  # the others did not run to the end
    assert "in worker 0" in raised.value.__notes__[0]
    assert "_fail_first_loop_others" in raised.value.__notes__[0]
    assert child_processes() == []


class Unpicklable(Exception):
    def __init__(self, reason: str, *, code: int):
        super().__init__(f"{reason} ({code})")


def _raise_unpicklable(worker: Worker) -> None:
    raise Unpicklable("lock timeout", code=55)


def test_an_error_the_parent_cannot_rebuild_arrives_as_what_it_said():
    with pytest.raises(RuntimeError, match=r"lock timeout \(55\)"):
        run_workers(_raise_unpicklable, workers=1)
    assert child_processes() == []


def _one_dies(worker: Worker) -> str:
    if worker.index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return _loop_until_stopped(worker)


def test_a_worker_killed_without_a_word_fails_the_pool_and_stops_the_others():
    started = time.monotonic()

    with pytest.raises(WorkerDied, match="worker 1"):
        run_workers(_one_dies, workers=2)

    assert time.monotonic() - started < BOUND_SECONDS / 2
    assert child_processes() == []


def _failing_report(value):
    raise ValueError("progress bar closed")


def test_a_failure_in_the_parent_stops_and_reaps_every_worker():
    def report_then_loop(worker: Worker) -> str:
        worker.report("started")
        return _loop_until_stopped(worker)

    with pytest.raises(ValueError, match="progress bar closed"):
        run_workers(report_then_loop, workers=2, on_report=_failing_report)

    assert child_processes() == []


def test_a_worker_whose_parent_is_gone_stops_at_its_next_checkpoint(tmp_path):
    beat = tmp_path / "beat"
    connections.close_all()  # a forked process must never share this one's connection
    parent = os.fork()
    if parent == 0:  # the pool's parent, killed below while its worker runs
        try:
            run_workers(lambda worker: _loop_until_stopped(worker, beat), workers=1)
        finally:
            os._exit(0)
    assert _wait_until(beat.exists)
    worker = int(beat.read_text())

    os.kill(parent, signal.SIGKILL)
    os.waitpid(parent, 0)

    assert _wait_until(lambda: not alive(worker), seconds=BOUND_SECONDS / 2)


def _pool_in_a_daemon(results) -> None:
    try:
        results.put(("ran", run_workers(_square_and_report, workers=2)))
    except BaseException as error:
        results.put(("error", repr(error)))


def test_a_daemonic_process_such_as_a_celery_prefork_child_can_run_the_pool():
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    daemon = context.Process(target=_pool_in_a_daemon, args=(results,), daemon=True)
    connections.close_all()  # a forked process must never share this one's connection

    daemon.start()
    outcome = results.get(timeout=BOUND_SECONDS)
    daemon.join(timeout=BOUND_SECONDS)

    assert outcome == ("ran", [0, 1])
    assert daemon.exitcode == 0


@pytest.mark.django_db
def test_the_pool_refuses_to_start_inside_a_transaction():
    with pytest.raises(RuntimeError, match="inside a transaction"):
        run_workers(_square_and_report, workers=2)  # the test's own transaction

    assert child_processes() == []
