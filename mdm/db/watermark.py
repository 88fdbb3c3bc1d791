"""A gap-free high-water mark for a table read in id order (the outbox), without a table lock.

Ids come from the table's sequence, but transactions commit in any order: a reader can see
#12 while #11 is still being written, and would skip #11 forever if it moved its cursor past
12. The high-water mark is the highest id below which no row can still appear.

The protocol, PostgreSQL only (both halves here, one rule):

- A writer calls `hold_id_floor` before it takes ids (before `nextval`, before an INSERT that
  draws the default): it reads the sequence's last value F and takes a *shared* transaction
  advisory lock keyed F. Every id it gets afterwards is greater than F; the lock is held
  until its transaction ends, commit or rollback. Shared locks never wait for one another.
- A reader (`id_high_water_mark`) first reads the sequence's last value L: every id <= L was
  handed out before this moment. Then it reads the floors held right now (`pg_locks`): a
  transaction that took an id <= L and has not ended took its floor before that id, so it is
  there, with a floor below its ids. The mark is min(L, lowest floor): every id up to it
  belongs to a transaction that has ended, so a later statement (a fresh snapshot) sees all
  of those that committed. A writer that comes after the reader's first read gets ids above L.
  The reader's own transaction is left out: what it wrote is visible to it already.

Nobody waits: writers take a lock nobody conflicts with, readers only look at `pg_locks`.
A long writer holds the mark back (as it must: its ids are not committed yet) without
holding anyone up. SQLite has one writer at a time, so max(id) is already safe there.
"""

from __future__ import annotations

from django.db import connections, models, router

# Advisory lock keys are one bigint: the floor plus this base, so `pg_locks` shows the lock's
# class id in [BASE >> 32, (BASE >> 32) + 0xFFFF] (floors below 2**48) and the low 32 bits
# as its object id. "KSOB" — Keystone outbox — keeps clear of other advisory lock users.
FLOOR_KEY_BASE = 0x4B534F42 << 32
_CLASS_LOW, _CLASS_HIGH = FLOOR_KEY_BASE >> 32, (FLOOR_KEY_BASE >> 32) + 0xFFFF


def _sequence_last_value(model: type[models.Model]) -> str:
    """SQL for the last id the table's sequence handed out (0 before the first one)."""
    table, column = model._meta.db_table, model._meta.pk.column
    return (
        "coalesce(pg_sequence_last_value("
        f"pg_get_serial_sequence('{table}', '{column}')::regclass), 0)"
    )


def hold_id_floor(model: type[models.Model]) -> None:
    """Before taking ids of `model` in this transaction: publish that every id it takes is
    above the sequence's current value, until the transaction ends (see the module)."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_advisory_xact_lock_shared(%s + {_sequence_last_value(model)})",
            [FLOOR_KEY_BASE],
        )


def id_high_water_mark(model: type[models.Model]) -> int:
    """The highest id of `model` below which no row can still appear (see the module): two
    short statements, no lock taken, nobody waits."""
    connection = connections[router.db_for_read(model)]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            quote = connection.ops.quote_name
            table, pk = quote(model._meta.db_table), quote(str(model._meta.pk.column))
            cursor.execute(f"SELECT coalesce(max({pk}), 0) FROM {table}")
            return cursor.fetchone()[0]
        cursor.execute(f"SELECT {_sequence_last_value(model)}")
        last = cursor.fetchone()[0]
        # A separate statement, after the first: the order of the two reads is the proof.
        cursor.execute(
            "SELECT min(((classid::bigint << 32) | objid::bigint) - %s) FROM pg_locks "
            "WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND pid <> pg_backend_pid() "
            "AND classid BETWEEN %s AND %s "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [FLOOR_KEY_BASE, _CLASS_LOW, _CLASS_HIGH],
        )
        floor = cursor.fetchone()[0]
    return last if floor is None else min(last, floor)
