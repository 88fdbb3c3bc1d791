"""The Celery app. Without a broker (embedded mode) tasks run eagerly in-process.

Correlation: a task sent while a correlation ID is set (a request, a file load, another
task) carries it in its message headers (`keystone_correlation_id`); the worker runs the task under
it, so its history rows, events and log lines say what caused them. A task sent without one
(beat) runs under a new ID of its own. Each task's ID is dropped when it ends.
"""

import os
from contextvars import Token

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

from mdm.context import (
    current_correlation_id,
    enter_correlation,
    leave_correlation,
    new_correlation_id,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("keystone")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Not "correlation_id": Celery's own message property of that name is the task ID.
CORRELATION_HEADER = "keystone_correlation_id"
_task_correlations: dict[str, Token[str]] = {}


@before_task_publish.connect(weak=False)
def send_correlation(headers=None, **kwargs) -> None:
    correlation = current_correlation_id()
    if correlation and headers is not None and not headers.get(CORRELATION_HEADER):
        headers[CORRELATION_HEADER] = correlation


@task_prerun.connect(weak=False)
def restore_correlation(task_id=None, task=None, **kwargs) -> None:
    """The header's ID; in eager mode (no message) the caller's; else a new one."""
    sent = getattr(task.request, CORRELATION_HEADER, None) if task is not None else None
    correlation = sent or current_correlation_id() or new_correlation_id()
    if task_id is not None:
        _task_correlations[task_id] = enter_correlation(correlation)


@task_postrun.connect(weak=False)
def drop_correlation(task_id=None, **kwargs) -> None:
    token = _task_correlations.pop(task_id, None) if task_id is not None else None
    if token is not None:
        leave_correlation(token)
