"""Database work on a thread of its own, beside the caller's.

A `Background` runs one function on a new thread, with that thread's own database connection
and so its own transaction, while the caller goes on (reading, or computing in DuckDB, which
leaves a CPU free); `wait()` joins it and returns what the function returned, or raises what
it raised, on the caller's thread. Where the caller is inside a transaction (the thread could
not see its uncommitted rows, and the caller's rollback would not undo the thread's work) or
not on PostgreSQL (SQLite allows one writer), the function runs at once, on the caller's
connection, and `wait()` just hands back its result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from django.db import connection

T = TypeVar("T")


class Background(Generic[T]):
    def __init__(self, work: Callable[[], T], *, name: str):
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            self._result = work()
            return
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._result = work()
        except BaseException as error:  # raised again by wait(), on the caller's thread
            self._error = error
        finally:
            connection.close()  # this thread's own connection

    def wait(self) -> T:
        """The function's result, once it is done; raises what it raised (once)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._result  # type: ignore[return-value]
