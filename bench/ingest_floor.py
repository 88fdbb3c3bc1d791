"""Ingest floor: what a first load costs at the least on this machine, whatever the code.

    python bench/ingest_floor.py [--records 20000]
                                 [--database-url postgres://postgres@127.0.0.1:5432/keystone_bench_floor]

`bench/ingest.py` measures the real load. This script measures two parts of it that no
implementation of the Foundation issue can skip, so the figures bound every implementation:

1. **PostgreSQL writing the rows a new record needs.** It loads N generated customers once
   with the real service (to get exactly the rows it writes), exports them, empties the
   tables and writes the same rows again with nothing but COPY (source records, golden
   records, outbox events) and the service's `INSERT ... SELECT` history copies, in chunks
   of the service's size, one transaction each, with every index and constraint in place.
   Only the PostgreSQL backend's CPU time is counted (read from /proc: same machine).
2. **Normalizing the attributes** with the normalizers the issue names (phonenumbers for
   E.164, the public suffix list for websites, legal-form stripping for names, ...):
   `mdm.normalize.normalize_record` over the same rows, caches emptied first, process CPU.

Everything else a load does (reading the file, validation, the payload digest, classification
against stored records, survivorship, model objects, encoding rows, events, transactions)
counts as zero here. The sum is a floor on CPU per record; with the machine's CPUs working
in perfect parallel, `cpus / floor` records per second is a ceiling no code on this machine
reaches. Prints one figure per line.

This is a script, not a test; it only touches 127.0.0.1 (a database whose name contains
"bench", dropped at the end) and stops by itself.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest as bench  # noqa: E402  (bench/ingest.py: database guard, data, Django setup)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/keystone_bench_floor"
WRITTEN = ("mdm_goldenrecord", "mdm_sourcerecord", "mdm_outboxevent")  # in FK order
HISTORY = ("mdm_historicalgoldenrecord", "mdm_historicalsourcerecord")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()
    if not 1_000 <= args.records <= 200_000:
        parser.error("--records must be between 1,000 and 200,000")
    try:
        args.target = bench.bench_target(args.database_url)
    except ValueError as error:
        parser.error(str(error))
    if args.target["kind"] != "postgresql":
        parser.error("the floor is measured on PostgreSQL")
    return args


def export(cursor, table: str, order: str) -> list[bytes]:
    """The table's rows as COPY text lines, in `order`."""
    buffer = io.BytesIO()
    with cursor.copy(f"COPY (SELECT * FROM {table} ORDER BY {order}) TO STDOUT") as copy:
        for data in copy:
            buffer.write(data)
    return buffer.getvalue().splitlines(keepends=True)


def server_floor(records: int, chunk_size: int) -> dict[str, float]:
    """Backend CPU seconds, per table and for the commits, to write the load's rows again
    with nothing but COPY and the history copies, chunk by chunk as the service does."""
    from django.db import connection, transaction

    from mdm.db.copy import insert_history_of_rows
    from mdm.models import GoldenRecord, SourceRecord
    from mdm.services.audit import _history_meta

    with connection.cursor() as cursor:
        raw = cursor.cursor
        goldens = export(raw, "mdm_goldenrecord", "created_at, id")
        sources = export(raw, "mdm_sourcerecord", "id")
        events = export(raw, "mdm_outboxevent", "id")
        cursor.execute(
            f"TRUNCATE {', '.join(WRITTEN + HISTORY)}, mdm_sourcereference RESTART IDENTITY CASCADE"
        )
        cursor.execute("CHECKPOINT")
    assert len(goldens) == len(sources) == len(events) == records, "one row each per record"
    meta = _history_meta("bench", "floor", "+")

    pid = bench.backend_pid()
    spent: dict[str, float] = dict.fromkeys([*WRITTEN, *HISTORY, "commit"], 0.0)
    clock = bench.backend_cpu_seconds(pid)

    def lap(name: str) -> None:
        nonlocal clock
        now = bench.backend_cpu_seconds(pid)
        spent[name] += now - clock
        clock = now

    for start in range(0, records, chunk_size):
        with transaction.atomic():
            with connection.cursor() as cursor:
                for table, lines in zip(WRITTEN, (goldens, sources, events), strict=True):
                    with cursor.cursor.copy(f"COPY {table} FROM STDIN") as copy:
                        copy.write(b"".join(lines[start : start + chunk_size]))
                    lap(table)
            chunk = slice(start, start + chunk_size)
            golden_ids = [line.split(b"\t", 1)[0].decode() for line in goldens[chunk]]
            source_ids = [int(line.split(b"\t", 1)[0]) for line in sources[chunk]]
            insert_history_of_rows(GoldenRecord, golden_ids, meta=meta)
            lap(HISTORY[0])
            insert_history_of_rows(SourceRecord, source_ids, meta=meta)
            lap(HISTORY[1])
        lap("commit")  # deferred foreign-key checks, WAL flush
    assert bench.backend_pid() == pid
    return spent


def normalization_floor(path: Path) -> float:
    """Process CPU seconds of `normalize_record` over the file's rows, caches emptied."""
    import gc

    from mdm.entities import get_entity
    from mdm.normalize import e164_phone, normalize_record, registrable_domain
    from mdm.source_files import read_rows

    entity = get_entity("customer")
    rows = [row for _, row in read_rows(path)]
    e164_phone.cache_clear()
    registrable_domain.cache_clear()
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        for row in rows:
            normalize_record(entity, row)
        return time.process_time() - started
    finally:
        gc.enable()


def main() -> int:
    args = parse_args()
    bench.setup_django(args.database_url)
    from django.conf import settings

    chunk_size = settings.KEYSTONE_INGEST_CHUNK_SIZE
    cpus = os.cpu_count() or 1
    bench.out("machine.cores", cpus)
    bench.out("records", args.records)
    bench.out("chunk_size", chunk_size)
    bench.out("load_average_1m_before", f"{os.getloadavg()[0]:.2f}")
    bench.recreate_database(args.target)
    try:
        bench.migrate()
        with tempfile.TemporaryDirectory(prefix="keystone-floor-") as tmp:
            path = Path(tmp) / "crm_customers.csv"
            bench.generate_csv(path, args.records)
            summary = bench.load(path, None, jobs=1)
            assert summary.counts["loaded"] == args.records, summary.line()
            normalize = normalization_floor(path)
        server = server_floor(args.records, chunk_size)
    finally:
        bench.close_connections()
        bench.drop_database(args.target)

    for name, seconds in server.items():
        bench.out(f"postgresql.{name}_ms_per_record", f"{seconds / args.records * 1000:.3f}")
    per = {
        "postgresql_rows": sum(server.values()) / args.records * 1000,
        "normalization": normalize / args.records * 1000,
    }
    floor = sum(per.values())
    for name, ms in per.items():
        bench.out(f"floor.{name}_ms_per_record", f"{ms:.3f}")
    bench.out("floor.total_ms_per_record", f"{floor:.3f}")
    bench.out("ceiling.records_per_s_one_cpu", f"{1000 / floor:,.0f}")
    bench.out(f"ceiling.records_per_s_{cpus}_cpus", f"{cpus * 1000 / floor:,.0f}")
    bench.out("load_average_1m_after", f"{os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
