"""Telling a lost race with a concurrent transaction from a real error.

Two transactions inserting the same new key, or waiting on each other's row locks, make
PostgreSQL fail one of them: a unique violation on the key, a deadlock, a serialization
failure. Run again from a fresh read, the loser sees the winner's committed rows and does
the right thing; every other database error is a bug or bad input, and is raised.
"""

from __future__ import annotations

from collections.abc import Collection

from django.db import DatabaseError

UNIQUE_VIOLATION = "23505"
# deadlock detected, serialization failure: the transaction may simply be run again
RUN_AGAIN = frozenset({"40P01", "40001"})


def lost_race(error: DatabaseError, *, unique: Collection[str] = ()) -> bool:
    """True when `error` means another transaction got there first: a deadlock or
    serialization failure, or a unique violation of one of the constraints named in
    `unique` (the keys concurrent writers may both insert)."""
    cause = error.__cause__
    state = getattr(cause, "sqlstate", None)
    if state in RUN_AGAIN:
        return True
    if state == UNIQUE_VIOLATION:
        diagnostics = getattr(cause, "diag", None)
        return getattr(diagnostics, "constraint_name", None) in unique
    return False
