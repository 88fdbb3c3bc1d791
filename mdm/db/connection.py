"""Telling a lost database connection from any other database error."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError, connections

# PostgreSQL error codes that mean the server ended the session: class 08 (connection
# exception), and admin shutdown, crash shutdown, cannot connect now (57P01-57P03).
_SESSION_ENDED = ("57P01", "57P02", "57P03")


def connection_lost(error: BaseException, *, using: str = "default") -> bool:
    """True when `error` means the connection to PostgreSQL is gone (the server ended it, the
    network dropped it), so whatever its transaction wrote was rolled back whole. Not for
    errors of a working connection (a constraint, a lock timeout) nor on SQLite (a file)."""
    if connections[using].vendor != "postgresql":
        return False
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _SESSION_ENDED
